import { describe, expect, it } from '@jest/globals';
import type { ReorderItem } from './reorder-request';
import { computeReorderSuggestions } from './reorder-suggestions';

const item = (overrides: Partial<ReorderItem>): ReorderItem => ({ sku: 'AMOX-500', onHand: 0, onOrder: 0, leadTimeDays: 7, unitsSold: 0, ...overrides });

describe('computeReorderSuggestions', () => {
  it('orders enough to cover the lead time plus coverDays, less stock on hand and on order', () => {
    // 2 a day; lead 7 + cover 14 = 21 days: 42 units; 10 + 5 available: 27.
    const [suggestion] = computeReorderSuggestions({ salesWindowDays: 28, coverDays: 14, items: [item({ unitsSold: 56, onHand: 10, onOrder: 5 })] }).suggestions;
    expect(suggestion).toEqual({ sku: 'AMOX-500', dailySales: 2, daysOfStock: 5, reorderPoint: 14, suggestedQuantity: 27, urgent: false });
  });

  it('is exact where floating point is not: 0.1 a day over 30 days is 3 units, not 4', () => {
    // A: 3 sold in 30 days, over 7 + 23 = 30 days: exactly 3 (in floating point 0.1 × 30 = 3.0000000000000004, rounded up to 4).
    // B: 1 a day over 30 days, 30 on hand: nothing to order.
    const result = computeReorderSuggestions({
      salesWindowDays: 30,
      coverDays: 23,
      items: [item({ sku: 'A', unitsSold: 3, leadTimeDays: 7 }), item({ sku: 'B', unitsSold: 30, onHand: 30, leadTimeDays: 7 })],
    });
    expect(result.suggestions.find((s) => s.sku === 'A')?.suggestedQuantity).toBe(3);
    expect(result.suggestions.find((s) => s.sku === 'B')?.suggestedQuantity).toBe(0);
  });

  it('rounds quantities up: a fraction of a unit still needs a whole one', () => {
    // 1 unit in 28 days over 7 + 14 days: 0.75 of a unit: order 1. Reorder point ceil(0.25) = 1.
    const [suggestion] = computeReorderSuggestions({ salesWindowDays: 28, coverDays: 14, items: [item({ unitsSold: 1 })] }).suggestions;
    expect(suggestion).toMatchObject({ suggestedQuantity: 1, reorderPoint: 1, urgent: true, daysOfStock: 0 });
  });

  it('suggests nothing for a SKU that did not sell, and never calls it urgent', () => {
    const [suggestion] = computeReorderSuggestions({ salesWindowDays: 28, coverDays: 14, items: [item({ onHand: 0 })] }).suggestions;
    expect(suggestion).toMatchObject({ suggestedQuantity: 0, reorderPoint: 0, urgent: false, daysOfStock: null, dailySales: 0 });
  });

  it('lists urgent SKUs first, then by fewest days of stock, then by sku, and totals the units', () => {
    const result = computeReorderSuggestions({
      salesWindowDays: 10,
      coverDays: 10,
      items: [
        item({ sku: 'C-NOSALES', onHand: 1 }),
        item({ sku: 'B-PLENTY', unitsSold: 10, onHand: 100, leadTimeDays: 1 }),
        item({ sku: 'A-PLENTY', unitsSold: 10, onHand: 100, leadTimeDays: 1 }),
        item({ sku: 'D-URGENT', unitsSold: 10, onHand: 2, leadTimeDays: 5 }),
        item({ sku: 'E-LOW', unitsSold: 10, onHand: 20, leadTimeDays: 1 }),
      ],
    });
    expect(result.suggestions.map((s) => s.sku)).toEqual(['D-URGENT', 'E-LOW', 'A-PLENTY', 'B-PLENTY', 'C-NOSALES']);
    expect(result.totalSuggestedUnits).toBe(result.suggestions.reduce((sum, s) => sum + s.suggestedQuantity, 0));
    expect(result.totalSuggestedUnits).toBe(13);
  });

  it('stays exact at the largest inputs the schema allows', () => {
    const [suggestion] = computeReorderSuggestions({ salesWindowDays: 1, coverDays: 365, items: [item({ unitsSold: 1_000_000_000, leadTimeDays: 365 })] }).suggestions;
    expect(suggestion.suggestedQuantity).toBe(730_000_000_000);
    expect(Number.isSafeInteger(suggestion.suggestedQuantity)).toBe(true);
  });
});
