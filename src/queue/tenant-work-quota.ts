import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus, Injectable } from '@nestjs/common';
import type { Result } from 'ioredis';
import type { Response } from 'express';
import { AppConfig } from '../config';
import { InjectRedis, type RedisClient } from '../redis';
import { JOBS_QUEUE } from './queue.constants';

/** How long a client refused for work in flight should wait: jobs take seconds, not milliseconds. */
export const QUOTA_RETRY_AFTER_SECONDS = 10;
/**
 * A job admitted but not (yet) in Redis counts this long: the producer adds it right after admitting, within its
 * 1.5 s deadline. Past this, a missing job is one whose add failed (or a crashed web instance's), and is dropped.
 */
export const PENDING_ADD_GRACE_MS = 5_000;
/** Idle tenants' bookkeeping expires; every admission renews it. */
const BOOKKEEPING_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * KEYS: the tenant's admitted set (job id -> admitted at, ms), the tenant's bytes (job id -> payload bytes).
 * ARGV: job key prefix (p:jobs:), job id, bytes, max jobs, max bytes, now ms, pending grace ms, ttl ms.
 * Returns [admitted (1|0), jobs in flight, bytes in flight] (with the new job when admitted).
 *
 * Nothing is counted that Redis does not hold: each admitted id is checked against its BullMQ job hash, which is
 * there while the job is queued, active or waiting for a retry, carries `finishedOn` once it completed or failed for
 * good (BullMQ deletes that field when a failed job is retried), and is deleted with the job. So a crash anywhere
 * (web before the add, worker mid-job, a lost reply) cannot leave a count behind. Job keys are built here from the
 * prefix, as BullMQ's own scripts do: a single Redis node, or a Cluster with the hash-tagged queue prefix (`{pharmacare}`).
 */
const ADMIT = `
local admitted, sizes = KEYS[1], KEYS[2]
local prefix, jobId = ARGV[1], ARGV[2]
local bytes, maxJobs, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now, grace, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]

-- nil: no such job; true: queued, active or delayed; false: completed or failed for good.
local function inFlight(id)
  local key = prefix .. id
  if redis.call('EXISTS', key) == 0 then return nil end
  return redis.call('HEXISTS', key, 'finishedOn') == 0
end

local jobs, total = 0, 0
local members = redis.call('ZRANGE', admitted, 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local id, at = members[i], tonumber(members[i + 1])
  local state = inFlight(id)
  if state == false or (state == nil and at + grace < now) then
    redis.call('ZREM', admitted, id)
    redis.call('HDEL', sizes, id)
  elseif id ~= jobId then
    jobs = jobs + 1
    total = total + (tonumber(redis.call('HGET', sizes, id)) or 0)
  end
end

-- The same job again (a retried POST) adds nothing: BullMQ keeps the job it has.
local existing = inFlight(jobId)
if existing == nil and (jobs + 1 > maxJobs or total + bytes > maxBytes) then
  return {0, jobs, total}
end
if existing ~= false then
  redis.call('ZADD', admitted, now, jobId)
  redis.call('HSET', sizes, jobId, bytes)
  redis.call('PEXPIRE', admitted, ttl)
  redis.call('PEXPIRE', sizes, ttl)
  return {1, jobs + 1, total + bytes}
end
return {1, jobs, total}
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    admitTenantWork(
      admitted: string,
      sizes: string,
      jobKeyPrefix: string,
      jobId: string,
      bytes: number,
      maxJobs: number,
      maxBytes: number,
      nowMs: number,
      graceMs: number,
      ttlMs: number,
    ): Result<[number, number, number], Context>;
  }
}

/** A tenant has as much work in flight as it may: nothing was stored; try again later (429 + Retry-After). */
export class TenantQuotaExceededError extends Error {}

@Catch(TenantQuotaExceededError)
export class TenantQuotaExceededFilter implements ExceptionFilter {
  catch(error: TenantQuotaExceededError, host: ArgumentsHost): void {
    host
      .switchToHttp()
      .getResponse<Response>()
      .status(HttpStatus.TOO_MANY_REQUESTS)
      .setHeader('Retry-After', String(QUOTA_RETRY_AFTER_SECONDS))
      .json({ statusCode: HttpStatus.TOO_MANY_REQUESTS, error: 'Too Many Requests', message: error.message });
  }
}

const MB = 1024 * 1024;
const megabytes = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/**
 * Per-tenant bounds on work in flight (queued, active or waiting for a retry): at most QUEUE_TENANT_MAX_JOBS jobs
 * and QUEUE_TENANT_MAX_PAYLOAD_MB of their payloads, so one tenant cannot fill a noeviction Redis for everyone.
 * One script call per job added, atomic across web instances; a job stops counting as soon as it completes or
 * fails for good (see ADMIT), with no release step that a crash could skip.
 */
@Injectable()
export class TenantWorkQuota {
  private readonly redis: RedisClient;
  private readonly keyPrefix: string;
  private readonly jobKeyPrefix: string;

  constructor(
    @InjectRedis('command') redis: RedisClient,
    private readonly config: AppConfig,
  ) {
    this.redis = redis;
    // The queue's prefix: on a Cluster its hash tag puts the quotas in the slot of the job hashes ADMIT reads.
    this.keyPrefix = `${config.redis.queuePrefix}:quota`;
    this.jobKeyPrefix = `${config.redis.queuePrefix}:${JOBS_QUEUE}:`;
    redis.defineCommand('admitTenantWork', { numberOfKeys: 2, lua: ADMIT });
  }

  /**
   * Admits a job whose data names its tenant (`tenantId`), or throws TenantQuotaExceededError. Jobs without a
   * tenant are not bounded here. The same job id again is always admitted: it adds no work.
   */
  async admit(jobId: string, data: object): Promise<void> {
    const tenantId = (data as { tenantId?: unknown }).tenantId;
    if (typeof tenantId !== 'string') return;
    const { tenantMaxJobs, tenantMaxPayloadBytes } = this.config.queue;
    const bytes = Buffer.byteLength(JSON.stringify(data));
    const key = `${this.keyPrefix}:${encodeURIComponent(tenantId)}`;
    const [admitted, jobs, total] = await this.redis.admitTenantWork(
      key,
      `${key}:bytes`,
      this.jobKeyPrefix,
      jobId,
      bytes,
      tenantMaxJobs,
      tenantMaxPayloadBytes,
      this.now(),
      PENDING_ADD_GRACE_MS,
      BOOKKEEPING_TTL_MS,
    );
    if (admitted === 1) return;
    if (jobs >= tenantMaxJobs) {
      throw new TenantQuotaExceededError(
        `Your pharmacy has ${jobs} jobs queued or running, the most it may have at once (QUEUE_TENANT_MAX_JOBS ${tenantMaxJobs}); nothing was stored. Try again once some have finished.`,
      );
    }
    throw new TenantQuotaExceededError(
      `Your pharmacy's jobs queued or running hold ${megabytes(total)} of data and this one adds ${megabytes(bytes)}, over the ${megabytes(tenantMaxPayloadBytes)} it may have at once (QUEUE_TENANT_MAX_PAYLOAD_MB); nothing was stored. Try again once some have finished.`,
    );
  }

  /** The clock admissions are stamped with (a test moves it past the pending grace). */
  protected now(): number {
    return Date.now();
  }
}
