import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from '@jest/globals';
import { assignRequestId, isSafeRequestId } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function exchange(incoming?: string | string[]) {
  const headers: Record<string, unknown> = {};
  const request = { headers: incoming === undefined ? {} : { 'x-request-id': incoming } } as unknown as IncomingMessage;
  const response = { setHeader: (name: string, value: unknown) => (headers[name] = value) } as unknown as ServerResponse;
  return { id: assignRequestId(request, response), echoed: headers['x-request-id'] };
}

describe('isSafeRequestId', () => {
  it('accepts UUIDs and the usual trace-id characters up to 128 characters', () => {
    for (const id of ['5f0c2a9e-1b7d-4c1e-9d2a-0b6f3c8e7a14', 'abc', 'trace.1:span_2-x', 'a'.repeat(128)]) expect(isSafeRequestId(id)).toBe(true);
  });

  it('rejects empty, over-long, multi-valued and non-plain values', () => {
    for (const id of ['', 'a'.repeat(129), 'has space', 'quote"', 'new\nline', '<script>', 'ünï', ['a', 'b'], undefined]) {
      expect(isSafeRequestId(id)).toBe(false);
    }
  });
});

describe('assignRequestId', () => {
  it('keeps a safe incoming x-request-id and echoes it', () => {
    expect(exchange('from-the-proxy.42')).toEqual({ id: 'from-the-proxy.42', echoed: 'from-the-proxy.42' });
  });

  it('replaces a missing or unsafe one with a fresh UUID and echoes that', () => {
    for (const incoming of [undefined, 'two words', 'x'.repeat(500)]) {
      const { id, echoed } = exchange(incoming);
      expect(id).toMatch(UUID);
      expect(echoed).toBe(id);
    }
    expect(exchange().id).not.toBe(exchange().id);
  });
});
