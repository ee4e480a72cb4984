import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { describeIssues, MAX_PROBLEMS } from './validation-problems';

const lineSchema = z.strictObject({ sku: z.string(), quantity: z.number({ error: 'must be a positive integer' }).int().positive({ error: 'must be a positive integer' }) });
const bodySchema = z.strictObject({ sales: z.array(lineSchema) }, { error: 'must be a JSON object' });

/** The problems zod's Standard Schema validation gives for `value`, as the 400 lists them. */
function problemsOf(schema: z.ZodType, value: unknown, subject = 'body'): string[] {
  const result = schema['~standard'].validate(value);
  if (result instanceof Promise || !result.issues) throw new Error(`accepted ${JSON.stringify(value)}`);
  return describeIssues(result.issues, subject);
}

const badLines = (count: number) => ({ sales: Array.from({ length: count }, () => ({ sku: 'A', quantity: 0 })) });

describe('describeIssues', () => {
  it('starts each problem with its path, indexes in brackets', () => {
    expect(problemsOf(bodySchema, { sales: [{ sku: 'A', quantity: 1 }, { sku: 'B', quantity: 1.5 }] })).toEqual(['sales[1].quantity must be a positive integer']);
  });

  it('names the subject for a problem of the value itself, and before a leading index', () => {
    expect(problemsOf(bodySchema, null)).toEqual(['body must be a JSON object']);
    expect(problemsOf(z.string().regex(/^rpt_/, { error: 'must be a report id' }), 'x', 'id')).toEqual(['id must be a report id']);
    expect(problemsOf(z.array(lineSchema), [{ sku: 'A', quantity: -1 }])).toEqual(['body[0].quantity must be a positive integer']);
  });

  it('names unknown keys where they are, one problem per object', () => {
    expect(problemsOf(bodySchema, { sales: [{ sku: 'A', quantity: 1, discount: 0.1, note: 'x' }], tenant: 't' })).toEqual([
      'sales[0] has unknown keys "discount", "note"',
      'body has unknown key "tenant"',
    ]);
  });

  it('reads path segments given as objects, as the Standard Schema spec allows', () => {
    expect(describeIssues([{ message: 'must be a string', path: [{ key: 'sales' }, { key: 2 }, 'sku'] }], 'body')).toEqual(['sales[2].sku must be a string']);
  });

  describe('the problem cap', () => {
    it('is 100', () => {
      expect(MAX_PROBLEMS).toBe(100);
    });

    it('shows the first 100 problems of 300 bad lines and counts the other 200', () => {
      const problems = problemsOf(bodySchema, badLines(300));
      expect(problems).toHaveLength(101);
      expect(problems[0]).toBe('sales[0].quantity must be a positive integer');
      expect(problems[99]).toBe('sales[99].quantity must be a positive integer');
      expect(problems[100]).toBe('… and 200 more problems');
    });

    it('says "1 more problem" for 101 problems', () => {
      const problems = problemsOf(bodySchema, badLines(101));
      expect(problems).toHaveLength(101);
      expect(problems[100]).toBe('… and 1 more problem');
    });

    it('lists exactly 100 problems without a summary entry', () => {
      const problems = problemsOf(bodySchema, badLines(100));
      expect(problems).toHaveLength(100);
      expect(problems[99]).toBe('sales[99].quantity must be a positive integer');
    });

    it('keeps the answer small for 50,000 bad lines', () => {
      const problems = problemsOf(bodySchema, badLines(50_000));
      expect(problems).toHaveLength(101);
      expect(problems[100]).toBe('… and 49900 more problems');
    });
  });
});
