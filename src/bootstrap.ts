import { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { JsonBodyInterceptor } from './common/json-body';
import { corsOptions, securityHeadersOptions } from './common/security-headers';
import { AppConfig } from './config';
import { AppLogging, createLogging } from './logging';
import { RedisIoAdapter } from './presence';

/**
 * The Nest application for a validated config; main.ts listens on it, e2e tests drive it in-process.
 * Tests may pass a logger of their own (without request logging). `extraModules` lets a benchmark add a
 * baseline route to the very same app (bench/constant-route-app.ts), main.ts the module of its development Redis.
 */
export async function createApp(config: AppConfig, logging?: AppLogging, extraModules: Array<Type | DynamicModule> = []): Promise<INestApplication> {
  const { logger, requestLogging } = logging ?? (await createLogging(config));
  const root = AppModule.forRoot(config, requestLogging);
  // No body parser before routing (and so none for forms: bodies are JSON only): JsonBodyInterceptor parses
  // after the guards, with each route's own limit.
  const app = await NestFactory.create<NestExpressApplication>(
    { ...root, imports: [...(root.imports ?? []), ...extraModules] },
    { logger, bufferLogs: false, bodyParser: false },
  );
  app.useSecurityHeaders(securityHeadersOptions(config));
  app.enableCors(corsOptions(config));
  app.useGlobalInterceptors(new JsonBodyInterceptor(app.get(Reflector)));
  // Socket.io rooms span instances through Redis; without a gateway (APP_ROLE=worker) it creates nothing.
  app.useWebSocketAdapter(new RedisIoAdapter(app));
  return app;
}
