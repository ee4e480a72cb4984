import type { INestApplication, LoggerService, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { RedisConnections } from '../../src/redis';
import { until } from './until';

/** `module` as an initialised Nest app logging to `logger`, returned once every Redis client of RedisModule is ready. */
export async function initTestApp(module: Type, logger: LoggerService): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [module] })
    .setLogger(logger)
    .compile();
  const app = moduleRef.createNestApplication({ logger });
  await app.init();
  const connections = app.get(RedisConnections);
  await until(async () => connections.statuses().every((status) => status.state === 'ready'), Boolean);
  return app;
}
