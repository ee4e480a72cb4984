import { z } from 'zod';
import { reportIdSchema } from './report-id';
import type { ReportView } from './reports.service';

/**
 * The documented answers of a job-backed route (queued/active, completed with its result, failed), named
 * `Pending<Name>`, `Completed<Name>`, `Failed<Name>`, `Finished<Name>` in the docs. Nothing here is specific to
 * reports but the names: a job result's view of any feature documents itself this way.
 */
function jobViewSchemas<Result extends z.ZodType>(name: string, id: z.ZodType<string>, result: Result) {
  const pending = z.object({ id, status: z.enum(['queued', 'active']) }).meta({ id: `Pending${name}`, description: 'Being computed: ask again.' });
  const completed = z.object({ id, status: z.literal('completed'), result }).meta({ id: `Completed${name}` });
  const failed = z.object({ id, status: z.literal('failed'), error: z.string() }).meta({ id: `Failed${name}`, description: 'Failed for good; posting the same data again retries.' });
  return { pending, completed, finished: z.discriminatedUnion('status', [completed, failed]).meta({ id: `Finished${name}` }) };
}

const totals = { units: z.number().int(), revenue: z.number().describe('In the currency of unitPrice, rounded to cents.') };

const salesSummarySchema = z
  .object({
    totalRevenue: z.number(),
    totalUnits: z.number().int(),
    bySku: z.array(z.object({ sku: z.string(), ...totals })).describe('Revenue descending, then sku ascending.'),
    byDay: z.array(z.object({ day: z.string().describe('UTC calendar day, YYYY-MM-DD.'), ...totals })).describe('Day ascending.'),
  })
  .meta({
    id: 'SalesSummary',
    example: { totalRevenue: 10.5, totalUnits: 3, bySku: [{ sku: 'AMOX-500', units: 3, revenue: 10.5 }], byDay: [{ day: '2026-11-01', units: 3, revenue: 10.5 }] },
  });

export const reportViewSchemas = jobViewSchemas('Report', reportIdSchema, salesSummarySchema);

// Compile-time only: the documented views are exactly ReportsService's ReportView, so the docs cannot drift from it.
type DocumentedView = z.output<typeof reportViewSchemas.pending> | z.output<typeof reportViewSchemas.finished>;
void ((view: ReportView): DocumentedView => view);
void ((view: DocumentedView): ReportView => view);
