import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { createApp } from '../src/bootstrap';
import { loadConfig } from '../src/config';
import { CapturingLogger } from './support/capturing-logger';
import { RedisServer, stopAllRedisServers } from './support/redis-server';

const SECRET = 'an-e2e-secret-that-is-long-enough-1234567890';
let app: INestApplication;

beforeAll(async () => {
  const redis = await RedisServer.start();
  app = await createApp(loadConfig({ NODE_ENV: 'test', REDIS_URL: redis.url(), JWT_SECRET: SECRET }), { logger: new CapturingLogger() });
  await app.init();
});

afterAll(async () => {
  await app.close();
  await stopAllRedisServers();
});

const sign = (claims: object, secret = SECRET, options: jwt.SignOptions = {}) => jwt.sign(claims, secret, { algorithm: 'HS256', expiresIn: '5m', ...options });

describe('JWT on HTTP (GET /auth/me)', () => {
  it('accepts a valid token and returns the principal', async () => {
    const response = await request(app.getHttpServer())
      .get('/auth/me')
      .set('Authorization', `Bearer ${sign({ sub: 'u1', tenant: 't1' })}`);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ userId: 'u1', tenantId: 't1' });
  });

  it.each([
    ['missing', undefined, /Missing Authorization header/],
    ['expired (beyond the 30 s clock skew)', `Bearer ${sign({ sub: 'u1', tenant: 't1' }, SECRET, { expiresIn: -120 })}`, /expired/],
    ['forged (another secret)', `Bearer ${sign({ sub: 'u1', tenant: 't1' }, 'another-secret-that-is-also-long-enough-0000')}`, /Invalid access token/],
    ['without a tenant claim', `Bearer ${sign({ sub: 'u1' })}`, /tenant/],
    ['not a bearer token', 'Basic dTE6cGFzcw==', /Bearer <token>/],
  ])('answers 401 with a JSON error when the token is %s', async (_case, header, message) => {
    const call = request(app.getHttpServer()).get('/auth/me');
    const response = await (header ? call.set('Authorization', header) : call);
    expect(response.status).toBe(401);
    expect(response.headers['content-type']).toMatch(/application\/json/);
    expect(response.body.statusCode).toBe(401);
    expect(response.body.message).toMatch(message);
  });
});
