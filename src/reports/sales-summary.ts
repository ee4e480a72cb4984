import type { SaleLine } from './report-request';

export interface SkuTotal {
  sku: string;
  units: number;
  revenue: number;
}

export interface DayTotal {
  /** UTC calendar day of soldAt, YYYY-MM-DD. */
  day: string;
  units: number;
  revenue: number;
}

export interface SalesSummary {
  totalRevenue: number;
  totalUnits: number;
  /** Revenue descending, then sku ascending. */
  bySku: SkuTotal[];
  /** Day ascending. */
  byDay: DayTotal[];
}

interface Bucket {
  units: number;
  cents: number;
}

/**
 * Totals per SKU and per UTC day. Each line's revenue is rounded to cents once, and everything is summed in integer
 * cents, so 3 × 0.10 is 0.30 and not 0.30000000000000004.
 */
export function computeSalesSummary(sales: readonly SaleLine[]): SalesSummary {
  const skus = new Map<string, Bucket>();
  const days = new Map<string, Bucket>();
  let totalCents = 0;
  let totalUnits = 0;

  for (const line of sales) {
    const cents = Math.round(line.quantity * line.unitPrice * 100);
    const day = new Date(line.soldAt).toISOString().slice(0, 10);
    totalCents += cents;
    totalUnits += line.quantity;
    add(skus, line.sku, line.quantity, cents);
    add(days, day, line.quantity, cents);
  }

  const bySku = [...skus]
    // Code-unit order rather than localeCompare: the result must not depend on the server's locale.
    .sort(([skuA, a], [skuB, b]) => b.cents - a.cents || (skuA < skuB ? -1 : skuA > skuB ? 1 : 0))
    .map(([sku, bucket]) => ({ sku, units: bucket.units, revenue: bucket.cents / 100 }));
  const byDay = [...days]
    .sort(([dayA], [dayB]) => (dayA < dayB ? -1 : dayA > dayB ? 1 : 0))
    .map(([day, bucket]) => ({ day, units: bucket.units, revenue: bucket.cents / 100 }));

  return { totalRevenue: totalCents / 100, totalUnits, bySku, byDay };
}

function add(buckets: Map<string, Bucket>, key: string, units: number, cents: number): void {
  const bucket = buckets.get(key);
  if (bucket) {
    bucket.units += units;
    bucket.cents += cents;
  } else {
    buckets.set(key, { units, cents });
  }
}
