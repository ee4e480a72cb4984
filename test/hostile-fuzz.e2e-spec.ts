import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AppProcess } from './support/app-process';
import { type Answer, HOSTILE_REQUESTS, HOSTILE_SOCKETS } from './support/hostile-traffic';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, postReport, salesFor, settledReport, tokenFor } from './support/reports-client';

/**
 * Fuzz-style: two instances on one Redis take a stream of hostile requests and socket events of every kind
 * RELIABILITY.md's hostile-input table lists, while a quiet tenant's requests are timed. Asserted: both processes
 * stay up, every hostile HTTP answer is a 4xx JSON error, every hostile socket gets connect_error, an error ack or
 * is closed, and the quiet tenant's p99 under attack is within 2x of its p99 without (same run, interleaved
 * phases: the median over the rounds of each attack phase's p99 over its adjacent quiet phase's).
 */

const ROUNDS = 8;
/** Quiet-tenant requests per instance per phase: 300 per phase, 2,400 per condition. */
const SAMPLES_PER_PHASE = 150;
/**
 * Two attackers, each pausing between requests: a steady hostile stream (about 60 a second) rather than a flood.
 * Any flood, of valid requests too, slows everyone on 2 cores; what must not happen is one hostile request costing
 * far more than a normal one (an 8 MB parse before auth took 140-230 ms of CPU) or taking the process down.
 */
const ATTACKERS = 2;
const ATTACK_PAUSE_MS = 20;
/**
 * p99 is compared as a ratio, but on a 2-core VM with a load average of 5 to 18 (other agents' builds and
 * benchmarks) a request that waits for one scheduler period waits 10-30 ms whatever the app does: a quiet p99
 * under this floor is taken as the floor. Measured: 1.2-1.9 on this branch; 4.3-7.0 on main (parse before auth).
 */
const QUIET_P99_FLOOR_MS = 20;

const bearer = (token: string) => `Bearer ${token}`;

let redis: RedisServer;
const apps: AppProcess[] = [];
let attacker: Attacker;
let cachedReportId: string;
const quietToken = tokenFor('quiet-user', 'tenant-quiet');

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The quiet tenant: sequential authenticated requests (a cached report, then who am I), timed. */
async function quietRun(app: AppProcess, samples: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const path = i % 2 === 0 ? `/reports/${cachedReportId}` : '/auth/me';
    const started = performance.now();
    const response = await fetch(`${app.baseUrl}${path}`, { headers: { authorization: bearer(quietToken) } });
    await response.arrayBuffer();
    times.push(performance.now() - started);
    if (response.status !== 200) throw new Error(`quiet tenant got ${response.status} on ${path}`);
  }
  return times;
}

/** The attacker process (hostile-attacker.ts), driven line by line. */
class Attacker {
  private readonly lines: string[] = [];
  private readonly waiters: Array<(line: string) => void> = [];

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter(line);
      else this.lines.push(line);
    });
  }

  static async start(baseUrls: string[]): Promise<Attacker> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'test/support/hostile-attacker.ts')], {
      env: { PATH: process.env.PATH ?? '', BASE_URLS: baseUrls.join(','), ATTACKERS: String(ATTACKERS), PAUSE_MS: String(ATTACK_PAUSE_MS) },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const attacker = new Attacker(child);
    expect(await attacker.next()).toBe('ready');
    return attacker;
  }

  async begin(): Promise<void> {
    this.child.stdin?.write('start\n');
    expect(await this.next()).toBe('started');
  }

  async end(): Promise<Answer[]> {
    this.child.stdin?.write('stop\n');
    const line = await this.next();
    expect(line.startsWith('stopped ')).toBe(true);
    return JSON.parse(line.slice('stopped '.length)) as Answer[];
  }

  close(): void {
    this.child.stdin?.end();
  }

  private next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

