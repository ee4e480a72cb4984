import { setTimeout as delay } from 'node:timers/promises';

/**
 * Polls `probe` until `done` holds, for conditions no event announces (a grace period running out).
 * Resolves with the last value; rejects with it described when the timeout passes.
 */
export async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await delay(intervalMs);
  }
}
