import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevelopmentRedisError, startDevelopmentRedis } from '../../src/redis/development-redis';
import { RedisServer, stopAllRedisServers } from './redis-server';

afterAll(() => stopAllRedisServers());

// The unit project (test/support/unit-project.cjs) must keep specs that need Redis out of the unit loop: each
// way a spec could start a redis-server fails here, so such a spec is renamed *.int-spec.ts, not hidden.
describe('the unit project', () => {
  it('refuses the harness a redis-server, saying to name the spec *.int-spec.ts', async () => {
    await expect(RedisServer.start()).rejects.toThrow(/name a spec that needs Redis \*\.int-spec\.ts/);
  });

  it('refuses the development Redis one too (an app booted without REDIS_URL)', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'pharmacare-unit-project-'));
    try {
      // One that did start is stopped at once, so the failure is this assertion, not a hung run.
      const outcome = await startDevelopmentRedis(workDir).then(
        (redis) => redis.stop().then(() => 'started'),
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(DevelopmentRedisError);
      expect((outcome as Error).message).toMatch(/redis-server is not on PATH/);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
