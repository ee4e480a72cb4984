import { z } from 'zod';
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

/** 202: the report is being computed; GET its Location until it is done. */
export const pendingReportSchema = z.object({ id: reportIdSchema, status: z.enum(['queued', 'active']) }).meta({ id: 'PendingReport' });

export const completedReportSchema = z.object({ id: reportIdSchema, status: z.literal('completed'), result: salesSummarySchema }).meta({ id: 'CompletedReport' });

/** 200 of GET /reports/:id: done, one way or the other. */
export const finishedReportSchema = z
  .discriminatedUnion('status', [completedReportSchema, z.object({ id: reportIdSchema, status: z.literal('failed'), error: z.string() }).meta({ id: 'FailedReport' })])
  .meta({ id: 'FinishedReport' });

// Compile-time only: the documented views are exactly ReportsService's ReportView, so the docs cannot drift from it.
type DocumentedView = z.output<typeof pendingReportSchema> | z.output<typeof finishedReportSchema>;
void ((view: ReportView): DocumentedView => view);
void ((view: DocumentedView): ReportView => view);
