import { describe, expect, it } from '@jest/globals';
import type { SaleLine } from './report-request';
import { computeSalesSummary } from './sales-summary';

const sale = (sku: string, quantity: number, unitPrice: number, soldAt: string): SaleLine => ({ sku, quantity, unitPrice, soldAt });

describe('computeSalesSummary', () => {
  it('totals a small example by SKU and by UTC day', () => {
    const sales = [
      sale('E', 3, 1.1, '2026-11-03T12:00:00Z'), //      330 cents (3 × 1.1 is 3.3000000000000003 in floats)
      sale('D', 1, 0.2, '2026-11-03T12:00:00Z'), //       20 cents
      sale('B', 1, 7, '2026-11-02T09:00:00Z'), //        700 cents
      sale('C', 3, 0.1, '2026-11-01T23:30:00-01:00'), //  30 cents, 2026-11-02T00:30Z (3 × 0.1 is 0.30000000000000004)
      sale('C', 1, 0.2, '2026-11-03T00:00:00+02:00'), //  20 cents, 2026-11-02T22:00Z
      sale('A', 2, 3.5, '2026-11-01T10:00:00Z'), //      700 cents
      sale('D', 1, 0.1, '2026-11-01T00:00:00Z'), //       10 cents
    ];

    expect(computeSalesSummary(sales)).toEqual({
      totalRevenue: 18.1, // 330 + 20 + 700 + 30 + 20 + 700 + 10 = 1810 cents
      totalUnits: 12, //     3 + 1 + 1 + 3 + 1 + 2 + 1
      bySku: [
        { sku: 'A', units: 2, revenue: 7 }, // A and B tie at 7.00: sku ascending
        { sku: 'B', units: 1, revenue: 7 },
        { sku: 'E', units: 3, revenue: 3.3 },
        { sku: 'C', units: 4, revenue: 0.5 },
        { sku: 'D', units: 2, revenue: 0.3 }, // 0.1 + 0.2, not 0.30000000000000004
      ],
      byDay: [
        { day: '2026-11-01', units: 3, revenue: 7.1 }, // A 700 + D 10
        { day: '2026-11-02', units: 5, revenue: 7.5 }, // B 700 + C 30 + C 20
        { day: '2026-11-03', units: 4, revenue: 3.5 }, // E 330 + D 20
      ],
    });
  });

  it('rounds each line to cents before summing', () => {
    // 0.125 × 100 = 12.5 exactly, rounded up to 13 cents per line: 39 cents, not round(37.5) = 38.
    const sales = [1, 2, 3].map(() => sale('X', 1, 0.125, '2026-11-01T10:00:00Z'));
    const summary = computeSalesSummary(sales);
    expect(summary.totalRevenue).toBe(0.39);
    expect(summary.bySku).toEqual([{ sku: 'X', units: 3, revenue: 0.39 }]);
  });

  it('sums ten sales of 0.1 to exactly 1', () => {
    const sales = Array.from({ length: 10 }, () => sale('X', 1, 0.1, '2026-11-01T10:00:00Z'));
    expect(computeSalesSummary(sales).totalRevenue).toBe(1);
  });

  it('returns zeros and empty lists for no sales', () => {
    expect(computeSalesSummary([])).toEqual({ totalRevenue: 0, totalUnits: 0, bySku: [], byDay: [] });
  });

  it('totals 50,000 lines correctly', () => {
    const SKUS = 97;
    const DAYS = 30;
    const sales: SaleLine[] = [];
    const priceCents: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      const cents = (i * 37) % 10_000;
      priceCents.push(cents);
      const soldAt = new Date(Date.UTC(2026, 0, 1 + (i % DAYS), i % 24, i % 60)).toISOString();
      sales.push(sale(`SKU-${i % SKUS}`, (i % 5) + 1, cents / 100, soldAt));
    }

    // Independent totals: integer cents only, no floats involved.
    let expectedCents = 0;
    let expectedUnits = 0;
    let sku0Cents = 0;
    let sku0Units = 0;
    for (let i = 0; i < 50_000; i++) {
      const quantity = (i % 5) + 1;
      expectedCents += quantity * priceCents[i];
      expectedUnits += quantity;
      if (i % SKUS === 0) {
        sku0Cents += quantity * priceCents[i];
        sku0Units += quantity;
      }
    }

    const summary = computeSalesSummary(sales);
    expect(summary.totalRevenue).toBe(expectedCents / 100);
    expect(summary.totalUnits).toBe(expectedUnits);
    expect(summary.bySku).toHaveLength(SKUS);
    expect(summary.byDay).toHaveLength(DAYS);
    expect(summary.byDay[0].day).toBe('2026-01-01');
    expect(summary.byDay[DAYS - 1].day).toBe('2026-01-30');
    expect(summary.bySku.find((entry) => entry.sku === 'SKU-0')).toEqual({ sku: 'SKU-0', units: sku0Units, revenue: sku0Cents / 100 });

    const skuCents = summary.bySku.reduce((sum, entry) => sum + Math.round(entry.revenue * 100), 0);
    const dayCents = summary.byDay.reduce((sum, entry) => sum + Math.round(entry.revenue * 100), 0);
    expect(skuCents).toBe(expectedCents);
    expect(dayCents).toBe(expectedCents);
    for (let k = 1; k < summary.bySku.length; k++) {
      expect(summary.bySku[k - 1].revenue).toBeGreaterThanOrEqual(summary.bySku[k].revenue);
    }
  });
});
