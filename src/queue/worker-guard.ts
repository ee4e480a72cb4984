import type { Logger } from '@nestjs/common';
import { formatDuration } from '../common/format-duration';

/** What the guard needs of a worker: BullMQ's own pause (without waiting for jobs in flight) and resume. */
export interface PausableWorker {
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): void | Promise<void>;
}

export interface WorkerGuardHealth {
  readonly paused: boolean;
  readonly pausedForMs?: number;
  readonly reason?: string;
}

const FIRST_BACKOFF_MS = 1_000;
export const MAX_BACKOFF_MS = 30_000;
/** After a resume, this long without an error means Redis accepts the worker's commands again. */
const PROBATION_MS = 2_000;
/** Errors Redis does not explain (no known state) still trip the guard when they come this fast. */
const SPIN_ERRORS = 10;
const SPIN_WINDOW_MS = 1_000;

/**
 * BullMQ's main loop retries any error that is not a connection error at once: a Redis that refuses every script
 * (out of memory, a read-only replica, a renamed command, a cluster's CROSSSLOT) made it send 6,000-9,800 rejected
 * scripts a second at 0.9 core. The guard pauses the worker instead, for a capped, doubling backoff, logs once per
 * episode, and tells /health until a resumed worker runs without an error.
 */
export class WorkerGuard {
  private pausedSince?: number;
  private reason?: string;
  private backoffMs = 0;
  private resumeTimer?: NodeJS.Timeout;
  private probationTimer?: NodeJS.Timeout;
  private recentErrors: number[] = [];

  /** `stillRefused`: whether Redis is known to be in the state still (an open refusal episode), whatever the worker saw since. */
  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    private readonly stillRefused: () => boolean = () => false,
  ) {}

  /** An error from the worker's loop; `refusal` is Redis's explanation when it has one (OOM, READONLY...). */
  onError(worker: PausableWorker, message: string, refusal: string | undefined): void {
    const now = this.now();
    this.recentErrors = this.recentErrors.filter((at) => now - at < SPIN_WINDOW_MS);
    this.recentErrors.push(now);
    if (refusal || this.recentErrors.length >= SPIN_ERRORS) this.trip(worker, refusal ?? `every command fails (${message})`);
  }

  health(): WorkerGuardHealth {
    if (this.pausedSince === undefined) return { paused: false };
    return { paused: true, pausedForMs: this.now() - this.pausedSince, reason: this.reason };
  }

  stop(): void {
    clearTimeout(this.resumeTimer);
    clearTimeout(this.probationTimer);
  }

  private trip(worker: PausableWorker, reason: string): void {
    if (this.resumeTimer) return;
    clearTimeout(this.probationTimer);
    this.backoffMs = this.backoffMs === 0 ? FIRST_BACKOFF_MS : Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    if (this.pausedSince === undefined) {
      this.pausedSince = this.now();
      this.reason = reason;
      this.logger.warn(`worker paused: Redis refuses its commands: ${reason}. Trying again in ${this.backoffMs / 1000} s, then backing off up to ${MAX_BACKOFF_MS / 1000} s; jobs stay queued`);
    }
    void worker.pause(true).catch(() => undefined);
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      void Promise.resolve(worker.resume()).catch(() => undefined);
      // A worker blocked waiting for a job sends nothing Redis could refuse: quiet is not proof that Redis is back.
      this.probationTimer = setTimeout(() => (this.stillRefused() ? this.trip(worker, this.reason ?? '') : this.recovered()), PROBATION_MS);
      this.probationTimer.unref();
    }, this.backoffMs);
    this.resumeTimer.unref();
  }

  private recovered(): void {
    if (this.pausedSince === undefined) return;
    this.logger.log(`worker resumed: Redis accepts its commands again after ${formatDuration(this.now() - this.pausedSince)}`);
    this.pausedSince = undefined;
    this.reason = undefined;
    this.backoffMs = 0;
  }
}
