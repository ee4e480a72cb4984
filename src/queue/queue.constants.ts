/**
 * One queue for every job kind (jobs are routed by name): each queue costs an idle worker its own
 * polling, so fewer queues is a smaller Upstash bill (README "Costs").
 */
export const JOBS_QUEUE = 'jobs';

/** Retention: bounded by count and age so a 256 MB database never fills with finished jobs. */
export const KEEP_COMPLETED = { count: 1000, age: 24 * 3600 };
export const KEEP_FAILED = { count: 1000, age: 7 * 24 * 3600 };
export const RETRY_BACKOFF = { type: 'exponential', delay: 1000 } as const;

/** How long a producer waits on Redis before refusing the job (the API answers 503). */
export const PRODUCER_TIMEOUT_MS = 1_500;
export const RETRY_AFTER_SECONDS = 5;
