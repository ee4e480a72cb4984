import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ReportRequest } from './report-request';

const ID_PREFIX = 'rpt_';
const ID_HEX_LENGTH = 32;

/** A report id as POST /reports hands it out: validates GET /reports/:id's parameter, and documents it. */
export const reportIdSchema = z
  .string()
  .regex(new RegExp(`^${ID_PREFIX}[0-9a-f]{${ID_HEX_LENGTH}}$`), { error: `must be a report id: ${ID_PREFIX} followed by ${ID_HEX_LENGTH} lowercase hex digits` })
  .meta({ description: 'The id POST /reports answered with.', example: `${ID_PREFIX}8e2b0c4d6f8a1b3c5d7e9f0a2b4c6d8e` });

/**
 * Deterministic report id: the same tenant posting the same data gets the same id, so a retried POST finds the
 * report already queued or built instead of computing it twice.
 *
 * The hash covers the canonical JSON `{"tenantId":…,"type":…,"sales":[{"sku":…,"quantity":…,"unitPrice":…,"soldAt":…},…]}`
 * with soldAt normalised to UTC ISO (so 11:00+01:00 and 10:00Z are one instant) and lines in the order given.
 */
export function reportId(tenantId: string, request: ReportRequest): string {
  const hash = createHash('sha256');
  // Fed piece by piece: the bytes are exactly those of the canonical JSON, without building a multi-megabyte string.
  hash.update(`{"tenantId":${JSON.stringify(tenantId)},"type":${JSON.stringify(request.type)},"sales":[`);
  request.sales.forEach((line, index) => {
    const canonical = {
      sku: line.sku,
      quantity: line.quantity,
      unitPrice: line.unitPrice,
      soldAt: new Date(line.soldAt).toISOString(),
    };
    hash.update(index === 0 ? JSON.stringify(canonical) : `,${JSON.stringify(canonical)}`);
  });
  hash.update(']}');
  return ID_PREFIX + hash.digest('hex').slice(0, ID_HEX_LENGTH);
}
