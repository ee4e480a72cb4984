import { describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { parsePrometheusText, total } from '../../test/support/prometheus-text';
import { MetricsRegistry } from './metrics.registry';

/** `# TYPE` lines of an exposition, name -> type. */
function typesOf(exposition: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(name, type);
  return types;
}

async function listening(): Promise<Server> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

describe('MetricsRegistry', () => {
  it('ends no gauge in _total: only counters may (promtool check metrics)', async () => {
    const types = typesOf(await new MetricsRegistry().metrics());
    expect(types.size).toBeGreaterThan(10);
    expect([...types].filter(([name, type]) => name.endsWith('_total') && type !== 'counter')).toEqual([]);
  });

  it("serves prom-client's *_total gauges as *_all gauges, counting the same things", async () => {
    const registry = new MetricsRegistry();
    const types = typesOf(await registry.metrics());
    for (const kind of ['handles', 'requests', 'resources']) {
      expect(types.get(`pharmacare_nodejs_active_${kind}_all`)).toBe('gauge');
      expect(types.has(`pharmacare_nodejs_active_${kind}_total`)).toBe(false);
    }

    // One scrape collects every metric in the same tick, so the total of all types matches the by-type family.
    const servers = await Promise.all([listening(), listening(), listening()]);
    const samples = parsePrometheusText(await registry.metrics());
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    for (const kind of ['handles', 'resources']) {
      expect(total(samples, `pharmacare_nodejs_active_${kind}_all`)).toBe(total(samples, `pharmacare_nodejs_active_${kind}`));
    }
    expect(total(samples, 'pharmacare_nodejs_active_handles', { type: 'Server' })).toBeGreaterThanOrEqual(3);
    expect(total(samples, 'pharmacare_nodejs_active_requests_all')).toBe(total(samples, 'pharmacare_nodejs_active_requests'));
  });
});
