import { beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { loadConfig } from '../config';
import { createLogging, requestLogLevel } from './app-logging';

const REDIS_PASSWORD = 'unit-Redis-pa55word';
const JWT_SECRET = 'unit-jwt-secret-0123456789abcdefghijkl';
const METRICS_TOKEN = 'unit-metrics-token-0123456789';
const HEALTH_TOKEN = 'unit-health-token-0123456789';

// nestjs-pino keeps its first logger for the process, so this file builds exactly one.
const lines: string[] = [];
const config = loadConfig({
  NODE_ENV: 'production',
  CORS_ORIGINS: '*',
  LOG_LEVEL: 'debug',
  JWT_SECRET,
  METRICS_TOKEN,
  HEALTH_TOKEN,
  REDIS_URL: `redis://default:${REDIS_PASSWORD}@127.0.0.1:6390`,
});
beforeAll(async () => {
  Logger.overrideLogger((await createLogging(config, { write: (line: string) => lines.push(line) })).logger);
});
const parsed = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

describe('createLogging in production', () => {
  it('writes Nest Logger calls as one JSON line each, with the level name, ISO time, context and msg', () => {
    new Logger('Unit').warn('something to look at');
    expect(lines.at(-1)?.endsWith('\n')).toBe(true);
    expect(parsed().at(-1)).toMatchObject({ level: 'warn', context: 'Unit', msg: 'something to look at', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) });
  });

  it('maps LOG_LEVEL onto pino levels: debug passes, verbose (trace) does not', () => {
    const before = lines.length;
    new Logger('Unit').debug('a debug line');
    new Logger('Unit').verbose('a verbose line');
    expect(parsed().slice(before)).toEqual([expect.objectContaining({ level: 'debug', msg: 'a debug line' })]);
  });

  it('censors a Socket.io handshake token, authorization and cookie headers logged as params', () => {
    const handshake = { auth: { token: 'handshake-token-xyz' }, headers: { authorization: 'Bearer header-token-xyz', cookie: 'sid=cookie-xyz', host: 'h' } };
    new Logger('Presence').log('socket connected', { handshake });
    expect(parsed().at(-1)).toMatchObject({
      msg: 'socket connected',
      params: { handshake: { auth: { token: '[Redacted]' }, headers: { authorization: '[Redacted]', cookie: '[Redacted]', host: 'h' } } },
    });
    expect(lines.at(-1)).not.toMatch(/xyz/);
  });

  it('scrubs the REDIS_URL password, JWT_SECRET, METRICS_TOKEN and HEALTH_TOKEN from any line, for instance inside an error message', () => {
    new Logger('Redis').error(
      `connect to redis://default:${REDIS_PASSWORD}@127.0.0.1:6390 failed`,
      new Error(`secrets were ${JWT_SECRET}, ${METRICS_TOKEN} and ${HEALTH_TOKEN}`).stack,
    );
    const last = lines.at(-1)!;
    expect(last).not.toContain(REDIS_PASSWORD);
    expect(last).not.toContain(JWT_SECRET);
    expect(last).not.toContain(METRICS_TOKEN);
    expect(last).not.toContain(HEALTH_TOKEN);
    expect(JSON.parse(last)).toMatchObject({
      level: 'error',
      msg: 'connect to redis://default:[Redacted]@127.0.0.1:6390 failed',
      stack: expect.stringContaining('secrets were [Redacted], [Redacted] and [Redacted]'),
    });
  });
});

describe('requestLogLevel', () => {
  it('logs probes at debug, a deliberate 503 at warn, other 5xx at error, 4xx at warn, the rest at info', () => {
    expect(requestLogLevel('/health', 503)).toBe('debug');
    expect(requestLogLevel('/metrics', 200)).toBe('debug');
    expect(requestLogLevel('/reports', 503, new Error('failed with status code 503'))).toBe('warn');
    expect(requestLogLevel('/reports', 500, new Error('failed with status code 500'))).toBe('error');
    expect(requestLogLevel('/reports', 404)).toBe('warn');
    expect(requestLogLevel('/reports', 202)).toBe('info');
  });
});
