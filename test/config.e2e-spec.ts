import { describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';

async function bootWith(env: Record<string, string>) {
  const app = await AppProcess.start(env, { waitForListening: false });
  const exit = await app.exited;
  return { exit, output: app.output };
}

describe('configuration errors stop the process at boot', () => {
  it('exits 1 with one readable message naming each bad variable, no stack trace and no retry loop', async () => {
    const { exit, output } = await bootWith({ PORT: 'eighty', REDIS_URL: 'https://default:RestToken123@eu1-fine-cat-12345.upstash.io' });
    expect(exit.code).toBe(1);
    expect(output).toMatch(/PORT must be a whole number/);
    expect(output).toMatch(/REDIS_URL is an https:\/\/ URL .*copy the URL that starts with rediss:\/\//);
    expect(output).not.toMatch(/\s+at .+\(.+:\d+:\d+\)/);
    expect(output).not.toContain('RestToken123');
    expect(output).not.toMatch(/ECONNREFUSED|connecting to/);
  });

  it('requires REDIS_URL and JWT_SECRET in production', async () => {
    const { exit, output } = await bootWith({ NODE_ENV: 'production' });
    expect(exit.code).toBe(1);
    expect(output).toMatch(/REDIS_URL is required when NODE_ENV=production/);
    expect(output).toMatch(/JWT_SECRET is required when NODE_ENV=production/);
  });

  it('rejects a non-zero database on Upstash', async () => {
    const { exit, output } = await bootWith({ REDIS_URL: 'rediss://default:pw@eu1-fine-cat-12345.upstash.io:6379/2' });
    expect(exit.code).toBe(1);
    expect(output).toMatch(/Upstash has only database 0/);
  });
});
