import { describe, expect, it } from '@jest/globals';
import type { ArgumentMetadata } from '@nestjs/common';
import { z } from 'zod';
import { MISSING_BODY_PROBLEM, SchemaValidationException, SchemaValidationPipe } from './schema-validation.pipe';

const pipe = new SchemaValidationPipe();
const bodySchema = z.strictObject({ sku: z.string().trim().min(1, { error: 'must not be empty' }) }, { error: 'must be a JSON object' });

/** The 400 the pipe throws for `value`; fails the test if the value was accepted. */
async function rejection(value: unknown, metadata: ArgumentMetadata): Promise<SchemaValidationException> {
  try {
    await pipe.transform(value, metadata);
  } catch (error) {
    expect(error).toBeInstanceOf(SchemaValidationException);
    return error as SchemaValidationException;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('SchemaValidationPipe', () => {
  it('hands the handler the schema output', async () => {
    await expect(pipe.transform({ sku: '  AMOX-500 ' }, { type: 'body', schema: bodySchema })).resolves.toEqual({ sku: 'AMOX-500' });
  });

  it('answers 400 in the shape { statusCode, error, message: [problems] }', async () => {
    const error = await rejection({ sku: ' ', extra: 1 }, { type: 'body', schema: bodySchema });
    expect(error.getStatus()).toBe(400);
    expect(error.getResponse()).toEqual({ statusCode: 400, error: 'Bad Request', message: ['sku must not be empty', 'body has unknown key "extra"'] });
    expect(error.problems).toEqual(['sku must not be empty', 'body has unknown key "extra"']);
  });

  it('names a path or query parameter after itself, a whole query or params object after what it is', async () => {
    const id = z.string().regex(/^rpt_[0-9a-f]{32}$/, { error: 'must be a report id' });
    expect((await rejection('nope', { type: 'param', data: 'id', schema: id })).problems).toEqual(['id must be a report id']);
    const query = z.strictObject({ limit: z.coerce.number().int({ error: 'must be a whole number' }) });
    expect((await rejection({ limit: '1.5' }, { type: 'query', schema: query })).problems).toEqual(['limit must be a whole number']);
    expect((await rejection({ limit: '2', page: '1' }, { type: 'query', schema: query })).problems).toEqual(['query has unknown key "page"']);
    expect((await rejection({ limit: '2', x: '1' }, { type: 'param', schema: query })).problems).toEqual(['path parameters has unknown key "x"']);
    await expect(pipe.transform({ limit: '7' }, { type: 'query', schema: query })).resolves.toEqual({ limit: 7 });
  });

  it('says to send JSON when there is no body at all (none sent, or not as JSON)', async () => {
    expect((await rejection(undefined, { type: 'body', schema: bodySchema })).problems).toEqual([MISSING_BODY_PROBLEM]);
    expect(MISSING_BODY_PROBLEM).toContain('Content-Type: application/json');
    // A JSON null is a body, just not an object: the schema says what it wants.
    expect((await rejection(null, { type: 'body', schema: bodySchema })).problems).toEqual(['body must be a JSON object']);
  });

  it('lets a missing body through when the schema allows one', async () => {
    await expect(pipe.transform(undefined, { type: 'body', schema: bodySchema.optional() })).resolves.toBeUndefined();
  });

  it('passes parameters without a schema, and custom decorators, untouched', async () => {
    const value = { anything: true };
    await expect(pipe.transform(value, { type: 'body' })).resolves.toBe(value);
    await expect(pipe.transform(value, { type: 'custom', schema: bodySchema })).resolves.toBe(value);
  });

  it('drops __proto__ keys before validating', async () => {
    const hostile = JSON.parse('{"sku":"A","__proto__":{"admin":true}}') as unknown;
    await expect(pipe.transform(hostile, { type: 'body', schema: bodySchema })).resolves.toEqual({ sku: 'A' });
  });
});
