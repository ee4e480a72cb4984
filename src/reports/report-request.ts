import { z } from 'zod';

export const REPORT_TYPES = ['sales-summary'] as const;
export const MAX_SALES_LINES = 50_000;
export const MAX_SKU_LENGTH = 64;

/** Zod reports a missing key as a type error on `undefined`; saying "is required" is clearer to the API caller. */
const requiredOr =
  (message: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? 'is required' : message;

export const MAX_QUANTITY = 1_000_000;
export const MAX_UNIT_PRICE = 1_000_000;

const skuSchema = z
  .string({ error: requiredOr('must be a string') })
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(MAX_SKU_LENGTH, { error: `must be at most ${MAX_SKU_LENGTH} characters` });

const quantitySchema = z
  .number({ error: requiredOr('must be a positive integer') })
  // abort: -1.5 fails both checks, and one problem per field is enough.
  .int({ error: 'must be a positive integer', abort: true })
  .positive({ error: 'must be a positive integer' })
  // Bounds keep every total exact in integer cents (far below 2^53).
  .max(MAX_QUANTITY, { error: `must be at most ${MAX_QUANTITY}` });

// z.number() already rejects NaN and ±Infinity, so only the sign is left to check.
const unitPriceSchema = z
  .number({ error: requiredOr('must be a non-negative finite number') })
  .nonnegative({ error: 'must be a non-negative finite number' })
  .max(MAX_UNIT_PRICE, { error: `must be at most ${MAX_UNIT_PRICE}` });

// Zod's ISO regex checks the calendar itself (month 01-12, day within the month, 29 February only in leap years),
// which `new Date()` does not: it rolls 2026-02-30 over to 2 March. `offset: true` accepts ±hh:mm besides Z; a time
// without a timezone is rejected because its instant would depend on the server's zone.
const soldAtSchema = z.iso.datetime({
  offset: true,
  error: requiredOr(
    'must be an ISO 8601 date-time with a timezone on a real calendar date, e.g. 2026-11-01T10:00:00Z or 2026-11-01T11:00:00+01:00',
  ),
});

const saleLineSchema = z
  .strictObject({ sku: skuSchema, quantity: quantitySchema, unitPrice: unitPriceSchema, soldAt: soldAtSchema }, { error: requiredOr('must be a JSON object') })
  .meta({
    id: 'SaleLine',
    description: 'One sold line: `unitPrice` × `quantity` is its revenue, `soldAt` puts it on a UTC day.',
    example: { sku: 'AMOX-500', quantity: 2, unitPrice: 3.5, soldAt: '2026-11-01T10:00:00Z' },
  });

/** The body of POST /reports: validated by `@Body({ schema: reportRequestSchema })`, and its OpenAPI schema. */
export const reportRequestSchema = z.strictObject(
  {
    type: z.enum(REPORT_TYPES, { error: requiredOr(`must be one of: ${REPORT_TYPES.join(', ')}`) }),
    sales: z
      .array(saleLineSchema, { error: requiredOr('must be an array of sale lines') })
      .min(1, { error: 'must have at least 1 line' })
      .max(MAX_SALES_LINES, { error: `must have at most ${MAX_SALES_LINES} lines` }),
  },
  { error: 'must be a JSON object' },
).meta({ id: 'ReportRequest', description: 'Sales to summarise. The same tenant posting the same data gets the same report id.' });

export type ReportType = (typeof REPORT_TYPES)[number];
export type SaleLine = z.output<typeof saleLineSchema>;
export type ReportRequest = z.output<typeof reportRequestSchema>;
