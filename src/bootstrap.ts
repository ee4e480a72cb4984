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
  // bodyParser: false drops Nest's form (urlencoded) parser: bodies are JSON only, anything else reaches the
  // validation pipe as a missing body and answers 400 saying to send JSON.
  const app = await NestFactory.create<NestExpressApplication>({ ...root, imports: [...(root.imports ?? []), ...extraModules] }, { logger, bufferLogs: false, bodyParser: false });
  app.enableCors();
  // A 50,000-line report is about 4 MB of JSON; Upstash refuses requests over 10 MB. strict: false lets a body of
  // `null` or `42` reach its schema, which says what is expected, instead of failing as "not valid JSON".
  app.useBodyParser('json', { limit: JSON_BODY_LIMIT, strict: false, type: ['application/json', 'application/*+json'] });
  // Socket.io rooms span instances through Redis; without a gateway (APP_ROLE=worker) it creates nothing.
  app.useWebSocketAdapter(new RedisIoAdapter(app));
  return app;
}
