import { describe, expect, it } from '@jest/globals';
import { describeIssues } from '../http';
import { MAX_SALES_LINES, REPORT_TYPES, type ReportRequest, reportRequestSchema } from './report-request';

/**
 * What POST /reports makes of a body: the schema's Standard Schema validation (as SchemaValidationPipe runs it),
 * its issues described as the 400 lists them. The pipe itself and the problem cap are tested in src/http.
 */
function parseReportRequest(body: unknown): { ok: true; value: ReportRequest } | { ok: false; problems: string[] } {
  const result = reportRequestSchema['~standard'].validate(body);
  if (result instanceof Promise) throw new Error('the report schema validated asynchronously');
  return result.issues ? { ok: false, problems: describeIssues(result.issues, 'body') } : { ok: true, value: result.value };
}

const validLine = () => ({ sku: 'AMOX-500', quantity: 2, unitPrice: 3.5, soldAt: '2026-11-01T10:00:00Z' });

/** A valid body whose first line has `overrides` applied (a value of undefined removes the key). */
function bodyWithLine(overrides: Record<string, unknown>): Record<string, unknown> {
  const line: Record<string, unknown> = { ...validLine(), ...overrides };
  for (const key of Object.keys(line)) if (line[key] === undefined) delete line[key];
  return { type: 'sales-summary', sales: [line] };
}

/** The problems reported for `body`; fails the test if it was accepted. */
function problemsOf(body: unknown): string[] {
  const result = parseReportRequest(body);
  if (result.ok) throw new Error(`accepted ${JSON.stringify(body)}`);
  return result.problems;
}

