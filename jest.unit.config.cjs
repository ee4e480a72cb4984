// npm run test:unit and test:watch: the unit project of jest.config.cjs alone (no build, no redis-server).
const { projects, ...runner } = require('./jest.config.cjs');

module.exports = { ...runner, ...projects.find((project) => project.displayName === 'unit') };
