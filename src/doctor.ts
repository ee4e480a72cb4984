/**
 * Checks the Redis databases the app would use (REDIS_URL, and REDIS_CACHE_URL when set), one line per check: `npm run doctor` locally,
 * `node dist/doctor.js` in a Render shell. Exit code 1 on any failure, 0 with warnings only.
 */
import { loadDotEnv } from './config';
import { exitCode, formatReport, runDoctor, secretsIn } from './doctor/index';

/** Every step has its own deadline; this one catches anything that slips through them. */
const WATCHDOG_MS = 30_000;

async function main(): Promise<void> {
  // The same environment as src/main.ts.
  loadDotEnv();
  setTimeout(() => {
    process.stderr.write(`doctor: no result after ${WATCHDOG_MS / 1000} s, giving up\n`);
    process.exit(2);
  }, WATCHDOG_MS).unref();

  const results = await runDoctor(process.env);
  process.stdout.write(`${formatReport(results, secretsIn(process.env))}\n`);
  process.exit(exitCode(results));
}

main().catch((error: unknown) => {
  // Unexpected: print the message only (an ioredis error object carries the AUTH arguments).
  process.stderr.write(`doctor: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
