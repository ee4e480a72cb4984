import { z } from 'zod';
import { jobViewSchemas } from '../job-results';
import { reorderIdSchema, type ReorderRequest } from './reorder-request';

/** The result, as a schema so that its type and its OpenAPI description are one thing. */
const suggestionSchema = z.object({
  sku: z.string(),
  dailySales: z.number().describe('Units sold per day over the sales window, rounded to 2 decimals (for display; the quantities use exact fractions).'),
  daysOfStock: z.number().int().nullable().describe('Whole days the stock on hand lasts at that pace; null when nothing sold.'),
  reorderPoint: z.number().int().describe('Stock that covers the lead time: at or below it, an order placed now arrives after the shelf is empty.'),
  suggestedQuantity: z.number().int().describe('Units to order so that stock on hand and on order covers the lead time plus coverDays.'),
  urgent: z.boolean().describe('On hand plus on order is at or below the reorder point (and something sells).'),
});

const suggestionsSchema = z
  .object({
    salesWindowDays: z.number().int(),
    coverDays: z.number().int(),
    suggestions: z.array(suggestionSchema).describe('Urgent first, then fewest days of stock, then sku.'),
    totalSuggestedUnits: z.number().int(),
  })
  .meta({ id: 'ReorderSuggestions' });

export type ReorderSuggestion = z.output<typeof suggestionSchema>;
export type ReorderSuggestions = z.output<typeof suggestionsSchema>;

export const reorderViewSchemas = jobViewSchemas('Reorder', reorderIdSchema, suggestionsSchema);

/** ceil(a / b) for non-negative integers, exactly. */
const ceilDiv = (a: number, b: number): number => Math.floor((a + b - 1) / b);

/**
 * Suggested order quantities from sales velocity and lead time. With v = unitsSold / salesWindowDays:
 * reorderPoint = ceil(v × leadTimeDays), target = ceil(v × (leadTimeDays + coverDays)),
 * suggestedQuantity = max(0, target − onHand − onOrder). Computed as integer fractions, so 7 units over 7 days
 * is exactly 1 a day, never 0.9999.
 */
export function computeReorderSuggestions(request: ReorderRequest): ReorderSuggestions {
  const { salesWindowDays: window, coverDays } = request;
  const suggestions = request.items.map((item): ReorderSuggestion => {
    const reorderPoint = ceilDiv(item.unitsSold * item.leadTimeDays, window);
    const target = ceilDiv(item.unitsSold * (item.leadTimeDays + coverDays), window);
    const available = item.onHand + item.onOrder;
    return {
      sku: item.sku,
      dailySales: Math.round((item.unitsSold * 100) / window) / 100,
      daysOfStock: item.unitsSold === 0 ? null : Math.floor((item.onHand * window) / item.unitsSold),
      reorderPoint,
      suggestedQuantity: Math.max(0, target - available),
      urgent: item.unitsSold > 0 && available <= reorderPoint,
    };
  });
  suggestions.sort(
    (a, b) =>
      Number(b.urgent) - Number(a.urgent) ||
      (a.daysOfStock ?? Number.POSITIVE_INFINITY) - (b.daysOfStock ?? Number.POSITIVE_INFINITY) ||
      (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0),
  );
  return { salesWindowDays: window, coverDays, suggestions, totalSuggestedUnits: suggestions.reduce((sum, s) => sum + s.suggestedQuantity, 0) };
}
