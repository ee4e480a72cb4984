import { z } from 'zod';

export const MAX_REORDER_ITEMS = 5_000;
export const MAX_SKU_LENGTH = 64;
/** Bounds that keep every product below in exact integer arithmetic (1e9 units × 730 days < 2^53). */
export const MAX_UNITS = 1_000_000_000;
export const MAX_DAYS = 365;
export const DEFAULT_COVER_DAYS = 14;

// Messages follow the field's path in the 400 (`items[0].onHand must not be negative`).
const units = () =>
  z
    .number({ error: 'must be a whole number of units' })
    .int({ error: 'must be a whole number of units', abort: true })
    .nonnegative({ error: 'must not be negative' })
    .max(MAX_UNITS, { error: `must be at most ${MAX_UNITS}` });

const days = (min: number) =>
  z
    .number({ error: 'must be a whole number of days' })
    .int({ error: 'must be a whole number of days', abort: true })
    .min(min, { error: `must be at least ${min}` })
    .max(MAX_DAYS, { error: `must be at most ${MAX_DAYS}` });

export const reorderItemSchema = z.strictObject({
  sku: z.string().trim().min(1, { error: 'must not be empty' }).max(MAX_SKU_LENGTH, { error: `must be at most ${MAX_SKU_LENGTH} characters` }),
  onHand: units().describe('Units on the shelf now.'),
  onOrder: units().default(0).describe('Units ordered and not yet delivered.'),
  leadTimeDays: days(0).describe('Days from placing an order to having it on the shelf.'),
  unitsSold: units().describe('Units sold over the last salesWindowDays.'),
});

/** POST /reorders: current stock and the units sold per SKU over the last `salesWindowDays`. */
export const reorderRequestSchema = z
  .strictObject({
  salesWindowDays: days(1).describe('How many days the unitsSold figures cover.'),
  coverDays: days(1).default(DEFAULT_COVER_DAYS).describe('How many days an order should last once it arrives.'),
  items: z
    .array(reorderItemSchema)
    .min(1, { error: 'must have at least 1 item' })
    .max(MAX_REORDER_ITEMS, { error: `must have at most ${MAX_REORDER_ITEMS} items` })
    .refine((items) => new Set(items.map((item) => item.sku)).size === items.length, { error: 'must not list a sku twice' }),
  })
  .meta({ id: 'ReorderRequest', example: { salesWindowDays: 28, items: [{ sku: 'AMOX-500', onHand: 10, onOrder: 5, leadTimeDays: 7, unitsSold: 56 }] } });

/** A reorder id as POST /reorders hands it out: validates GET /reorders/:id's parameter, and documents it. */
export const reorderIdSchema = z
  .string()
  .regex(/^ro_[0-9a-f]{32}$/, { error: 'must be a reorder id: ro_ followed by 32 lowercase hex digits' })
  .meta({ description: 'The id POST /reorders answered with.', example: 'ro_0f1e2d3c4b5a69788796a5b4c3d2e1f0' });

export type ReorderItem = z.output<typeof reorderItemSchema>;
export type ReorderRequest = z.output<typeof reorderRequestSchema>;
