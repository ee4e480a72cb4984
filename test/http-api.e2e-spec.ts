import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppProcess } from './support/app-process';
import { RedisServer, stopAllRedisServers } from './support/redis-server';
import { JWT_SECRET, tokenFor } from './support/reports-client';

const MISSING_BODY = 'body is missing or not JSON: send a JSON object with the header Content-Type: application/json';
const line = { sku: 'AMOX-500', quantity: 2, unitPrice: 3.5, soldAt: '2026-11-01T10:00:00Z' };

let redis: RedisServer;
let web: AppProcess;
const token = tokenFor('u1', 'pharmacy-1');

beforeAll(async () => {
  redis = await RedisServer.start();
  web = await AppProcess.start({ REDIS_URL: redis.url(), JWT_SECRET, APP_ROLE: 'web' });
});

afterAll(async () => {
  await web?.stop();
  await stopAllRedisServers();
});

function post(body: string | undefined, contentType?: string, authorization = `Bearer ${token}`) {
  const headers: Record<string, string> = { authorization };
  if (contentType) headers['content-type'] = contentType;
  return web.request('/reports', { method: 'POST', headers, body });
}

describe('request validation (global SchemaValidationPipe)', () => {
  it('answers a bad body 400 { statusCode, error, message: [every problem] }', async () => {
    const response = await post(JSON.stringify({ type: 'sales-summary', sales: [line, { ...line, quantity: 0, discount: 1 }], tenant: 'x' }), 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: ['sales[1].quantity must be a positive integer', 'sales[1] has unknown key "discount"', 'body has unknown key "tenant"'],
    });
  });

  it('caps the list at 100 problems plus a count of the rest', async () => {
    const sales = Array.from({ length: 250 }, () => ({ ...line, quantity: -1 }));
    const response = await post(JSON.stringify({ type: 'sales-summary', sales }), 'application/json');
    const problems = (response.body as { message: string[] }).message;
    expect(problems).toHaveLength(101);
    expect(problems[100]).toBe('… and 150 more problems');
  });

  it('hands the handler the schema output: a sku with spaces is the same report as the trimmed one', async () => {
    const trimmed = await post(JSON.stringify({ type: 'sales-summary', sales: [line] }), 'application/json');
    const padded = await post(JSON.stringify({ type: 'sales-summary', sales: [{ ...line, sku: '  AMOX-500 ' }] }), 'application/json');
    expect(trimmed.status).toBe(202);
    expect(padded.status).toBe(202);
    expect((padded.body as { id: string }).id).toBe((trimmed.body as { id: string }).id);
  });

  it.each([
    ['no body', undefined, undefined],
    ['text/plain', JSON.stringify({ type: 'sales-summary', sales: [line] }), 'text/plain'],
    ['a form', 'type=sales-summary', 'application/x-www-form-urlencoded'],
  ])('answers %s with 400 saying to send JSON', async (_case, body, contentType) => {
    const response = await post(body, contentType);
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: [MISSING_BODY] });
  });

  it('answers an empty JSON body (Content-Length: 0) as the empty object it parses to: what is required', async () => {
    const response = await post('', 'application/json');
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['type is required', 'sales is required'] });
  });

  it('answers malformed JSON with 400 in the same shape, saying where it broke', async () => {
    const response = await post('{"type": "sales-summary", sales: []}', 'application/json');
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: [expect.stringMatching(/^body is not valid JSON: .*position 26/)] });
  });

  it('lets JSON that is not an object reach the schema, which says what it wants', async () => {
    for (const body of ['null', '42', '"sales-summary"', '[]']) {
      const response = await post(body, 'application/json');
      expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['body must be a JSON object'] });
    }
  });

  it('reads application/*+json bodies as JSON', async () => {
    const response = await post(JSON.stringify({ type: 'sales-summary' }), 'application/vnd.pharmacare+json');
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['sales is required'] });
  });

  it('parses the body before checking the token, and checks the token before validating: 401, not 400, without one', async () => {
    expect((await post('{bad', 'application/json', '')).status).toBe(400); // the body parser runs before any guard
    expect((await post(JSON.stringify({}), 'application/json', '')).status).toBe(401);
  });

  it('validates path parameters: a malformed report id is 400 naming the parameter', async () => {
    const response = await web.request('/reports/rpt_XYZ', { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: ['id must be a report id: rpt_ followed by 32 lowercase hex digits'] });
    expect((await web.request('/reports/rpt_00000000000000000000000000000000', { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  });
});

interface Operation {
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; schema: { pattern?: string } }[];
  requestBody?: { content: Record<string, { schema: { $ref: string } }> };
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: { $ref?: string } }> }>;
}
interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, Record<string, unknown>>; required?: string[] }>; securitySchemes: Record<string, Record<string, string>> };
}

