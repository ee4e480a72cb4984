import type { IncomingMessage, ServerResponse } from 'node:http';
import { DynamicModule, LoggerService } from '@nestjs/common';
import { LoggerModule, NativeLogger, Params, PinoLogger } from 'nestjs-pino';
import pino, { DestinationStream, Level, Logger as PinoInstance, LoggerOptions } from 'pino';
import type { Options as HttpLogOptions } from 'pino-http';
import type { AppConfig, LogLevel } from '../config';
import { assignRequestId } from './request-id';
import { REDACTED, secretScrubber } from './secret-scrubber';

/** The process's logger and, when it is ours, the module that logs each HTTP request through it. */
export interface AppLogging {
  readonly logger: LoggerService;
  readonly requestLogging?: DynamicModule;
}

type LoggingConfig = Pick<AppConfig, 'nodeEnv' | 'logLevel' | 'redis' | 'jwt' | 'admin' | 'metrics' | 'health'>;

const PINO_LEVELS: Record<LogLevel, Level> = { fatal: 'fatal', error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };

/** Headers and fields that carry credentials; censored wherever a request, response or handshake is logged. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'handshake.auth.token',
  'handshake.headers.authorization',
  'handshake.headers.cookie',
  '*.handshake.auth.token',
  '*.handshake.headers.authorization',
  '*.handshake.headers.cookie',
  'password',
  '*.password',
  'redis.endpoint.password',
  '*.redis.endpoint.password',
  'redis.cacheEndpoint.password',
  '*.redis.cacheEndpoint.password',
];

/** Render probes /health every few seconds and Prometheus scrapes /metrics: their lines are debug, not info. */
const PROBE_PATH = /^\/(health(\/live)?|metrics)\/?(\?|$)/;

/**
 * One pino logger for the process: JSON lines on stdout in production; readable lines (pino-pretty, a
 * devDependency) in development and test when it is installed. Nest's `Logger` writes through it, and inside
 * an HTTP request (nestjs-pino's AsyncLocalStorage) its lines carry the request's `reqId`.
 * Writes are synchronous so the shutdown lines written just before process.exit() are not lost.
 * Call it once per process: nestjs-pino keeps the first pino-http instance it is given for good.
 */
export async function createLogging(config: LoggingConfig, stdout: DestinationStream = pino.destination({ dest: 1, sync: true })): Promise<AppLogging> {
  const readable = config.nodeEnv === 'production' ? undefined : await readableLines();
  const scrub = secretScrubber([
    config.redis.endpoint?.password,
    config.redis.cacheEndpoint?.password,
    config.jwt.secret,
    config.admin?.password,
    config.metrics.token,
    config.health.token,
  ]);
  const options: LoggerOptions = {
    level: PINO_LEVELS[config.logLevel],
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: REDACTED },
    // pino-pretty reads numeric levels; a log pipeline reads names.
    formatters: readable ? {} : { level: (label) => ({ level: label }) },
    hooks: scrub ? { streamWrite: scrub } : {},
  };
  const root = pino(options, readable ? { write: (line: string) => stdout.write(readable(line)) } : stdout);

  const params: Params<IncomingMessage, ServerResponse> = { pinoHttp: httpLogOptions(root) };
  // The same params in main.ts and in the module: nestjs-pino builds one pino-http instance around `root`.
  const logger = new NativeLogger(new PinoLogger(params), params);
  return { logger, requestLogging: LoggerModule.forRoot(params) };
}

function httpLogOptions(logger: PinoInstance): HttpLogOptions<IncomingMessage, ServerResponse> {
  const path = (request: IncomingMessage) => (request as IncomingMessage & { originalUrl?: string }).originalUrl ?? request.url ?? '';
  return {
    logger,
    genReqId: assignRequestId,
    // App lines inside a request carry only the id; the one line per request carries the request itself.
    quietReqLogger: true,
    customProps: () => ({ context: 'HTTP' }),
    customLogLevel: (request, response, error) => requestLogLevel(path(request), response.statusCode, error),
    customSuccessMessage: (request, response, ms) => `${request.method} ${path(request)} ${response.statusCode} in ${ms} ms`,
    // pino-http turns every 5xx into an error "failed with status code N": say that once, not twice.
    customErrorMessage: (request, response, error) =>
      `${request.method} ${path(request)} ${response.statusCode}${error.message.startsWith('failed with status code') ? '' : ` failed: ${error.message}`}`,
  };
}

/**
 * Probes at debug (Render's health checks, Prometheus scrapes). A 503 is the app deliberately refusing while
 * Redis is unreachable (with Retry-After): warn, since the cause is already logged once by the Redis lines, and
 * an outage must not turn every refused request into an error. Other 5xx are errors.
 */
export function requestLogLevel(path: string, statusCode: number, error?: Error): Level {
  if (PROBE_PATH.test(path)) return 'debug';
  if (statusCode === 503) return 'warn';
  if (error || statusCode >= 500) return 'error';
  return statusCode >= 400 ? 'warn' : 'info';
}

/** pino-pretty's formatter, or undefined when it is not installed (production installs omit devDependencies). */
async function readableLines(): Promise<((line: string) => string) | undefined> {
  let pretty: typeof import('pino-pretty');
  try {
    pretty = (await import('pino-pretty')).default;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' || (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
  return pretty.prettyFactory({
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'hostname,context,reqId,req,res,responseTime',
    // "[Redis:command] ready in 5 ms": the context in brackets, as Nest's console logger printed it.
    messageFormat: (log, messageKey) => {
      const context = typeof log.context === 'string' ? `[${log.context}] ` : '';
      const requestId = typeof log.reqId === 'string' ? ` (request ${log.reqId})` : '';
      return `${context}${String(log[messageKey])}${requestId}`;
    },
  });
}
