import { describe, expect, it } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import type { Job } from 'bullmq';
import { ConfigModule, loadConfig } from '../config';
import { JobHandler, OnJobCompleted } from './job-handler.decorator';
import { JobHandlerDeclarationError, JobHandlerRegistry } from './job-handler.registry';

@Injectable()
class InventoryJobs {
  @JobHandler('inventory:recount', { attempts: 5, removeOnFail: { age: 3600 } })
  async recount(job: Job): Promise<string> {
    return `recounted ${String(job.id)}`;
  }

  // Not a handler: must not be registered.
  async helper(): Promise<void> {}
}

@Injectable()
class BillingJobs {
  @JobHandler('billing:invoice')
  async invoice(): Promise<void> {}
}

@Injectable()
class OtherInventoryJobs {
  @JobHandler('inventory:recount')
  async recountAgain(): Promise<void> {}
}

@Injectable()
class BadPolicyJobs {
  @JobHandler('bad', { attempts: 0 })
  async run(): Promise<void> {}
}

@Injectable()
class InventoryListeners {
  heard: string[] = [];

  @OnJobCompleted('inventory:recount')
  recounted(job: Job, result: unknown): void {
    this.heard.push(`${String(job.id)}: ${String(result)}`);
  }
}

@Injectable()
class OrphanListener {
  @OnJobCompleted('nobody:runs-this')
  heard(): void {}
}

@Module({ providers: [OrphanListener] })
class OrphanListenerModule {}

@Module({ providers: [InventoryJobs, InventoryListeners] })
class InventoryModule {}
@Module({ providers: [BillingJobs] })
class BillingModule {}
@Module({ providers: [OtherInventoryJobs] })
class OtherInventoryModule {}
@Module({ providers: [BadPolicyJobs] })
class BadPolicyModule {}

async function registryWith(...features: (new () => object)[]): Promise<JobHandlerRegistry> {
  const moduleRef = await Test.createTestingModule({
    imports: [ConfigModule.forRoot(loadConfig({ NODE_ENV: 'test', QUEUE_JOB_ATTEMPTS: '4' })), DiscoveryModule, ...features],
    providers: [JobHandlerRegistry],
  }).compile();
  await moduleRef.init();
  return moduleRef.get(JobHandlerRegistry);
}

describe('JobHandlerRegistry', () => {
  it('finds @JobHandler methods on providers of any module, each with its policy over the deployment defaults', async () => {
    const registry = await registryWith(InventoryModule, BillingModule);
    expect(registry.names().sort()).toEqual(['billing:invoice', 'inventory:recount']);
    const recount = registry.get('inventory:recount');
    expect(recount?.owner).toBe('InventoryJobs.recount');
    // Declared fields win; the rest are the defaults (QUEUE_JOB_ATTEMPTS=4 here for billing).
    expect(recount?.policy).toEqual({ attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { count: 1000, age: 86400 }, removeOnFail: { age: 3600 } });
    expect(registry.get('billing:invoice')?.policy.attempts).toBe(4);
    expect(await recount?.run({ id: '42' } as Job)).toBe('recounted 42');
    expect(registry.get('helper')).toBeUndefined();
  });

  it('fails the boot when two providers declare the same job name, naming both', async () => {
    const boot = registryWith(InventoryModule, OtherInventoryModule);
    await expect(boot).rejects.toBeInstanceOf(JobHandlerDeclarationError);
    await expect(registryWith(InventoryModule, OtherInventoryModule)).rejects.toThrow(
      'Job "inventory:recount" has two handlers, InventoryJobs.recount and OtherInventoryJobs.recountAgain: one process runs one handler per job name. Rename one of them.',
    );
  });

  it('attaches @OnJobCompleted methods to their kind, and refuses one for a kind nobody handles', async () => {
    const registry = await registryWith(InventoryModule);
    const listeners = registry.get('inventory:recount')?.listeners.completed ?? [];
    expect(listeners.map((listener) => listener.owner)).toEqual(['InventoryListeners.recounted']);
    await listeners[0].notify({ id: '7' } as Job, 'ok');
    await expect(registryWith(InventoryModule, OrphanListenerModule)).rejects.toThrow(
      "@OnJobCompleted('nobody:runs-this') on OrphanListener.heard: no @JobHandler('nobody:runs-this') is declared, so no such job ever completes.",
    );
  });

  it('fails the boot on a policy BullMQ would refuse, naming the handler', async () => {
    await expect(registryWith(BadPolicyModule)).rejects.toThrow("@JobHandler('bad') on BadPolicyJobs.run: attempts must be a whole number of at least 1, got 0");
  });
});
