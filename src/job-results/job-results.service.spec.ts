import { describe, expect, it } from '@jest/globals';
import { NotFoundException } from '@nestjs/common';
import { type Job, UnrecoverableError } from 'bullmq';
import type { CacheService } from '../cache';
import { JobProducer, QueueUnavailableError } from '../queue';
import { ANSWER_WITHIN_MS, JobResults, ResultSlot } from './job-results.service';

const ID = 'rpt_0123456789abcdef0123456789abcdef';
const RESULT = { totalUnits: 2 };
const slot: ResultSlot = { jobName: 'report', jobId: ID, tenantId: 't1', cacheKey: `t:t1:report:${ID}`, ttlMs: 60_000, tags: [] };

/** A cache that misses until something is stored in it; getOrSet runs the loader on a miss. */
function fakeCache(entries = new Map<string, unknown>()): CacheService {
  const get = async (key: string) => (entries.has(key) ? { value: entries.get(key), source: 'redis' as const } : undefined);
  return {
    get,
    getFromMemory: async () => undefined,
    setOrThrow: async (key: string, value: unknown) => void entries.set(key, value),
    getOrSet: async <T>(key: string, loader: () => Promise<T>) => (await get(key)) ?? { value: await loader(), source: 'loader' as const },
  } as unknown as CacheService;
}

const slow = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms).unref());

function job(state: string, fields: Partial<Job> = {}): Job {
  return { id: ID, name: 'report', data: { tenantId: 't1' }, returnvalue: null, getState: async () => state, ...fields } as unknown as Job;
}

function resultsWith(producer: Partial<JobProducer>, cache: CacheService = fakeCache()): JobResults {
  // The state as Redis would answer it: that of the job getJob finds, 'unknown' for none.
  const getState = async (id: string) => (await producer.getJob?.(id))?.getState() ?? 'unknown';
  return new JobResults({ getState, ...producer } as JobProducer, cache);
}

