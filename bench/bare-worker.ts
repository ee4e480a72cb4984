/**
 * A bare BullMQ Worker: the baseline of bench/queue.bench.ts, which spawns it with `node --import tsx`.
 * BullMQ's defaults for everything (drainDelay 5 s, stalledInterval 30 s, concurrency 1, prefix "bull"),
 * except what the environment sets:
 *   REDIS_URL         redis://127.0.0.1:PORT (required; never the shared Redis on 6379)
 *   BARE_CONCURRENCY  worker concurrency (unset: BullMQ's default)
 * It does the report job's work without Nest: computes it with the app's own function (computeSalesSummary),
 * stores the completed view where ours does (the cache's Redis tier, in ours' entry format, with the tenant's tag
 * index: one MULTI, as ours' one script call) before the job completes (ours' job options remove it then), and once
 * BullMQ stored it as completed, sends the app's report:completed notification (one PUBLISH through
 * @socket.io/redis-emitter on a second connection, as RealtimeService does in a worker). What our worker does beyond
 * that per job (the QueueModule's bookkeeping, metrics, the cache's failure handling) counts against
 * it in the ratio. It prints "bare worker ready" once consuming and exits 0 after SIGTERM (closing the worker, bounded).
 */
import { Emitter } from '@socket.io/redis-emitter';
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { tenantKey, tenantTag } from '../src/cache/cache-keys';
import { CACHE_NAMESPACE } from '../src/cache/cache.constants';
import { serializeRedisEntry } from '../src/cache/redis-entry-format';
import { adapterKey, PRESENCE_NAMESPACE, userRoom } from '../src/presence/presence.constants';
import type { ReportJobData } from '../src/reports/report-job';
import { computeSalesSummary } from '../src/reports/sales-summary';

const CLOSE_TIMEOUT_MS = 5_000;
/** The app's defaults: REDIS_KEY_PREFIX and REPORT_TTL_SECONDS. */
const PREFIX = 'pharmacare';
const REPORT_TTL_MS = 86_400_000;

/** The completed view, as JobResults.store writes it (CacheService.setOrThrow: the entry, then its tag index). */
async function storeResult(redis: Redis, job: Job<ReportJobData>, result: unknown): Promise<void> {
  const { tenantId } = job.data;
  const key = tenantKey(tenantId, 'report', String(job.id));
  const expires = Date.now() + REPORT_TTL_MS;
  const entry = serializeRedisEntry({ value: { id: String(job.id), status: 'completed', result }, expires });
  await redis
    .multi()
    .zadd(`${PREFIX}:cache-tags:${tenantTag(tenantId, 'reports')}`, expires, key)
    .set(`${PREFIX}:cache:${CACHE_NAMESPACE}:${key}`, entry, 'PX', REPORT_TTL_MS)
    .exec();
}

async function main(): Promise<void> {
  const url = new URL(process.env.REDIS_URL ?? '');
  if (url.protocol !== 'redis:' || url.port === '' || url.port === '6379')
    throw new Error(`REDIS_URL must be redis://HOST:PORT (not 6379), got "${process.env.REDIS_URL ?? ''}"`);
  const concurrency = process.env.BARE_CONCURRENCY ? Number(process.env.BARE_CONCURRENCY) : undefined;

  const store = new Redis({ host: url.hostname, port: Number(url.port) });
  const worker = new Worker<ReportJobData>('jobs', (job) => storeResult(store, job, computeSalesSummary(job.data.request?.sales ?? [])), {
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
