// Setup of Jest's "unit" project (jest.config.cjs): unit specs run where no redis-server can be found. Every
// way of starting one looks it up on this PATH (RedisServer, the development Redis, an AppProcess's child), so
// a spec that needs Redis fails here, with the harness saying to name it *.int-spec.ts, instead of passing
// on a developer's machine and slowing down the unit loop.
const { existsSync } = require('node:fs');
const { delimiter, join } = require('node:path');

process.env.PATH = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => dir === '' || !existsSync(join(dir, 'redis-server')))
  .join(delimiter);