describe('JobResults', () => {
  it('answers a job that completed (and was removed) between the cache read and the job read from the cache', async () => {
    const entries = new Map<string, unknown>();
    const cache = fakeCache(entries);
    const results = resultsWith(
      {
        // The worker stores the result and the job is removed while the reader was between its two reads.
        getJob: async () => {
          entries.set(slot.cacheKey, { id: ID, status: 'completed', result: RESULT });
          return undefined;
        },
      },
      { ...cache, getOrSet: async <T>(_key: string, loader: () => Promise<T>) => ({ value: await loader(), source: 'loader' as const }) } as unknown as CacheService,
    );
    expect((await results.read(slot)).view).toEqual({ id: ID, status: 'completed', result: RESULT });
  });

  it('treats a job whose state read finds it gone (unknown) as completed meanwhile, not as queued', async () => {
    const entries = new Map<string, unknown>();
    const results = resultsWith(
      { getJob: async () => job('unknown', { getState: async () => (entries.set(slot.cacheKey, { id: ID, status: 'completed', result: RESULT }), 'unknown') }) },
      fakeCache(entries),
    );
    expect((await results.read(slot)).view).toEqual({ id: ID, status: 'completed', result: RESULT });
  });

  it('re-reads a job found failed after it was read while running, so the failed view has its reason', async () => {
    const reads = [job('failed', { failedReason: undefined }), job('failed', { failedReason: 'ledger unavailable' })];
    const results = resultsWith({ getJob: async () => reads.shift(), getState: async () => 'failed' });
    expect((await results.read(slot)).view).toEqual({ id: ID, status: 'failed', error: 'ledger unavailable' });
  });

  it('answers 404 for no job and no result, and for another tenant or another kind of job with that id', async () => {
    await expect(resultsWith({ getJob: async () => undefined }).read(slot)).rejects.toBeInstanceOf(NotFoundException);
    await expect(resultsWith({ getJob: async () => job('waiting', { data: { tenantId: 't2' } }) }).read(slot)).rejects.toBeInstanceOf(NotFoundException);
    await expect(resultsWith({ getJob: async () => job('waiting', { name: 'reorder' }) }).read(slot)).rejects.toBeInstanceOf(NotFoundException);
  });

  it('still answers a completed job that kept its result in the job (stored by an earlier release)', async () => {
    const results = resultsWith({ getJob: async () => job('completed', { returnvalue: RESULT }) });
    expect((await results.read(slot)).view).toEqual({ id: ID, status: 'completed', result: RESULT });
  });

  it('stores the completed view where read() looks, and read() answers it as a cache hit without touching the job', async () => {
    let jobReads = 0;
    const results = resultsWith({ getJob: async () => (jobReads++, undefined) });
    await results.store(slot, RESULT);
    expect(await results.read(slot)).toEqual({ view: { id: ID, status: 'completed', result: RESULT }, cache: 'hit' });
    expect(jobReads).toBe(0);
  });

  it('retries a failed job when the same data is submitted again, with that data (its own input was dropped)', async () => {
    const retried: unknown[] = [];
    const results = resultsWith({
      add: async () => job('failed'),
      getJob: async () => job('failed', { failedReason: 'boom' }),
      retry: async (_job: Job, data?: object) => void retried.push(data),
    });
    expect((await results.submit(slot, { tenantId: 't1', request: 'the input' } as { tenantId: string })).view).toEqual({ id: ID, status: 'queued' });
    expect(retried).toEqual([{ tenantId: 't1', request: 'the input' }]);
  });

  it('refuses for good a job whose input was dropped, saying how to retry it', () => {
    const results = resultsWith({});
    const dropped = { id: ID, data: { tenantId: 't1' } } as Job<{ tenantId: string; request?: string }>;
    expect(() => results.inputOf(dropped, 'request')).toThrow(UnrecoverableError);
    expect(() => results.inputOf(dropped, 'request')).toThrow(`job ${ID} has no request: it was dropped when the job failed for good; submit the same data again to retry it`);
    expect(results.inputOf({ ...dropped, data: { tenantId: 't1', request: 'x' } } as Job<{ tenantId: string; request?: string }>, 'request')).toBe('x');
  });

  // With Redis frozen each call ran into its own limit, one after the other: 1 s in the cache, then 1.5 s enqueuing.
  it('answers a submit within ANSWER_WITHIN_MS even when each Redis call in turn takes almost its own limit', async () => {
    const cache = { ...fakeCache(), get: () => slow(900, undefined) } as unknown as CacheService;
    const results = resultsWith({ add: () => slow(1_400, job('waiting')) as never, getJob: () => slow(1_400, job('waiting')) }, cache);
    const started = Date.now();
    await expect(results.submit(slot, { tenantId: 't1' })).rejects.toBeInstanceOf(QueueUnavailableError);
    expect(Date.now() - started).toBeLessThan(ANSWER_WITHIN_MS + 300);
  });

  it('answers a read within ANSWER_WITHIN_MS too', async () => {
    const results = resultsWith({ getJob: () => slow(5_000, job('completed')) });
    const started = Date.now();
    await expect(results.read(slot)).rejects.toBeInstanceOf(QueueUnavailableError);
    expect(Date.now() - started).toBeLessThan(ANSWER_WITHIN_MS + 300);
  });

  it('answers a result in the memory tier at once, without waiting on Redis or the job', async () => {
    const view = { id: ID, status: 'completed', result: RESULT };
    const hanging = new Promise<never>(() => undefined);
    const cache = { ...fakeCache(), getFromMemory: async () => view, getOrSet: () => hanging } as unknown as CacheService;
    const results = resultsWith({ getJob: () => hanging }, cache);
    await expect(results.read(slot)).resolves.toEqual({ view, cache: 'hit' });
  });

  it("answers a submit from the job's state alone, without reading the job (and its payload) back", async () => {
    const results = resultsWith({
      add: async () => job('waiting') as never,
      getState: async () => 'waiting',
      getJob: () => Promise.reject(new Error('the job was read back')),
    });
    await expect(results.submit(slot, { tenantId: 't1' })).resolves.toEqual({ view: { id: ID, status: 'queued' } });
  });
});
