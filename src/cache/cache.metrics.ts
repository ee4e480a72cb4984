import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { METRIC_PREFIX, MetricsRegistry } from '../metrics';
import { CacheService } from './cache.service';

/** Cache metrics, read at scrape time from CacheService's own counters (no Redis command). */
@Injectable()
export class CacheMetrics {
  constructor(registry: MetricsRegistry, cache: CacheService) {
    new Counter({
      name: `${METRIC_PREFIX}cache_lookups_total`,
      help: 'Cache lookups by tier (memory, then redis on a memory miss) and outcome (hit, miss; error: Redis unusable, the read failed open).',
      labelNames: ['tier', 'outcome'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [tier, outcomes] of Object.entries(cache.lookupCounts())) {
          for (const [outcome, count] of Object.entries<number>(outcomes)) this.inc({ tier, outcome }, count);
        }
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}cache_memory_entries`,
      help: 'Entries in the in-process cache tier.',
      registers: [registry],
      collect() {
        this.set(cache.memoryStats().entries);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}cache_memory_bytes`,
      help: 'Estimated size of the in-process cache tier (CACHE_MEMORY_MAX_MB bounds it).',
      registers: [registry],
      collect() {
        this.set(cache.memoryStats().bytes);
      },
    });
  }
}
