import { Injectable, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { type Job, PRIORITY_LIMIT } from 'bullmq';
import { AppConfig } from '../config';
import { JOB_HANDLER, JOB_LISTENER, JobEvent, JobPolicy } from './job-handler.decorator';
import { KEEP_COMPLETED, KEEP_FAILED, RETRY_BACKOFF } from './queue.constants';

export interface RegisteredJobHandler {
  readonly name: string;
  /** `Class.method`, for messages. */
  readonly owner: string;
  /** The declared policy over the deployment's defaults. */
  readonly policy: JobPolicy;
  readonly run: (job: Job) => Promise<unknown>;
  /** @OnJobCompleted and @OnJobFailed methods of this kind. */
  readonly listeners: Readonly<Record<JobEvent, readonly JobListener[]>>;
}

export interface JobListener {
  readonly owner: string;
  /** With the job's result when it completed, its error when it failed. */
  readonly notify: (job: Job, outcome: unknown) => unknown;
}

type Registered = RegisteredJobHandler & { listeners: Record<JobEvent, JobListener[]> };

/** A job kind declared twice, or with a policy BullMQ would reject later: the app must not boot. */
export class JobHandlerDeclarationError extends Error {}

/**
 * Every @JobHandler of the application, found once at boot. The worker dispatches by job name through it
 * and the producer asks it for a kind's policy, so a feature declares its jobs without touching this folder.
 */
@Injectable()
export class JobHandlerRegistry implements OnModuleInit {
  private handlers?: Map<string, RegisteredJobHandler>;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.all();
  }

  get(name: string): RegisteredJobHandler | undefined {
    return this.all().get(name);
  }

  names(): string[] {
    return [...this.all().keys()];
  }

  private all(): Map<string, RegisteredJobHandler> {
    this.handlers ??= this.explore();
    return this.handlers;
  }

  private explore(): Map<string, RegisteredJobHandler> {
    const handlers = new Map<string, Registered>();
    const listeners: { name: string; event: JobEvent; listener: JobListener }[] = [];
    const defaults: JobPolicy = { attempts: this.config.queue.jobAttempts, backoff: RETRY_BACKOFF, removeOnComplete: KEEP_COMPLETED, removeOnFail: KEEP_FAILED };
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      const methods = instance as Record<string, (...args: unknown[]) => unknown>;
      for (const method of this.scanner.getAllMethodNames(Object.getPrototypeOf(instance) as object)) {
        const owner = `${instance.constructor.name}.${method}`;
        const listened = this.discovery.getMetadataByDecorator(JOB_LISTENER, wrapper, method);
        if (listened) listeners.push({ ...listened, listener: { owner, notify: (job, outcome) => methods[method](job, outcome) } });
        const declared = this.discovery.getMetadataByDecorator(JOB_HANDLER, wrapper, method);
        if (!declared) continue;
        const existing = handlers.get(declared.name);
        if (existing) {
          throw new JobHandlerDeclarationError(
            `Job "${declared.name}" has two handlers, ${existing.owner} and ${owner}: one process runs one handler per job name. Rename one of them.`,
          );
        }
        checkPolicy(declared.name, owner, declared.policy);
        const run = (job: Job) => methods[method](job) as Promise<unknown>;
        handlers.set(declared.name, { name: declared.name, owner, policy: { ...defaults, ...declared.policy }, run, listeners: { completed: [], failed: [] } });
      }
    }
    for (const { name, event, listener } of listeners) {
      const handler = handlers.get(name);
      if (!handler) {
        const decorator = event === 'completed' ? 'OnJobCompleted' : 'OnJobFailed';
        throw new JobHandlerDeclarationError(`@${decorator}('${name}') on ${listener.owner}: no @JobHandler('${name}') is declared, so no such job ever ${event === 'completed' ? 'completes' : 'fails'}.`);
      }
      handler.listeners[event].push(listener);
    }
    return handlers;
  }
}

function checkPolicy(name: string, owner: string, policy: JobPolicy): void {
  const { attempts, priority } = policy;
  if (attempts !== undefined && (!Number.isInteger(attempts) || attempts < 1)) {
    throw new JobHandlerDeclarationError(`@JobHandler('${name}') on ${owner}: attempts must be a whole number of at least 1, got ${attempts}`);
  }
  // BullMQ's own bound, checked here so a bad value fails the boot instead of every add().
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > PRIORITY_LIMIT)) {
    throw new JobHandlerDeclarationError(`@JobHandler('${name}') on ${owner}: priority must be a whole number from 0 to ${PRIORITY_LIMIT}, got ${priority}`);
  }
}
