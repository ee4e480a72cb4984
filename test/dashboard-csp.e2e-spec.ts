import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET } from './support/reports-client';

/**
 * bull-board at /admin/queues under our Content-Security-Policy, in a real browser: headless Chromium renders the
 * dashboard and reports every CSP violation as a console line (INFO:CONSOLE with --v=1). Skipped, with a note,
 * where no Chromium is installed (apt-get install chromium).
 */
const BROWSERS = ['chromium', 'chromium-browser', 'google-chrome'];
const chromium =
  process.env.CHROMIUM_PATH ?? BROWSERS.flatMap((name) => (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name))).find((path) => existsSync(path));
const ADMIN_PASSWORD = 'dashboard-csp-password-1';

let redis: RedisServer;
let app: AppProcess;
let profile: string;

/** Loads the page (JS run for up to 15 s of virtual time) and returns the rendered DOM and the browser's log. */
function render(url: string): Promise<{ dom: string; log: string }> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
    '--enable-logging=stderr',
    '--v=1',
    '--virtual-time-budget=15000',
    '--dump-dom',
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile(chromium as string, args, { timeout: 90_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(error) : resolve({ dom: stdout, log: stderr }),
    );
  });
}

const describeWithBrowser = chromium ? describe : describe.skip;
if (!chromium) process.stdout.write(`dashboard-csp: skipped, no Chromium (looked for ${BROWSERS.join(', ')} on PATH, or CHROMIUM_PATH)\n`);

describeWithBrowser('/admin/queues in headless Chromium', () => {
  beforeAll(async () => {
    profile = await mkdtemp(join(tmpdir(), 'pharmacare-chromium-'));
    redis = await RedisServer.start();
    app = await AppProcess.start({ REDIS_URL: redis.url(), JWT_SECRET, ADMIN_USER: 'admin', ADMIN_PASSWORD });
    await app.waitForLines(/ready in \d+ ms/, 3);
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    await stopAllRedisServers();
    await rm(profile, { recursive: true, force: true });
  });

  it('renders the dashboard with its queue and logs no Content-Security-Policy violation', async () => {
    const headers = (await app.request('/admin/queues', { headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` } })).headers;
    expect(headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    const { dom, log } = await render(`http://admin:${ADMIN_PASSWORD}@127.0.0.1:${app.port}/admin/queues`);
    const console = log.split('\n').filter((line) => line.includes(':CONSOLE'));
    expect(console.filter((line) => /Content Security Policy|Refused to/i.test(line))).toEqual([]);
    // The React app ran: the "Loading" placeholder is gone and the jobs queue is listed.
    expect(dom).not.toContain('Loading');
    expect(dom).toMatch(/href="[^"]*queue\/jobs"/);
  }, 120_000);
});
