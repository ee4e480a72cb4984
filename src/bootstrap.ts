import { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { AppConfig } from './config';
import { AppLogging, createLogging } from './logging';
import { RedisIoAdapter } from './presence';

const JSON_BODY_LIMIT = '8mb';

/**
 * The Nest application for a validated config; main.ts listens on it, e2e tests drive it in-process.
 * Tests may pass a logger of their own (without request logging). `extraModules` lets a benchmark add a
 * baseline route to the very same app (bench/constant-route-app.ts).
 */
export async function createApp(config: AppConfig, logging?: AppLogging, extraModules: Type[] = []): Promise<INestApplication> {
  const { logger, requestLogging } = logging ?? (await createLogging(config));
  const root = AppModule.forRoot(config, requestLogging);
  const app = await NestFactory.create<NestExpressApplication>({ ...root, imports: [...(root.imports ?? []), ...extraModules] }, { logger, bufferLogs: false });
  app.enableCors();
  // A 50,000-line report is about 4 MB of JSON; Upstash refuses requests over 10 MB.
  app.useBodyParser('json', { limit: JSON_BODY_LIMIT });
  // Socket.io rooms span instances through Redis; without a gateway (APP_ROLE=worker) it creates nothing.
  app.useWebSocketAdapter(new RedisIoAdapter(app));
  return app;
}
