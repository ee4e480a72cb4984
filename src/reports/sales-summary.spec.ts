import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { MAX_LINE_REVENUE, MAX_QUANTITY, MAX_UNIT_PRICE, type SaleLine } from './report-request';
import { computeSalesSummary, lineCents } from './sales-summary';

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

describe('computeSalesSummary money, against an independent BigInt reference', () => {
  /** A price as its decimal digits and scale, so the reference never goes through a double. */
  interface Price {
    digits: bigint;
    scale: number;
  }
  const priceValue = ({ digits, scale }: Price) => Number(`${digits}e-${scale}`);
  /** Half up, on exact integers: round(q × digits × 100 / 10^scale). */
  const referenceCents = (quantity: number, { digits, scale }: Price) => {
    const denominator = 10n ** BigInt(scale);
    return (2n * BigInt(quantity) * digits * 100n + denominator) / (2n * denominator);
  };
  /** Cents as the decimal a JSON number must spell: 123456 -> "1234.56", 1230 -> "12.3", 100 -> "1". */
  const dollars = (cents: bigint) => {
    const fraction = (cents % 100n).toString().padStart(2, '0').replace(/0+$/, '');
    return fraction ? `${cents / 100n}.${fraction}` : `${cents / 100n}`;
  };

  const line = fc
    .record({ quantity: fc.integer({ min: 1, max: MAX_QUANTITY }), scale: fc.integer({ min: 0, max: 6 }), digits: fc.bigInt({ min: 0n, max: 10n ** 12n }) })
    .map(({ quantity, scale, digits }) => {
      // Within the request's bounds: unitPrice <= MAX_UNIT_PRICE and quantity × unitPrice <= MAX_LINE_REVENUE.
      const limit = BigInt(Math.min(MAX_UNIT_PRICE, Math.floor(MAX_LINE_REVENUE / quantity))) * 10n ** BigInt(scale);
      return { quantity, price: { digits: digits % (limit + 1n), scale } };
    });

  it('rounds 1.005 and 1.015 half up, as written (floats say 1.00 and 1.01)', () => {
    expect(lineCents(1, 1.005)).toBe(101);
    expect(lineCents(1, 1.015)).toBe(102);
    expect(lineCents(3, 0.335)).toBe(101); // 1.005
    expect(lineCents(1, 2.5e-7)).toBe(0);
    expect(lineCents(1, 0.005)).toBe(1);
  });

  it('gives every total exactly, for random lines within the request bounds', () => {
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 200 }), (lines) => {
        const sales = lines.map(({ quantity, price }, index) => sale(`S${index % 7}`, quantity, priceValue(price), '2026-11-01T10:00:00Z'));
        const summary = computeSalesSummary(sales);
        const expected = lines.reduce((sum, { quantity, price }) => sum + referenceCents(quantity, price), 0n);
        expect(String(summary.totalRevenue)).toBe(dollars(expected));
        for (const { sku, revenue } of summary.bySku) {
          const skuCents = lines.reduce((sum, { quantity, price }, index) => (`S${index % 7}` === sku ? sum + referenceCents(quantity, price) : sum), 0n);
          expect(String(revenue)).toBe(dollars(skuCents));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is exact at the largest total the bounds allow (50,000 lines of 100 × 999,999.99)', () => {
    const sales = Array.from({ length: 50_000 }, () => sale('X', 100, 999_999.99, '2026-11-01T10:00:00Z'));
    expect(String(computeSalesSummary(sales).totalRevenue)).toBe(dollars(50_000n * 9_999_999_900n));
  });
});
