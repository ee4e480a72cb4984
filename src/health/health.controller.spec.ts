import { describe, expect, it } from '@jest/globals';
import { ServiceUnavailableException } from '@nestjs/common';
import type { HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import type { AppConfig } from '../config';
import { HealthController } from './health.controller';
import { HealthIndicators } from './health-indicators.registry';

const TOKEN = 'health-token-0123456789';
const DETAILED: HealthCheckResult = {
  status: 'ok',
  info: { 'redis:command': { status: 'up', state: 'ready', latencyMs: 0.4 }, presence: { status: 'up', instance: 'vm-4242-ab12cd34', sockets: 17 } },
  error: {},
  details: { 'redis:command': { status: 'up', state: 'ready', latencyMs: 0.4 }, presence: { status: 'up', instance: 'vm-4242-ab12cd34', sockets: 17 } },
};
const DOWN: HealthCheckResult = {
  status: 'error',
  info: {},
  error: { 'redis:command': { status: 'down', state: 'reconnecting', reason: 'connection refused by fine-cat-12345.upstash.io:6379 (ECONNREFUSED)' } },
  details: { 'redis:command': { status: 'down', state: 'reconnecting', reason: 'connection refused by fine-cat-12345.upstash.io:6379 (ECONNREFUSED)' } },
};

function controller(env: { nodeEnv: AppConfig['nodeEnv']; healthToken?: string; metricsToken?: string }, result: HealthCheckResult = DETAILED) {
  const health = {
    check: async () => {
      if (result.status === 'error') throw new ServiceUnavailableException(result);
      return result;
    },
  } as unknown as HealthCheckService;
  const config = { nodeEnv: env.nodeEnv, health: { redisGraceMs: 0, token: env.healthToken }, metrics: { token: env.metricsToken, queueDepthIntervalMs: 0 } } as AppConfig;
  return new HealthController(health, new HealthIndicators(), config);
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceUnavailableException);
    return (error as ServiceUnavailableException).getResponse();
  }
  throw new Error('expected a 503');
}

describe('HealthController GET /health', () => {
  it('shows only statuses in production without a token configured', async () => {
    expect(await controller({ nodeEnv: 'production' }).check(undefined)).toEqual({
      status: 'ok',
      info: { 'redis:command': { status: 'up' }, presence: { status: 'up' } },
      error: {},
      details: { 'redis:command': { status: 'up' }, presence: { status: 'up' } },
    });
  });

  it('shows the details for Bearer HEALTH_TOKEN or METRICS_TOKEN, and only statuses for anything else', async () => {
    const health = controller({ nodeEnv: 'production', healthToken: TOKEN, metricsToken: 'metrics-token-0123456789' });
    expect(await health.check(`Bearer ${TOKEN}`)).toEqual(DETAILED);
    expect(await health.check('Bearer metrics-token-0123456789')).toEqual(DETAILED);
    expect(JSON.stringify(await health.check(`Bearer ${TOKEN}x`))).not.toContain('vm-4242');
    expect(JSON.stringify(await health.check(undefined))).not.toContain('latencyMs');
  });

  it('keeps the 503 of an outage but not its host:port', async () => {
    const body = await refusal(controller({ nodeEnv: 'production', healthToken: TOKEN }, DOWN).check(undefined));
    expect(body).toEqual({ status: 'error', info: {}, error: { 'redis:command': { status: 'down' } }, details: { 'redis:command': { status: 'down' } } });
    expect(await refusal(controller({ nodeEnv: 'production', healthToken: TOKEN }, DOWN).check(`Bearer ${TOKEN}`))).toEqual(DOWN);
  });

  it('is open outside production while no token is set, and closed there too once one is', async () => {
    expect(await controller({ nodeEnv: 'development' }).check(undefined)).toEqual(DETAILED);
    expect(JSON.stringify(await controller({ nodeEnv: 'development', healthToken: TOKEN }).check(undefined))).not.toContain('vm-4242');
  });
});
