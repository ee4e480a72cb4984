/**
 * A BullMQ worker that takes one job of the app's queue and never finishes it: the stand-in for a worker
 * process that dies mid-job. Run with `node --import tsx`; the test SIGKILLs it once it printed "took <id>".
 * Usage: hanging-worker.ts <redis port> <key prefix> [stalled interval ms]: the interval the app's workers use, since the
 * stalled-check throttle key this worker leaves behind lives that long.
 */
import { Worker } from 'bullmq';

const [port, prefix, stalledInterval] = process.argv.slice(2);
const worker = new Worker(
  'jobs',
  async (job) => {
    process.stdout.write(`took ${job.id}\n`);
    await new Promise(() => undefined);
  },
  { connection: { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null }, prefix, concurrency: 1, ...(stalledInterval ? { stalledInterval: Number(stalledInterval) } : {}) },
);
worker.on('error', () => undefined);
