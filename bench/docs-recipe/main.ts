/**
 * A small app wired exactly as the NestJS docs' recipes show (queues, caching, websockets/adapter, and the
 * authentication recipe's guard): the baseline "what users would build instead" of bench/queue.bench.ts and
 * bench/cache.bench.ts. Compiled with tsc (bench/docs-recipe/tsconfig.json: Nest's injection needs the decorator
 * metadata tsx does not emit) and started by bench/docs-recipe-app.ts. Environment: REDIS_URL, JWT_SECRET, PORT,
 * HOST, RECIPE_ROLE (web | worker | all, default all).
 */
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { RedisIoAdapter } from './redis-io.adapter';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  const redisIoAdapter = new RedisIoAdapter(app);
  await redisIoAdapter.connectToRedis();

  app.useWebSocketAdapter(redisIoAdapter);
  const host = process.env.HOST ?? '127.0.0.1';
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port, host);
  // The line AppProcess waits for.
  console.log(`listening on http://${host}:${port} (docs recipe, RECIPE_ROLE=${process.env.RECIPE_ROLE ?? 'all'})`);
}
void bootstrap();
