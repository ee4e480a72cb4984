import { afterAll, describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';
import { promtoolCheckMetrics, promtoolInstalled } from './support/promtool';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET } from './support/reports-client';

afterAll(() => stopAllRedisServers());

// CI installs promtool (.ci/run) and runs this always; a developer without it sees the test as skipped.
const withPromtool = promtoolInstalled || process.env.CI ? it : it.skip;

describe("GET /metrics under Prometheus' own linter", () => {
  withPromtool('passes promtool check metrics, every capability and the Node defaults included (APP_ROLE=all)', async () => {
    const redis = await RedisServer.start();
    const app = await AppProcess.start({ REDIS_URL: redis.url(), JWT_SECRET, APP_ROLE: 'all' });
    try {
      await app.waitForLines(/ready in \d+ ms/, 3);
      const response = await app.request('/metrics');
      expect(response.status).toBe(200);
      expect(response.text).toMatch(/^# TYPE pharmacare_redis_connection_ready gauge$/m);
      expect(await promtoolCheckMetrics(response.text)).toEqual({ code: 0, output: '' });
    } finally {
      await app.stop();
    }
  });
});
