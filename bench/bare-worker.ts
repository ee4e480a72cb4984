/**
 * A bare BullMQ Worker: the baseline of bench/queue.bench.ts, which spawns it with `node --import tsx`.
 * BullMQ's defaults for everything (drainDelay 5 s, stalledInterval 30 s, concurrency 1, prefix "bull"),
 * except what the environment sets:
 *   REDIS_URL         redis://127.0.0.1:PORT (required; never the shared Redis on 6379)
 *   BARE_CONCURRENCY  worker concurrency (unset: BullMQ's default)
 * It computes a "report" job with the app's own function (computeSalesSummary, the result kept as the job's return
 * value, BullMQ's default), and once BullMQ stored it as completed, sends the app's report:completed notification
 * (one PUBLISH through @socket.io/redis-emitter on a second connection, as RealtimeService does in a worker). What our worker does
 * beyond that per job (storing the result in the cache's Redis tier, the QueueModule's bookkeeping) counts against
 * it in the ratio. It prints "bare worker ready" once consuming and exits 0 after SIGTERM (closing the worker, bounded).
 */
import { Emitter } from '@socket.io/redis-emitter';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { adapterKey, PRESENCE_NAMESPACE, userRoom } from '../src/presence/presence.constants';
import type { ReportJobData } from '../src/reports/report-job';
import { computeSalesSummary } from '../src/reports/sales-summary';

const CLOSE_TIMEOUT_MS = 5_000;

async function main(): Promise<void> {
  const url = new URL(process.env.REDIS_URL ?? '');
  if (url.protocol !== 'redis:' || url.port === '' || url.port === '6379')
    throw new Error(`REDIS_URL must be redis://HOST:PORT (not 6379), got "${process.env.REDIS_URL ?? ''}"`);
  const concurrency = process.env.BARE_CONCURRENCY ? Number(process.env.BARE_CONCURRENCY) : undefined;

  const worker = new Worker<ReportJobData>('jobs', async (job) => computeSalesSummary(job.data.request?.sales ?? []), {
    connection: { host: url.hostname, port: Number(url.port) },
    ...(concurrency === undefined ? {} : { concurrency }),
  });
  // The app's channel under its default REDIS_KEY_PREFIX, so the PUBLISH is the one RealtimeService sends from a worker.
  const notifier = new Emitter(new Redis({ host: url.hostname, port: Number(url.port) }), { key: adapterKey('pharmacare') });
  worker.on('completed', (job) => notifier.of(PRESENCE_NAMESPACE).to(userRoom(job.data.tenantId, job.data.userId)).emit('report:completed', { id: job.id }));
  worker.on('error', (error) => process.stderr.write(`bare worker error: ${error.message}\n`));
  worker.on('failed', (job, error) => process.stderr.write(`bare worker: job ${job?.id ?? '?'} failed: ${error.message}\n`));

  let closing = false;
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    const deadline = setTimeout(() => process.exit(1), CLOSE_TIMEOUT_MS);
    worker.close().then(
      () => {
        clearTimeout(deadline);
        process.exit(0);
      },
      () => process.exit(1),
    );
  });

  await worker.waitUntilReady();
  process.stdout.write(
    `bare worker ready (pid ${process.pid}, concurrency ${worker.opts.concurrency}, drainDelay ${worker.opts.drainDelay} s, stalledInterval ${worker.opts.stalledInterval} ms)\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
