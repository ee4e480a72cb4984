import { describe, expect, it } from '@jest/globals';
import calculateSlot from 'cluster-key-slot';
import { PresenceKeys } from './presence.scripts';

const distinct = (keys: string[]) => new Set(keys.map((key) => calculateSlot(key))).size;

describe('PresenceKeys', () => {
  const keys = new PresenceKeys('pharmacare:presence', true);

  it('on a Cluster, keeps the registry in one slot and each tenant in one of its own, spreading tenants over slots', () => {
    expect(distinct([keys.live, keys.reapers, keys.lease('a.0'), keys.tenants('a.0'), keys.orphans('b.3')])).toBe(1);
    for (const tenantId of ['p1', 'p2', 'x}y', '{t:p1}']) expect(distinct(keys.ofInstanceInTenant('a.0', tenantId))).toBe(1);
    const tenants = Array.from({ length: 20 }, (_, i) => keys.online(`pharmacy-${i}`));
    expect(distinct(tenants)).toBeGreaterThan(10);
  });

  it('lets no tenant id spell another tenant hash tag, whatever braces it carries', () => {
    expect(calculateSlot(keys.online('{t:p1}'))).not.toBe(calculateSlot(keys.online('p1')));
    expect(keys.online('x}{t:p1')).toBe('pharmacare:presence:{t:x%7D%7Bt%3Ap1}:online');
    const long = 'é'.repeat(10_000);
    expect(distinct(keys.ofInstanceInTenant('a.0', long))).toBe(1);
  });

  it('on one Redis, keeps the per-tenant names earlier releases used, so holders count alike across a rolling deploy', () => {
    const single = new PresenceKeys('pharmacare:presence', false);
    expect([single.holders('p:1'), single.online('p:1')]).toEqual(['pharmacare:presence:holders:p:1', 'pharmacare:presence:online:p:1']);
    expect(single.held('a.0', 'p:1')).toBe('pharmacare:presence:held:a.0:p%3A1');
    expect(single.live).toBe('pharmacare:presence:live');
  });
});
