import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** Every metric of the app starts with it, Node's default ones too (pharmacare_process_cpu_seconds_total, ...). */
export const METRIC_PREFIX = 'pharmacare_';

/**
 * The process's one prom-client registry, behind GET /metrics. Each capability defines its metrics next to
 * its code and registers them here (`registers: [registry]`), preferably read at scrape time through
 * `collect()` from counters it keeps anyway, so hot paths stay plain. This module knows none of them.
 */
@Injectable()
export class MetricsRegistry extends Registry {
  constructor() {
    super();
    collectDefaultMetrics({ register: this, prefix: METRIC_PREFIX });
  }
}
