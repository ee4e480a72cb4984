import { z } from 'zod';
import { jobViewSchemas } from '../job-results';
import { reportIdSchema } from './report-id';
import type { ReportView } from './reports.service';

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