describe('API docs', () => {
  let document: OpenApiDocument;

  beforeAll(async () => {
    const response = await web.request('/docs-json');
    expect(response.status).toBe(200);
    document = response.body as OpenApiDocument;
  });

  it('documents POST /reports with the body schema the pipe validates against', () => {
    const create = document.paths['/reports'].post;
    expect(create.requestBody?.content['application/json'].schema.$ref).toBe('#/components/schemas/ReportRequest');
    const saleLine = document.components.schemas.SaleLine;
    expect(saleLine.required).toEqual(['sku', 'quantity', 'unitPrice', 'soldAt']);
    expect(saleLine.properties?.sku).toMatchObject({ type: 'string', minLength: 1, maxLength: 64 });
    expect(saleLine.properties?.quantity).toMatchObject({ type: 'integer', maximum: 1_000_000 });
    expect(saleLine.properties?.soldAt).toMatchObject({ type: 'string', format: 'date-time' });
    expect(document.components.schemas.ReportRequest.properties?.sales).toMatchObject({ minItems: 1, maxItems: 50_000 });
  });

  it('documents the report id parameter with its pattern', () => {
    const [id] = document.paths['/reports/{id}'].get.parameters ?? [];
    expect(id).toMatchObject({ name: 'id', in: 'path', schema: { pattern: '^rpt_[0-9a-f]{32}$' } });
  });

  it('documents every answer of the report routes, 503 with Retry-After', () => {
    const { post: create, get: read } = { post: document.paths['/reports'].post, get: document.paths['/reports/{id}'].get };
    expect(Object.keys(create.responses).sort()).toEqual(['200', '202', '400', '401', '503']);
    expect(Object.keys(read.responses).sort()).toEqual(['200', '202', '400', '401', '404', '503']);
    expect(create.responses['202'].headers).toHaveProperty('Location');
    expect(create.responses['202'].content?.['application/json'].schema.$ref).toBe('#/components/schemas/PendingReport');
    expect(read.responses['200'].content?.['application/json'].schema.$ref).toBe('#/components/schemas/FinishedReport');
    expect(create.responses['400'].content?.['application/json'].schema.$ref).toBe('#/components/schemas/ValidationProblems');
    for (const operation of [create, read]) expect(operation.responses['503'].headers).toHaveProperty('Retry-After');
  });

  it('describes the bearer JWT and requires it where the API does', () => {
    expect(document.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    for (const claim of ['sub', 'tenant', 'exp']) expect(document.components.securitySchemes.bearer.description).toContain(`\`${claim}\``);
    for (const operation of [document.paths['/reports'].post, document.paths['/reports/{id}'].get, document.paths['/auth/me'].get, document.paths['/presence'].get]) {
      expect(operation.security).toEqual([{ bearer: [] }]);
      expect(operation.responses).toHaveProperty('401');
    }
    expect(document.paths['/health'].get.security).toBeUndefined();
  });

  it('adds the 400 only to routes that take input', () => {
    expect(document.paths['/auth/me'].get.responses).not.toHaveProperty('400');
    expect(document.paths['/presence'].get.responses).not.toHaveProperty('400');
  });

  it('serves Swagger UI and its files from this server, with no reference to another host', async () => {
    const page = await web.request('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    expect(assets).toEqual(expect.arrayContaining(['./docs/swagger-ui-bundle.js', './docs/swagger-ui.css', './docs/swagger-ui-init.js']));
    expect(assets.filter((asset) => !asset.startsWith('./docs/'))).toEqual([]);
    for (const asset of assets) {
      const response = await web.request(asset.replace(/^\./, ''));
      expect([asset, response.status]).toEqual([asset, 200]);
    }
    const init = await web.request('/docs/swagger-ui-init.js');
    expect(init.text).toContain('"validatorUrl": null');
  });
});

describe('API_DOCS', () => {
  async function docsStatus(env: Record<string, string>): Promise<[number, number]> {
    const app = await AppProcess.start({ REDIS_URL: redis.url(), JWT_SECRET, ...env });
    try {
      return [(await app.request('/docs')).status, (await app.request('/docs-json')).status];
    } finally {
      await app.stop();
    }
  }

  it('keeps the docs off in production unless API_DOCS=true, and off on a worker', async () => {
    expect(await docsStatus({ NODE_ENV: 'production', APP_ROLE: 'web' })).toEqual([404, 404]);
    expect(await docsStatus({ NODE_ENV: 'production', APP_ROLE: 'web', API_DOCS: 'true' })).toEqual([200, 200]);
    expect(await docsStatus({ APP_ROLE: 'worker', API_DOCS: 'true' })).toEqual([404, 404]);
  });
});
