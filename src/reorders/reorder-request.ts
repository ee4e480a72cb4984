import { z } from 'zod';

export const MAX_REORDER_ITEMS = 5_000;
export const MAX_SKU_LENGTH = 64;
/** Bounds that keep every product below in exact integer arithmetic (1e9 units × 730 days < 2^53). */
export const MAX_UNITS = 1_000_000_000;
export const MAX_DAYS = 365;
export const DEFAULT_COVER_DAYS = 14;

const units = (what: string) =>
  z
    .number({ error: `${what} must be a whole number of units` })
    .int({ error: `${what} must be a whole number of units`, abort: true })
    .nonnegative({ error: `${what} must not be negative` })
    .max(MAX_UNITS, { error: `${what} must be at most ${MAX_UNITS}` });

const days = (what: string, min: number) =>
  z
    .number({ error: `${what} must be a whole number of days` })
    .int({ error: `${what} must be a whole number of days`, abort: true })
    .min(min, { error: `${what} must be at least ${min}` })
    .max(MAX_DAYS, { error: `${what} must be at most ${MAX_DAYS}` });

export const reorderItemSchema = z.strictObject({
  sku: z.string().trim().min(1, { error: 'must not be empty' }).max(MAX_SKU_LENGTH, { error: `must be at most ${MAX_SKU_LENGTH} characters` }),
  onHand: units('onHand'),
  onOrder: units('onOrder').default(0),
  leadTimeDays: days('leadTimeDays', 0),
  unitsSold: units('unitsSold'),
});

/** POST /reorders: current stock and the units sold per SKU over the last `salesWindowDays`. */
export const reorderRequestSchema = z.strictObject({
  salesWindowDays: days('salesWindowDays', 1),
  coverDays: days('coverDays', 1).default(DEFAULT_COVER_DAYS),
  items: z
    .array(reorderItemSchema)
    .min(1, { error: 'must have at least 1 item' })
    .max(MAX_REORDER_ITEMS, { error: `must have at most ${MAX_REORDER_ITEMS} items` })
    .refine((items) => new Set(items.map((item) => item.sku)).size === items.length, { error: 'must not list a sku twice' }),
});

export type ReorderItem = z.output<typeof reorderItemSchema>;
export type ReorderRequest = z.output<typeof reorderRequestSchema>;
