import { describe, expect, it } from '@jest/globals';
import type { Job } from 'bullmq';
import type { CacheService } from '../cache';
import { loadConfig } from '../config';
import type { UserNotifier } from '../presence';
import { JobHandlers, JobProducer } from '../queue';
import { ReportsService } from './reports.service';

const ID = 'rpt_0123456789abcdef0123456789abcdef';
const RESULT = { totalRevenue: 7, totalUnits: 2, bySku: [{ sku: 'AMOX-500', units: 2, revenue: 7 }], byDay: [{ day: '2026-11-01', units: 2, revenue: 7 }] };

/** A cache that always misses, so every read goes to the job. */
const passThroughCache = {
  get: async () => undefined,
  set: async () => true,
  getOrSet: async <T>(_key: string, loader: () => Promise<T>) => ({ value: await loader(), source: 'loader' as const }),
} as unknown as CacheService;

function job(returnvalue: unknown): Job {
  return { id: ID, name: 'report', data: { tenantId: 't1' }, returnvalue, getState: async () => 'completed' } as unknown as Job;
}

describe('ReportsService', () => {
  it('re-reads a job that completed between reading it and asking its state, instead of answering a null result', async () => {
    const reads = [job(undefined), job(RESULT)];
    const producer = { getJob: async () => reads.shift() } as unknown as JobProducer;
    const service = new ReportsService(producer, new JobHandlers(), passThroughCache, loadConfig({}), { notifyUser: () => undefined } as unknown as UserNotifier);
    const answer = await service.get({ userId: 'u1', tenantId: 't1' }, ID);
    expect(answer.view).toEqual({ id: ID, status: 'completed', result: RESULT });
  });
});
