import { Injectable } from '@nestjs/common';
import type { Job } from 'bullmq';

export type JobHandler = (job: Job) => Promise<unknown>;

export interface JobHooks {
  /** After the job is stored as completed (so a client told about it finds it completed), in the worker that ran it. */
  readonly onCompleted?: (job: Job, result: unknown) => void;
}

/** Feature modules register what to run for a job name; the worker dispatches to them. */
@Injectable()
export class JobHandlers {
  private readonly handlers = new Map<string, { handler: JobHandler; hooks: JobHooks }>();

  register(name: string, handler: JobHandler, hooks: JobHooks = {}): void {
    if (this.handlers.has(name)) throw new Error(`A handler for job "${name}" is already registered`);
    this.handlers.set(name, { handler, hooks });
  }

  get(name: string): JobHandler | undefined {
    return this.handlers.get(name)?.handler;
  }

  hooks(name: string): JobHooks {
    return this.handlers.get(name)?.hooks ?? {};
  }
}