describe('parseReportRequest', () => {
  it('exports the known report types and the line limit', () => {
    expect(REPORT_TYPES).toEqual(['sales-summary']);
    expect(MAX_SALES_LINES).toBe(50_000);
  });

  it('accepts a valid body and returns its data', () => {
    const body = {
      type: 'sales-summary',
      sales: [
        { sku: 'AMOX-500', quantity: 2, unitPrice: 3.5, soldAt: '2026-11-01T10:00:00Z' },
        { sku: 'PARA-1000', quantity: 1, unitPrice: 0, soldAt: '2026-11-01T11:00:00+01:00' },
        { sku: 'IBU-200', quantity: 10, unitPrice: 0.99, soldAt: '2026-11-02T08:30:15.250-05:30' },
      ],
    };
    expect(parseReportRequest(body)).toEqual({ ok: true, value: body });
  });

  it('trims the sku', () => {
    const result = parseReportRequest(bodyWithLine({ sku: '  AMOX-500 ' }));
    expect(result.ok && result.value.sales[0].sku).toBe('AMOX-500');
  });

  it('accepts a sku of exactly 64 characters, 29 February of a leap year and a zero price', () => {
    expect(parseReportRequest(bodyWithLine({ sku: 'X'.repeat(64) })).ok).toBe(true);
    expect(parseReportRequest(bodyWithLine({ soldAt: '2028-02-29T12:00:00Z' })).ok).toBe(true);
    expect(parseReportRequest(bodyWithLine({ unitPrice: 0 })).ok).toBe(true);
  });

  describe('the body', () => {
    it.each([
      ['null', null],
      ['an array', [{ type: 'sales-summary', sales: [validLine()] }]],
      ['a string', 'sales-summary'],
      ['a number', 42],
      ['undefined', undefined],
    ])('rejects %s', (_name, body) => {
      expect(problemsOf(body)).toEqual(['body must be a JSON object']);
    });

    it('rejects an unknown top-level key', () => {
      expect(problemsOf({ type: 'sales-summary', sales: [validLine()], tenant: 'x' })).toEqual(['body has unknown key "tenant"']);
    });
  });

  describe('type', () => {
    it('rejects an unknown report type', () => {
      expect(problemsOf({ type: 'sales-detail', sales: [validLine()] })).toEqual(['type must be one of: sales-summary']);
    });

    it('rejects a type that is not a string', () => {
      expect(problemsOf({ type: 1, sales: [validLine()] })).toEqual(['type must be one of: sales-summary']);
    });

    it('rejects a missing type', () => {
      expect(problemsOf({ sales: [validLine()] })).toEqual(['type is required']);
    });
  });

  describe('sales', () => {
    it('rejects a missing sales', () => {
      expect(problemsOf({ type: 'sales-summary' })).toEqual(['sales is required']);
    });

    it('rejects sales that is not an array', () => {
      expect(problemsOf({ type: 'sales-summary', sales: validLine() })).toEqual(['sales must be an array of sale lines']);
    });

    it('rejects 0 lines', () => {
      expect(problemsOf({ type: 'sales-summary', sales: [] })).toEqual(['sales must have at least 1 line']);
    });

    it('accepts exactly 50,000 lines', () => {
      const sales = Array.from({ length: 50_000 }, validLine);
      const result = parseReportRequest({ type: 'sales-summary', sales });
      expect(result.ok && result.value.sales.length).toBe(50_000);
    });

    it('rejects 50,001 lines', () => {
      const sales = Array.from({ length: 50_001 }, validLine);
      expect(problemsOf({ type: 'sales-summary', sales })).toEqual(['sales must have at most 50000 lines']);
    });

    it('rejects a line that is not an object', () => {
      expect(problemsOf({ type: 'sales-summary', sales: [validLine(), null, 'AMOX-500'] })).toEqual([
        'sales[1] must be a JSON object',
        'sales[2] must be a JSON object',
      ]);
    });

    it('rejects an unknown line key', () => {
      expect(problemsOf(bodyWithLine({ discount: 0.1 }))).toEqual(['sales[0] has unknown key "discount"']);
    });

    it('names every unknown key of a line in one problem', () => {
      expect(problemsOf(bodyWithLine({ discount: 0.1, note: 'x' }))).toEqual(['sales[0] has unknown keys "discount", "note"']);
    });
  });

  describe('sku', () => {
    it.each([
      ['missing', undefined, 'sales[0].sku is required'],
      ['a number', 500, 'sales[0].sku must be a string'],
      ['empty', '', 'sales[0].sku must not be empty'],
      ['only spaces', '   ', 'sales[0].sku must not be empty'],
      ['65 characters', 'X'.repeat(65), 'sales[0].sku must be at most 64 characters'],
    ])('rejects a sku that is %s', (_name, sku, problem) => {
      expect(problemsOf(bodyWithLine({ sku }))).toEqual([problem]);
    });
  });

  describe('quantity', () => {
    it.each([
      ['zero', 0],
      ['negative', -1],
      ['fractional', 1.5],
      ['negative and fractional', -1.5],
      ['a numeric string', '2'],
      ['null', null],
    ])('rejects a quantity that is %s', (_name, quantity) => {
      expect(problemsOf(bodyWithLine({ quantity }))).toEqual(['sales[0].quantity must be a positive integer']);
    });

    it('rejects a missing quantity', () => {
      expect(problemsOf(bodyWithLine({ quantity: undefined }))).toEqual(['sales[0].quantity is required']);
    });
  });

  describe('unitPrice', () => {
    it.each([
      ['negative', -0.01],
      ['infinite', Infinity],
      ['NaN', NaN],
      ['a numeric string', '3.5'],
    ])('rejects a unitPrice that is %s', (_name, unitPrice) => {
      expect(problemsOf(bodyWithLine({ unitPrice }))).toEqual(['sales[0].unitPrice must be a non-negative finite number']);
    });

    it('rejects a missing unitPrice', () => {
      expect(problemsOf(bodyWithLine({ unitPrice: undefined }))).toEqual(['sales[0].unitPrice is required']);
    });
  });

  describe('soldAt', () => {
    const soldAtProblem =
      'sales[0].soldAt must be an ISO 8601 date-time with a timezone on a real calendar date, e.g. 2026-11-01T10:00:00Z or 2026-11-01T11:00:00+01:00';

    it.each([
      ['month 13', '2026-13-01T00:00:00Z'],
      ['a date without time', '2026-11-01'],
      ['a word', 'yesterday'],
      ['a time without timezone', '2026-11-01T10:00:00'],
      ['30 February', '2026-02-30T00:00:00Z'],
      ['29 February of a common year', '2026-02-29T00:00:00Z'],
      ['31 April', '2026-04-31T00:00:00Z'],
      ['hour 24', '2026-11-01T24:00:00Z'],
      ['a space instead of T', '2026-11-01 10:00:00Z'],
      ['a number', 1_793_527_200_000],
    ])('rejects %s', (_name, soldAt) => {
      expect(problemsOf(bodyWithLine({ soldAt }))).toEqual([soldAtProblem]);
    });

    it('rejects a missing soldAt', () => {
      expect(problemsOf(bodyWithLine({ soldAt: undefined }))).toEqual(['sales[0].soldAt is required']);
    });
  });

  it('lists every problem at once, each with its path', () => {
    const body = {
      type: 'weekly',
      sales: [
        validLine(),
        { sku: '', quantity: 0, unitPrice: -1, soldAt: 'yesterday' },
        validLine(),
        { ...validLine(), quantity: 2.5, extra: true },
      ],
      typo: 1,
    };
    expect(problemsOf(body)).toEqual([
      'type must be one of: sales-summary',
      'sales[1].sku must not be empty',
      'sales[1].quantity must be a positive integer',
      'sales[1].unitPrice must be a non-negative finite number',
      'sales[1].soldAt must be an ISO 8601 date-time with a timezone on a real calendar date, e.g. 2026-11-01T10:00:00Z or 2026-11-01T11:00:00+01:00',
      'sales[3].quantity must be a positive integer',
      'sales[3] has unknown key "extra"',
      'body has unknown key "typo"',
    ]);
  });
});

describe('parseReportRequest bounds', () => {
  it('rejects a quantity over 1,000,000 and a unit price over 1,000,000', () => {
    const result = parseReportRequest({
      type: 'sales-summary',
      sales: [{ sku: 'A', quantity: 1_000_001, unitPrice: 1_000_000.01, soldAt: '2026-11-01T10:00:00Z' }],
    });
    expect(result).toEqual({ ok: false, problems: ['sales[0].quantity must be at most 1000000', 'sales[0].unitPrice must be at most 1000000'] });
  });
});
