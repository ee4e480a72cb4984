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
 * Totals per SKU and per UTC day, in exact cents. Each line's revenue is quantity × unitPrice computed exactly
 * from the decimal the price was written as (1.005, not the double 1.00499999999999989…), rounded half up to a
 * cent once; the cents are summed as integers. The request bounds (MAX_LINE_REVENUE, MAX_SALES_LINES) keep every
 * sum below 5 × 10^14 cents, so the integer sums are exact and each revenue prints as its exact decimal.
 */
export function computeSalesSummary(sales: readonly SaleLine[]): SalesSummary {
  const skus = new Map<string, Bucket>();
  const days = new Map<string, Bucket>();
  let totalCents = 0;
  let totalUnits = 0;

  for (const line of sales) {
    const cents = lineCents(line.quantity, line.unitPrice);
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

/** A number's shortest round-trip decimal (what JSON.stringify writes), e.g. 1.005, 2.5e-7, 1e+21. */
const DECIMAL = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/;

/** quantity × unitPrice in cents, rounded half up, computed exactly (BigInt) from the price's decimal digits. */
export function lineCents(quantity: number, unitPrice: number): number {
  const match = DECIMAL.exec(String(unitPrice));
  if (!match) throw new Error(`unitPrice ${unitPrice} is not a non-negative finite number`);
  const [, whole, fraction = '', exponent = '0'] = match;
  // unitPrice = digits × 10^-scale exactly, as a decimal.
  const scale = fraction.length - Number(exponent);
  const digits = BigInt(whole + fraction) * (scale < 0 ? 10n ** BigInt(-scale) : 1n);
  const denominator = 10n ** BigInt(Math.max(scale, 0));
  const hundredths = BigInt(quantity) * digits * 100n;
  return Number((2n * hundredths + denominator) / (2n * denominator));
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
