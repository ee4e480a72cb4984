/**
 * The cache suite's baseline: the app exactly as dist/main.js builds it, plus GET /bench/constant, which answers
 * a constant behind the same JWT guard. The constant is the completed report view the suite measures (read once
 * from BENCH_CONSTANT_BODY_FILE on the first request), so the cached route and its baseline serialise the same
 * bytes in the same process and differ only by the cache lookup and the route's own work.
 *
 * It loads the compiled app from dist/ because Nest's dependency injection needs the decorator metadata that tsc
 * emits and tsx does not; the controller here injects nothing, so it needs none.
 */
import { readFileSync } from 'node:fs';
import { Controller, Get, Module, UseGuards } from '@nestjs/common';

/* eslint-disable @typescript-eslint/no-require-imports -- the compiled app, typed by its sources */
const { createApp } = require('../dist/bootstrap') as typeof import('../src/bootstrap');
const { loadConfig } = require('../dist/config') as typeof import('../src/config');
const { AuthModule, JwtAuthGuard } = require('../dist/auth') as typeof import('../src/auth');
/* eslint-enable @typescript-eslint/no-require-imports */

let body: unknown;

@Controller('bench')
@UseGuards(JwtAuthGuard)
class ConstantController {
  @Get('constant')
  constant(): unknown {
    const file = process.env.BENCH_CONSTANT_BODY_FILE;
    if (!file) throw new Error('BENCH_CONSTANT_BODY_FILE is unset');
    body ??= JSON.parse(readFileSync(file, 'utf8'));
    return body;
  }
}

@Module({ imports: [AuthModule], controllers: [ConstantController] })
class ConstantRouteModule {}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await createApp(config, undefined, [ConstantRouteModule]);
  await app.listen(config.port, config.host);
  // The line AppProcess waits for, as dist/main.js prints it.
  console.log(`listening on http://${config.host}:${config.port} (bench: with GET /bench/constant)`);
}

void main();
