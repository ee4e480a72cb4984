/**
 * Opens /docs in headless Chromium and checks that Swagger UI renders every operation of /docs-json, with no
 * security-header policy and under Nest's default Content-Security-Policy (`app.useSecurityHeaders()`, helmet's
 * defaults), and reports what a bare `default-src 'self'` blocks (the directives Swagger UI needs).
 *
 *   npm run check:docs [-- --screenshot docs.png]
 *
 * Needs Chromium (`apt-get install chromium`; another binary: CHROMIUM=/path) and redis-server. Exits 1 when a
 * required case does not render every operation or logs a CSP violation, 2 when Chromium is missing.
 * Loads the compiled app from dist/ (Nest's DI needs the decorator metadata tsc emits and tsx does not).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SecurityHeadersOptions } from '@nestjs/common';

/* eslint-disable @typescript-eslint/no-require-imports -- the compiled app, typed by its sources */
const { createApp } = require('../dist/bootstrap') as typeof import('../src/bootstrap');
const { loadConfig } = require('../dist/config') as typeof import('../src/config');
const { setupApiDocs } = require('../dist/http') as typeof import('../src/http');
const { startDevelopmentRedis } = require('../dist/redis') as typeof import('../src/redis');
/* eslint-enable @typescript-eslint/no-require-imports */

const CHROMIUM = process.env.CHROMIUM ?? 'chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Virtual time: the page's timers run as fast as it can, so this bounds the page's work, not the wall clock. */
const RENDER_BUDGET_MS = 20_000;
const CHROMIUM_TIMEOUT_MS = 60_000;

interface Case {
  readonly name: string;
  /** undefined: no security headers at all. */
  readonly securityHeaders?: SecurityHeadersOptions;
  /** false: informative only, the violations it logs are the directives Swagger UI needs. */
  readonly required: boolean;
}

const CASES: Case[] = [
  { name: 'no security headers', required: true },
  { name: "Nest's default CSP (app.useSecurityHeaders())", securityHeaders: {}, required: true },
  {
    name: "bare default-src 'self'",
    securityHeaders: { contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'self'"] } } },
    required: false,
  },
];

interface Outcome {
  readonly rendered: string[];
  readonly missing: string[];
  readonly violations: string[];
  readonly csp: string | null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { screenshot: { type: 'string' } } });
  if (spawnSync(CHROMIUM, ['--version'], { stdio: 'ignore' }).error) {
    process.stderr.write(`Chromium not found (${CHROMIUM}): apt-get install -y chromium, or set CHROMIUM to its path.\n`);
    process.exit(2);
  }
  const workDir = mkdtempSync(join(tmpdir(), 'pharmacare-docs-check-'));
  const redis = await startDevelopmentRedis(workDir);
  // Set as soon as known: the development Redis's stop() does not always resolve (src/redis/development-redis.ts
  // drops its exit listener once the server is ready), and Node then exits with this code when the loop empties.
  process.exitCode = 0;
  try {
    for (const testCase of CASES) {
      const outcome = await check(testCase, redis.url, workDir, testCase === CASES[0] ? values.screenshot : undefined);
      const ok = outcome.missing.length === 0 && outcome.violations.length === 0;
      if (testCase.required && !ok) process.exitCode = 1;
      const verdict = ok ? 'ok  ' : testCase.required ? 'FAIL' : 'info';
      process.stdout.write(`${verdict}  ${testCase.name}: ${outcome.rendered.length} of ${outcome.rendered.length + outcome.missing.length} operations rendered\n`);
      if (outcome.csp) process.stdout.write(`      Content-Security-Policy: ${outcome.csp}\n`);
      for (const id of outcome.missing) process.stdout.write(`      missing: ${id}\n`);
      for (const violation of outcome.violations) process.stdout.write(`      blocked: ${violation}\n`);
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
    await redis.stop();
  }
  process.exit();
}

async function check(testCase: Case, redisUrl: string, workDir: string, screenshot?: string): Promise<Outcome> {
  const config = loadConfig({ NODE_ENV: 'test', API_DOCS: 'true', APP_ROLE: 'web', REDIS_URL: redisUrl, LOG_LEVEL: 'warn' });
  const app = await createApp(config);
  // Before the docs, as main.ts orders it: Express runs middleware and routes in the order they were added.
  if (testCase.securityHeaders) app.useSecurityHeaders(testCase.securityHeaders);
  setupApiDocs(app, config);
  await app.listen(0, '127.0.0.1');
  try {
    const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    const operations = await documentedOperations(base);
    const expected = operations.map(({ tag, operationId }) => `operations-${tag}-${operationId}`);
    const page = await fetch(`${base}/docs`);
    // Swagger UI's deep link opens the first operation that takes a body: its schemas must render too.
    const opened = operations.find((operation) => operation.takesBody);
    const url = `${base}/docs${opened ? `#/${opened.tag}/${opened.operationId}` : ''}`;
    const { stdout: dom, stderr } = await chromium(workDir, ['--enable-logging=stderr', '--v=0', '--dump-dom', url]);
    if (screenshot) await chromium(workDir, ['--hide-scrollbars', '--window-size=1280,1600', `--screenshot=${screenshot}`, `${base}/docs`]);
    const violations = stderr.split('\n').filter((line) => line.includes('violates the following Content Security Policy directive')).map(describeViolation);
    const bodyShown = !opened || dom.includes('opblock-section-request-body');
    return {
      rendered: expected.filter((id) => dom.includes(`id="${id}"`)),
      missing: [...expected.filter((id) => !dom.includes(`id="${id}"`)), ...(bodyShown ? [] : [`the request body of ${opened.operationId}, opened`])],
      violations: [...new Set(violations)],
      csp: page.headers.get('content-security-policy'),
    };
  } finally {
    await app.close();
  }
}

/**
 * Chromium's console line for a CSP violation, shortened to what was blocked and the directive that applied:
 * `Applying inline style (style-src, from default-src)`.
 */
function describeViolation(line: string): string {
  const what = /CONSOLE:\d+\] "(.*?) violates/.exec(line)?.[1].replace(/'data:[^']*'/, 'data:…') ?? line;
  const directive = /directive:? ["']([a-z-]+)/.exec(line)?.[1];
  const fallbackFrom = /Note (?:also )?that '([a-z-]+)' was not explicitly set/.exec(line)?.[1];
  return `${what} (${fallbackFrom ? `${fallbackFrom}, from ${directive}` : directive})`;
}

/** The operations of /docs-json; Swagger UI renders each as the element `operations-<tag>-<operationId>`. */
async function documentedOperations(base: string): Promise<{ tag: string; operationId: string; takesBody: boolean }[]> {
  const document = (await (await fetch(`${base}/docs-json`)).json()) as {
    paths: Record<string, Record<string, { operationId: string; tags?: string[]; requestBody?: unknown }>>;
  };
  return Object.values(document.paths).flatMap((path) =>
    Object.values(path).map((operation) => ({ tag: operation.tags?.[0] ?? 'default', operationId: operation.operationId, takesBody: operation.requestBody !== undefined })),
  );
}

function chromium(workDir: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const profile = mkdtempSync(join(workDir, 'chromium-'));
  return new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, `--virtual-time-budget=${RENDER_BUDGET_MS}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHROMIUM_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`chromium exited ${code ?? signal}:\n${stderr.slice(-2000)}`));
    });
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
