import { ConsoleLogger, INestApplication, LoggerService, LogLevel as NestLogLevel, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { AppConfig, LogLevel } from './config';
import { RedisIoAdapter } from './presence';

const JSON_BODY_LIMIT = '8mb';
const LEVELS: NestLogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** JSON lines in production (one event a line for the log pipeline); readable lines elsewhere. */
export function createLogger(config: Pick<AppConfig, 'nodeEnv' | 'logLevel'>): ConsoleLogger {
  const production = config.nodeEnv === 'production';
  return new ConsoleLogger('PharmaCare', {
    json: production,
    colors: !production && process.stdout.isTTY === true,
    logLevels: levelsFrom(config.logLevel),
  });
}

function levelsFrom(level: LogLevel): NestLogLevel[] {
  return LEVELS.slice(0, LEVELS.indexOf(level) + 1);
}

/**
 * The Nest application for a validated config; main.ts listens on it. `extraModules` lets a benchmark add a
 * baseline route to the very same app (bench/constant-route-app.ts).
 */
export async function createApp(config: AppConfig, logger: LoggerService = createLogger(config), extraModules: Type[] = []): Promise<INestApplication> {
  const root = AppModule.forRoot(config);
  const app = await NestFactory.create<NestExpressApplication>({ ...root, imports: [...(root.imports ?? []), ...extraModules] }, { logger, bufferLogs: false });
  app.enableCors();
  // A 50,000-line report is about 4 MB of JSON; Upstash refuses requests over 10 MB.
  app.useBodyParser('json', { limit: JSON_BODY_LIMIT });
  // Socket.io rooms span instances through Redis; without a gateway (APP_ROLE=worker) it creates nothing.
  app.useWebSocketAdapter(new RedisIoAdapter(app));
  return app;
}
