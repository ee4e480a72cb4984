import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';

export type JobHandler = (job: Job) => Promise<unknown>;

/** Feature modules register what to run for a job name; the worker dispatches to them. */
@Injectable()
export class JobHandlers {
  private readonly handlers = new Map<string, JobHandler>();

  register(name: string, handler: JobHandler): void {
    if (this.handlers.has(name)) throw new Error(`A handler for job "${name}" is already registered`);
    this.handlers.set(name, handler);
  }

  get(name: string): JobHandler | undefined {
    return this.handlers.get(name);
  }
}
