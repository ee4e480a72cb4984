import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { createApp } from './bootstrap';
import { AppConfig, ConfigError, loadConfig, loadDotEnv, parseRedisUrl } from './config';
import { setupApiDocs } from './http';
import { createLogging } from './logging';
import { JobHandlerDeclarationError } from './queue';
import { DevelopmentRedis, DevelopmentRedisError, DevelopmentRedisModule, startDevelopmentRedis } from './redis';

/** Local, git-ignored state of development runs: the private Redis's directory and the generated JWT secret. */
const DEV_DIR = join(process.cwd(), '.dev');
const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

async function main(): Promise<void> {
  loadDotEnv();

  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\nSee .env.example and README.md#configuration.\n`);
    process.exit(1);
  }

  const logging = await createLogging(config);
  Logger.overrideLogger(logging.logger);
  const log = new Logger('Bootstrap');

  let devRedis: DevelopmentRedis | undefined;
  if (!config.redis.endpoint) {
    try {
      devRedis = await startDevelopmentRedis(DEV_DIR, { cluster: config.redis.cluster });
    } catch (error) {
      if (!(error instanceof DevelopmentRedisError)) throw error;
      log.error(error.message);
      process.exit(1);
    }
    const cache = config.redis.cacheEndpoint ? `, for everything but the cache (on REDIS_CACHE_URL)` : '';
    const what = config.redis.cluster ? `Redis Cluster of ${devRedis.pids.length} masters` : 'Redis';
    log.log(`REDIS_URL is unset: started a private development ${what} at ${devRedis.url}${cache} (pid ${devRedis.pids.join(', ')}; set REDIS_URL to use your own)`);
    config = { ...config, redis: { ...config.redis, endpoint: parseRedisUrl(devRedis.url) } };
  }
  if (config.jwt.generated) {
    log.warn('JWT_SECRET is unset: using a random secret for this run; tokens from earlier runs are invalid. `npm run token` signs with it.');
    if (config.nodeEnv === 'development') {
      mkdirSync(DEV_DIR, { recursive: true });
      writeFileSync(join(DEV_DIR, 'jwt-secret'), config.jwt.secret, { mode: 0o600 });
    }
  }

  const app = await createApp(config, logging, devRedis ? [DevelopmentRedisModule.forRoot(devRedis)] : []);
  // After createApp: Swagger UI's routes go to Express in call order, so they come after the app-wide middleware
  // (security headers included) and get it too.
  setupApiDocs(app, config);
  try {
    await app.init();
  } catch (error) {
    // A feature declaring a job kind twice: a programming error to fix, so one clear line and no restart loop of stack traces.
    if (!(error instanceof JobHandlerDeclarationError)) throw error;
    log.error(`cannot start: ${error.message}`);
    await devRedis?.stop();
    process.exit(1);
  }
  // Nest runs every shutdown hook (RedisModule's last: it closes the connections, then the development Redis) and
  // exits 0. The deadline is ours: a shutdown that hangs still ends, with exit code 1 (the 'exit' handler of
  // startDevelopmentRedis kills a development Redis left running).
  app.enableShutdownHooks(SHUTDOWN_SIGNALS, { useProcessExit: true });
  let deadlineArmed = false;
  const armDeadline = (signal: NodeJS.Signals) => {
    if (deadlineArmed) return;
    deadlineArmed = true;
    log.log(`${signal} received: shutting down (deadline ${config.shutdownTimeoutMs / 1000} s)`);
    setTimeout(() => {
      log.error(`shutdown did not finish within ${config.shutdownTimeoutMs / 1000} s (SHUTDOWN_TIMEOUT_SECONDS): exiting anyway`);
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, armDeadline);

  await app.listen(config.port, config.host);
  log.log(`listening on http://${config.host}:${config.port} (NODE_ENV=${config.nodeEnv})`);
}

void main();
