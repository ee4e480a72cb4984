import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { reportId } from './report-id';
import type { ReportRequest, SaleLine } from './report-request';

const line = (overrides: Partial<SaleLine> = {}): SaleLine => ({
  sku: 'AMOX-500',
  quantity: 2,
  unitPrice: 3.5,
  soldAt: '2026-11-01T10:00:00Z',
  ...overrides,
});

const request = (...sales: SaleLine[]): ReportRequest => ({ type: 'sales-summary', sales });

describe('reportId', () => {
  it('is rpt_ followed by the first 32 hex digits of the sha256 of the canonical JSON', () => {
    // Written out by hand: fixed key order, soldAt as toISOString() gives it (with milliseconds), lines in order.
    const canonical =
      '{"tenantId":"pharmacy-42","type":"sales-summary","sales":[' +
      '{"sku":"AMOX-500","quantity":2,"unitPrice":3.5,"soldAt":"2026-11-01T10:00:00.000Z"},' +
      '{"sku":"PARA-1000","quantity":1,"unitPrice":0.99,"soldAt":"2026-11-02T07:30:00.000Z"}]}';
    const expected = 'rpt_' + createHash('sha256').update(canonical).digest('hex').slice(0, 32);

    // Keys given in another order, and a +02:00 offset, must not matter.
    const id = reportId(
      'pharmacy-42',
      request(
        { soldAt: '2026-11-01T10:00:00Z', unitPrice: 3.5, quantity: 2, sku: 'AMOX-500' },
        { sku: 'PARA-1000', quantity: 1, unitPrice: 0.99, soldAt: '2026-11-02T09:30:00+02:00' },
      ),
    );
    expect(id).toBe(expected);
    expect(id).toMatch(/^rpt_[0-9a-f]{32}$/);
  });

  it('gives the same id for the same data posted again', () => {
    expect(reportId('t1', request(line(), line({ sku: 'IBU-200' })))).toBe(reportId('t1', request(line(), line({ sku: 'IBU-200' }))));
  });

  it('gives another tenant another id', () => {
    expect(reportId('t1', request(line()))).not.toBe(reportId('t2', request(line())));
  });

  it('cannot be confused by a tenant id that looks like JSON', () => {
    expect(reportId('t1","type":"x', request(line()))).not.toBe(reportId('t1', request(line())));
  });

  it.each<[string, Partial<SaleLine>]>([
    ['sku', { sku: 'AMOX-250' }],
    ['quantity', { quantity: 3 }],
    ['unitPrice', { unitPrice: 3.51 }],
    ['soldAt', { soldAt: '2026-11-01T10:00:01Z' }],
  ])('changes when %s changes', (_field, change) => {
    const base = reportId('t1', request(line(), line({ sku: 'IBU-200' })));
    expect(reportId('t1', request(line(), line({ sku: 'IBU-200', ...change })))).not.toBe(base);
  });

  it('changes when the lines are reordered, added or removed', () => {
    const a = line();
    const b = line({ sku: 'IBU-200' });
    const base = reportId('t1', request(a, b));
    expect(reportId('t1', request(b, a))).not.toBe(base);
    expect(reportId('t1', request(a, b, b))).not.toBe(base);
    expect(reportId('t1', request(a))).not.toBe(base);
  });

  it('treats the same instant written with another offset or precision as the same data', () => {
    const utc = reportId('t1', request(line({ soldAt: '2026-11-01T10:00:00Z' })));
    expect(reportId('t1', request(line({ soldAt: '2026-11-01T11:00:00+01:00' })))).toBe(utc);
    expect(reportId('t1', request(line({ soldAt: '2026-11-01T05:30:00-04:30' })))).toBe(utc);
    expect(reportId('t1', request(line({ soldAt: '2026-11-01T10:00:00.000Z' })))).toBe(utc);
  });
});
