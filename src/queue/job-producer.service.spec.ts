import { describe, expect, it } from '@jest/globals';
import type { Job, Queue } from 'bullmq';
import { loadConfig } from '../config';
import type { RedisConnections } from '../redis';
import { JobProducer } from './job-producer.service';
import { QueueUnavailableError } from './queue-unavailable.error';
import type { TenantWorkQuota } from './tenant-work-quota';

const queue = { on: () => undefined } as unknown as Queue;
const ready = { status: () => ({ state: 'ready' }) } as unknown as RedisConnections;
const quota = {} as TenantWorkQuota;

describe('JobProducer', () => {
  // A state read that timed out (Redis busy or frozen) surfaced as a 500, where every other Redis timeout is a 503.
  it('turns a job-state read that times out into QueueUnavailableError (503), like getJob', async () => {
    const producer = new JobProducer(queue, ready, loadConfig({}), quota);
    const job = { getState: () => Promise.reject(new Error('Command timed out')) } as unknown as Job;
    await expect(producer.getState(job)).rejects.toBeInstanceOf(QueueUnavailableError);
  });

  it('refuses at once while the command connection is down, without touching the job', async () => {
    const down = { status: () => ({ state: 'reconnecting' }) } as unknown as RedisConnections;
    const producer = new JobProducer(queue, down, loadConfig({}), quota);
    let asked = false;
    const job = { retry: async () => void (asked = true) } as unknown as Job;
    await expect(producer.retry(job)).rejects.toBeInstanceOf(QueueUnavailableError);
    expect(asked).toBe(false);
  });
});
