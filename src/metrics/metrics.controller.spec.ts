import { describe, expect, it } from '@jest/globals';
import { UnauthorizedException } from '@nestjs/common';
import type { Response } from 'express';
import { Counter } from 'prom-client';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { loadConfig } from '../config';
import { MetricsController } from './metrics.controller';
import { MetricsRegistry } from './metrics.registry';

const TOKEN = 'metrics-token-3f9a1c7e5b2d';
const logger = CapturingLogger.install();

function controllerWith(env: Record<string, string>): { controller: MetricsController; headers: Map<string, string>; response: Response } {
  const registry = new MetricsRegistry();
  new Counter({ name: 'test_things_total', help: 'things', registers: [registry] }).inc(3);
  const headers = new Map<string, string>();
  const response = { setHeader: (name: string, value: string) => headers.set(name.toLowerCase(), value) } as unknown as Response;
  return { controller: new MetricsController(registry, loadConfig({ NODE_ENV: 'test', ...env })), headers, response };
}

describe('MetricsController', () => {
  it('serves the registry in the Prometheus text format, default process metrics included', async () => {
    const { controller, headers, response } = controllerWith({});
    const text = await controller.scrape(undefined, response);
    expect(text).toMatch(/^test_things_total 3$/m);
    expect(text).toMatch(/^pharmacare_process_cpu_user_seconds_total /m);
    expect(headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it.each([
    ['no Authorization header', undefined],
    ['a wrong token', 'Bearer metrics-token-3f9a1c7e5b2X'],
    ['the token without "Bearer"', TOKEN],
    ['another scheme', `Basic ${TOKEN}`],
  ])('answers 401 to %s when METRICS_TOKEN is set, echoing nothing', async (_case, authorization) => {
    const { controller, headers, response } = controllerWith({ METRICS_TOKEN: TOKEN });
    const scrape = controller.scrape(authorization, response);
    await expect(scrape).rejects.toBeInstanceOf(UnauthorizedException);
    const error = (await scrape.catch((caught: unknown) => caught)) as UnauthorizedException;
    expect(JSON.stringify(error.getResponse())).not.toContain(TOKEN.slice(0, 12));
    expect(headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
  });

  it('serves the bearer of METRICS_TOKEN', async () => {
    const { controller, response } = controllerWith({ METRICS_TOKEN: TOKEN });
    await expect(controller.scrape(`Bearer ${TOKEN}`, response)).resolves.toMatch(/^test_things_total 3$/m);
  });

  it('warns once at boot in production when METRICS_TOKEN is unset, and not otherwise', () => {
    const production = { NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:1', JWT_SECRET: 'j'.repeat(32), CORS_ORIGINS: '*' };
    const unprotected = /METRICS_TOKEN is unset: GET \/metrics is open/;
    controllerWith({ ...production, METRICS_TOKEN: TOKEN }).controller.onApplicationBootstrap();
    controllerWith({}).controller.onApplicationBootstrap();
    expect(logger.lines.filter((line) => unprotected.test(line))).toHaveLength(0);
    controllerWith(production).controller.onApplicationBootstrap();
    expect(logger.lines.filter((line) => unprotected.test(line))).toHaveLength(1);
    expect(logger.text).not.toContain(TOKEN);
  });
});
