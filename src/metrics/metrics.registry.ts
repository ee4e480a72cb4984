import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/** Every metric of the app starts with it, Node's default ones too (pharmacare_process_cpu_seconds_total, ...). */
export const METRIC_PREFIX = 'pharmacare_';

/**
 * prom-client's default gauges whose names end in _total, which Prometheus reserves for counters: `promtool
 * check metrics` fails the scrape on them ('non-counter metrics should not have "_total" suffix'; upstream
 * prometheus/client_js#283). Each is served as `<name>_all` instead, with the same value.
 */
const GAUGES_NAMED_LIKE_COUNTERS: Readonly<Record<string, string>> = {
  nodejs_active_handles_total: 'Number of active libuv handles, all types together (prom-client: nodejs_active_handles_total).',
  nodejs_active_requests_total: 'Number of active libuv requests, all types together (prom-client: nodejs_active_requests_total).',
  nodejs_active_resources_total: 'Number of resources keeping the event loop alive, all types together (prom-client: nodejs_active_resources_total).',
};

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
    for (const [name, help] of Object.entries(GAUGES_NAMED_LIKE_COUNTERS)) {
      this.rename(METRIC_PREFIX + name, METRIC_PREFIX + name.replace(/_total$/, '_all'), help);
    }
  }

  /** Serves a registered gauge under another name: prom-client's own collector still computes the value. */
  private rename(from: string, to: string, help: string): void {
    const original = this.getSingleMetric(from);
    // prom-client leaves out what this Node version cannot measure (getActiveResourcesInfo is Node 17.3+).
    if (original === undefined) return;
    this.removeSingleMetric(from);
    new Gauge({
      name: to,
      help,
      registers: [this],
      async collect() {
        const { values } = await original.get();
        this.reset();
        for (const { labels, value } of values) this.set(labels, value);
      },
    });
  }
}
