import { Injectable, NotFoundException } from '@nestjs/common';
import { type Job, UnrecoverableError } from 'bullmq';
import { CacheService } from '../cache';
import { withDeadline } from '../common/with-deadline';
import { JobProducer, QueueUnavailableError } from '../queue';

/** What a client sees of a job whose result it reads later. */
export type JobView<R> = { id: string; status: 'queued' | 'active' } | { id: string; status: 'completed'; result: R } | { id: string; status: 'failed'; error: string };

export type CompletedView<R> = Extract<JobView<R>, { status: 'completed' }>;

/** A view and whether it came from the cache (controllers turn that into `x-cache`). */
export interface JobAnswer<R> {
  readonly view: JobView<R>;
  readonly cache?: 'hit' | 'miss';
}

/** Where one job's result lives: its cache entry (tenant-scoped key, lifetime, tags) and who may read it. */
export interface ResultSlot {
  readonly jobName: string;
  readonly jobId: string;
  readonly tenantId: string;
  readonly cacheKey: string;
  readonly ttlMs: number;
  readonly tags: readonly string[];
}

/**
 * The longest a request may spend on Redis in all. Each call has its own limit (REDIS_COMMAND_TIMEOUT_MS, the
 * producer's 1.5 s), but they add up: with Redis frozen, a POST spent 1 s on the cache lookup and 1.5 s more on
 * the enqueue. Past this the answer is 503 with Retry-After; job ids are derived from the content, so trying
 * again is safe even if the job was stored after all.
 */
export const ANSWER_WITHIN_MS = 1_500;

function answerInTime<T>(work: Promise<T>, what: string): Promise<T> {
  return withDeadline(work, ANSWER_WITHIN_MS, () => {
    throw new QueueUnavailableError(`Cannot ${what}: Redis did not answer within ${ANSWER_WITHIN_MS} ms. Trying again is safe.`);
  });
}

/** The view of a job that is queued or running, from its state alone; undefined once it is finished (or gone). */
function pendingView(slot: ResultSlot, state: string): JobView<never> | undefined {
  if (state === 'active') return { id: slot.jobId, status: 'active' };
  if (state === 'completed' || state === 'failed' || state === 'unknown') return undefined;
  return { id: slot.jobId, status: 'queued' };
}

/**
 * Jobs whose results clients read later (reports, reorder suggestions): the worker stores the completed view
 * in the cache's Redis tier for the slot's lifetime and the job is removed at completion (policy
 * `removeOnComplete: true`), so a result outlives any volume of later jobs and is stored once. Readers look in
 * the cache first and at the job only while it is queued, running or failed.
 */
@Injectable()
export class JobResults {
  constructor(
    private readonly producer: JobProducer,
    private readonly cache: CacheService,
  ) {}

  /** Enqueues the job (data must carry `tenantId`), or answers the result already computed for the same slot. */
  submit<R>(slot: ResultSlot, data: { tenantId: string }): Promise<JobAnswer<R>> {
    return answerInTime(this.submitNow<R>(slot, data), `enqueue the ${slot.jobName} job`);
  }

  /**
   * The job's view. A completed one is answered from the cache, so it keeps answering (memory tier) while Redis
   * is down; concurrent requests for one that is not cached yet share a single job lookup. 404 for an unknown id
   * and for another tenant's job alike: existence is not disclosed.
   */
  async read<R>(slot: ResultSlot): Promise<JobAnswer<R>> {
    // The hot path (a completed result this instance already read): no timer, no shared lookup.
    const remembered = await this.cache.getFromMemory<CompletedView<R>>(slot.cacheKey);
    if (remembered !== undefined) return { view: remembered, cache: 'hit' };
    return answerInTime(this.readNow<R>(slot), `read the ${slot.jobName} result`);
  }

  /**
   * In the job handler, before it returns: throws when Redis did not take the result, so the attempt fails and
   * is retried instead of completing without one.
   */
  store<R>(slot: ResultSlot, result: R): Promise<void> {
    const view: CompletedView<R> = { id: slot.jobId, status: 'completed', result };
    return this.cache.setOrThrow(slot.cacheKey, view, this.cacheOptions(slot));
  }

