import { describe, expect, it } from '@jest/globals';
import type { Job, Queue } from 'bullmq';
import { loadConfig } from '../config';
import { redisUnavailability, type RedisConnections } from '../redis';
import { JobProducer } from './job-producer.service';
import { QueueUnavailableError } from './queue-unavailable.error';

const queue = { on: () => undefined } as unknown as Queue;
const ready = { status: () => ({ state: 'ready' }), unavailability: redisUnavailability } as unknown as RedisConnections;

describe('JobProducer', () => {
  // A state read that timed out (Redis busy or frozen) surfaced as a 500, where every other Redis timeout is a 503.
  it('turns a job-state read that times out into QueueUnavailableError (503), like getJob', async () => {
    const producer = new JobProducer(queue, ready, loadConfig({}));
    const job = { getState: () => Promise.reject(new Error('Command timed out')) } as unknown as Job;
    await expect(producer.getState(job)).rejects.toBeInstanceOf(QueueUnavailableError);
  });

  it('answers OOM with a message users understand and a longer Retry-After, never with Redis\'s own text', async () => {
    const producer = new JobProducer(queue, ready, loadConfig({}));
    const job = { retry: () => Promise.reject(new Error("OOM command not allowed when used memory > 'maxmemory'. script: 1e9b, on @user_script:119.")) } as unknown as Job;
    const refused = await producer.retry(job).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(QueueUnavailableError);
    expect((refused as QueueUnavailableError).message).toMatch(/Redis is full/);
    expect((refused as QueueUnavailableError).message).not.toMatch(/OOM|maxmemory|script/);
    expect((refused as QueueUnavailableError).retryAfterSeconds).toBe(30);
  });

  it('lets an error that is not about Redis through unchanged (a bug stays a 500)', async () => {
    const producer = new JobProducer(queue, ready, loadConfig({}));
    const bug = new TypeError('cannot read properties of undefined');
    const job = { retry: () => Promise.reject(bug) } as unknown as Job;
    await expect(producer.retry(job)).rejects.toBe(bug);
  });

  it('refuses at once while the command connection is down, without touching the job', async () => {
    const down = { status: () => ({ state: 'reconnecting' }) } as unknown as RedisConnections;
    const producer = new JobProducer(queue, down, loadConfig({}));
    let asked = false;
    const job = { retry: async () => void (asked = true) } as unknown as Job;
    await expect(producer.retry(job)).rejects.toBeInstanceOf(QueueUnavailableError);
    expect(asked).toBe(false);
  });
});