beforeAll(async () => {
  redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url(), JWT_SECRET, APP_ROLE: 'all', ADMIN_USER: 'admin', ADMIN_PASSWORD: 'fuzz-admin-password-0123' };
  apps.push(...(await Promise.all([AppProcess.start(env), AppProcess.start(env)])));
  await Promise.all(apps.map((app) => app.waitForLines(/ready in \d+ ms/, 3)));
  const posted = await postReport(apps[0], quietToken, salesFor(7));
  cachedReportId = (posted.body as { id: string }).id;
  await settledReport(apps[0], quietToken, cachedReportId);
  // Warm both instances' memory tier and JIT.
  await Promise.all(apps.map((app) => quietRun(app, 100)));
  attacker = await Attacker.start(apps.map((app) => app.baseUrl));
}, 60_000);

afterAll(async () => {
  attacker?.close();
  await Promise.all(apps.map((app) => app.stop()));
  await stopAllRedisServers();
});

describe('hostile input against two instances', () => {
  it("keeps both processes up, answers every hostile request with a 4xx JSON error, and leaves other tenants' p99 within 2x", async () => {
    const quiet: number[][] = [];
    const underAttack: number[][] = [];
    const answers: Answer[] = [];
    const phase = async () => (await Promise.all(apps.map((app) => quietRun(app, SAMPLES_PER_PHASE)))).flat();
    const attacked = async () => {
      await attacker.begin();
      underAttack.push(await phase());
      answers.push(...(await attacker.end()));
    };
    const calm = async () => quiet.push(await phase());
    // Interleaved, alternating which comes first, so drift in the machine's load falls on both alike.
    for (let round = 0; round < ROUNDS; round += 1) {
      if (round % 2 === 0) {
        await calm();
        await attacked();
      } else {
        await attacked();
        await calm();
      }
    }

    // Each round's attack phase against its own quiet phase (adjacent in time, so other test files starting or
    // finishing shift both), then the median over the rounds: a burst of another agent's CPU in one or two
    // phases moves it little, where it would decide the p99 of all samples pooled.
    const p99 = (samples: number[]) => percentile(samples, 99);
    const ratios = underAttack.map((samples, round) => p99(samples) / Math.max(p99(quiet[round]), QUIET_P99_FLOOR_MS));
    const ratio = percentile(ratios, 50);
    const quietP99 = percentile(quiet.map(p99), 50);
    const attackP99 = percentile(underAttack.map(p99), 50);
    const pooled = (phases: number[][], p: number) => percentile(phases.flat(), p).toFixed(2);
    const byOutcome = new Map<string, number>();
    for (const { name, outcome } of answers) byOutcome.set(`${name} -> ${outcome}`, (byOutcome.get(`${name} -> ${outcome}`) ?? 0) + 1);
    process.stdout.write(
      `hostile fuzz: ${answers.length} hostile requests and sockets; quiet tenant p99 (median of ${ROUNDS} phases) ${quietP99.toFixed(2)} ms, pooled p50 ${pooled(quiet, 50)} / p99 ${pooled(quiet, 99)} ms; under attack p99 (median) ${attackP99.toFixed(2)} ms, pooled p50 ${pooled(underAttack, 50)} / p99 ${pooled(underAttack, 99)} ms; median of the rounds' ratios (quiet p99 floored at ${QUIET_P99_FLOOR_MS} ms) ${ratio.toFixed(2)} [${ratios.map((value) => value.toFixed(2)).join(' ')}]\n${[...byOutcome].map(([key, count]) => `  ${count} x ${key}`).join('\n')}\n`,
    );

    for (const app of apps) {
      expect((await app.request('/health/live')).status).toBe(200);
      expect(app.output).not.toMatch(/URIError|uncaught|unhandled/i);
    }
    const httpNames = new Set(HOSTILE_REQUESTS.map((request) => request.name));
    const badHttp = answers.filter(({ name, outcome }) => httpNames.has(name) && outcome !== '4xx json');
    const badSockets = answers.filter(({ name, outcome }) => !httpNames.has(name) && !['connect_error', 'error ack', 'closed'].includes(outcome));
    expect(badHttp).toEqual([]);
    expect(badSockets).toEqual([]);
    // Every kind was tried at least once on each instance's share of the stream.
    expect(new Set(answers.map(({ name }) => name)).size).toBe(HOSTILE_REQUESTS.length + HOSTILE_SOCKETS.length);
    expect(ratio).toBeLessThanOrEqual(2);
  }, 240_000);
});