  /**
   * For the kind's @OnJobFailed: a job that failed for good keeps only who it belongs to, not its input (up to
   * megabytes, kept for the kind's removeOnFail); submitting the same data again restores it for the retry.
   */
  async dropInput(job: Job<{ tenantId: string; userId?: string }>): Promise<void> {
    const { tenantId, userId } = job.data;
    await job.updateData(userId === undefined ? { tenantId } : { tenantId, userId });
  }

  /** The job's input in its handler; refused for good when it was dropped (a retry from the dashboard, not a re-submit). */
  inputOf<D extends { tenantId: string }, K extends keyof D>(job: Job<D>, field: K): NonNullable<D[K]> {
    const input = job.data[field];
    if (input === undefined || input === null) {
      throw new UnrecoverableError(`job ${job.id} has no ${String(field)}: it was dropped when the job failed for good; submit the same data again to retry it`);
    }
    return input as NonNullable<D[K]>;
  }

  private async submitNow<R>(slot: ResultSlot, data: { tenantId: string }): Promise<JobAnswer<R>> {
    const cached = await this.cache.get<CompletedView<R>>(slot.cacheKey);
    if (cached) return { view: cached.value, cache: 'hit' };
    await this.producer.add(slot.jobName, data, { jobId: slot.jobId });
    // For an id that already exists BullMQ returns a local copy without the stored state: ask for the state alone
    // (reading the job back cost a third of a POST, and grows with its payload), and read the job only when
    // what it holds matters: failed (to retry it) or completed.
    const state = await this.producer.getState(slot.jobId);
    const pending = pendingView(slot, state);
    if (pending) return { view: pending };
    const job = await this.producer.getJob(slot.jobId);
    if (!job) return this.completedMeanwhile<R>(slot);
    const view = await this.finishedView<R>(slot, job, state);
    if (view.status !== 'failed') return { view };
    // The same data failed before: posting it again is the way to ask for another try, with the input it dropped.
    await this.producer.retry(job, data);
    return { view: { id: slot.jobId, status: 'queued' } };
  }

  private async readNow<R>(slot: ResultSlot): Promise<JobAnswer<R>> {
    const { value: view, source } = await this.cache.getOrSet<JobView<R>>(slot.cacheKey, () => this.lookUp<R>(slot), {
      ...this.cacheOptions(slot),
      shouldCache: (candidate) => candidate.status === 'completed',
    });
    return view.status === 'completed' ? { view, cache: source === 'loader' ? 'miss' : 'hit' } : { view };
  }

  private async lookUp<R>(slot: ResultSlot): Promise<JobView<R>> {
    const job = await this.producer.getJob(slot.jobId);
    if (!job) return (await this.completedMeanwhile<R>(slot)).view;
    if (job.name !== slot.jobName || (job.data as { tenantId?: unknown }).tenantId !== slot.tenantId) throw this.notFound(slot);
    const state = await this.producer.getState(slot.jobId);
    return pendingView(slot, state) ?? this.finishedView<R>(slot, job, state);
  }

  /** No job: either it never existed, or it completed (and was removed) after the cache was read. */
  private async completedMeanwhile<R>(slot: ResultSlot): Promise<JobAnswer<R>> {
    const stored = await this.cache.get<CompletedView<R>>(slot.cacheKey);
    if (!stored) throw this.notFound(slot);
    return { view: stored.value, cache: 'miss' };
  }

  /** A job read while its state was completed, failed or unknown (completed and removed since). */
  private async finishedView<R>(slot: ResultSlot, job: Job, state: string): Promise<JobView<R>> {
    if (state === 'failed') {
      // Read while still running, then found failed: only a fresh read has the reason.
      const error = job.failedReason ?? (await this.producer.getJob(slot.jobId))?.failedReason ?? 'failed for an unknown reason';
      return { id: slot.jobId, status: 'failed', error };
    }
    if (state === 'completed' && job.returnvalue) {
      // Completed by a release that kept results in the job (before they moved to the cache).
      return { id: slot.jobId, status: 'completed', result: job.returnvalue as R };
    }
    return (await this.completedMeanwhile<R>(slot)).view;
  }

  private cacheOptions(slot: ResultSlot) {
    return { ttlMs: slot.ttlMs, tags: slot.tags };
  }

  private notFound(slot: ResultSlot): NotFoundException {
    return new NotFoundException(`No ${slot.jobName} ${slot.jobId}`);
  }
}
