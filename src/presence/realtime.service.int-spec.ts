import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { INestApplication, Injectable, Module, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConnectedSocket, MessageBody, WebSocketGateway } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { CapturingLogger } from '../../test/support/capturing-logger';
import { RedisServer, stopAllRedisServers } from '../../test/support/redis-server';
import { JWT_SECRET, tokenFor } from '../../test/support/reports-client';
import { PresenceClient } from '../../test/support/socket-client';
import { until } from '../../test/support/until';
import { AuthModule } from '../auth';
import { ConfigModule, loadConfig } from '../config';
import { SchemaValidationPipe } from '../http';
import { HealthModule } from '../health';
import { RedisConnections, RedisModule } from '../redis';
import { OnClientEvent, PresenceModule, RealtimeGateway, RealtimeModule, RealtimeService, RedisIoAdapter } from './index';
import type { RealtimeSocket } from './index';

/** A feature's client event: its schema is the one source of its payload type. */
const watchStock = z.object({ sku: z.string().min(1, 'must not be empty') });

declare module './index' {
  interface ServerEvents {
    'test:stock-low': { sku: string; units: number };
  }
  interface ClientEvents {
    'test:watch-stock': z.infer<typeof watchStock>;
    'test:fail': undefined;
  }
}

/** What a feature folder holds: a gateway on the realtime namespace, and a service that emits from any process. */
@RealtimeGateway()
class StockGateway {
  @OnClientEvent('test:watch-stock')
  watch(@MessageBody({ schema: watchStock }) request: z.infer<typeof watchStock>, @ConnectedSocket() socket: RealtimeSocket): { watching: string; tenant: string } {
    return { watching: request.sku, tenant: socket.data.principal.tenantId };
  }

  @OnClientEvent('test:fail')
  fail(): never {
    throw new Error('a bug in a handler');
  }
}

@Injectable()
class StockAlerts {
  constructor(readonly realtime: RealtimeService) {}
}

@Module({ providers: [StockGateway, StockAlerts] })
class StockModule {}

/** Checked by `npm run lint` (tsc): each line below must stay a compile error. Never called. */
export function typeChecks(realtime: RealtimeService): void {
  // @ts-expect-error an event nobody declared
  realtime.emitToUser('t1', 'u1', 'test:stock-lwo', { sku: 'AMOX-500', units: 1 });
  // @ts-expect-error a payload of the wrong type
  realtime.emitToTenant('t1', 'test:stock-low', { sku: 'AMOX-500', units: '1' });
  // @ts-expect-error presence events keep their payloads too
  realtime.emitToTenant('t1', 'presence:online', { userId: 'u1' });
  class Wrong {
    // @ts-expect-error a client event nobody declared
    @OnClientEvent('test:watch-stok')
    unknown(_request: unknown): void {}

    // @ts-expect-error a handler whose payload parameter does not take the declared payload
    @OnClientEvent('test:watch-stock')
    mistyped(_request: { sku: number }): void {}
  }
  void Wrong;
}

let redis: RedisServer;
const apps: INestApplication[] = [];
const clients: PresenceClient[] = [];
const logger = new CapturingLogger();

async function start(role: 'web' | 'worker', modules: Type[] = [StockModule], globalSchemaPipe = false): Promise<{ app: INestApplication; url: string; alerts: StockAlerts }> {
  const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: redis.url(), JWT_SECRET, APP_ROLE: role, PRESENCE_OFFLINE_GRACE_SECONDS: '0' });
  const web = role === 'web' ? [AuthModule, PresenceModule] : [];
  @Module({ imports: [ConfigModule.forRoot(config), RedisModule, HealthModule, RealtimeModule, ...web, ...modules] })
  class RealtimeTestModule {}
  const moduleRef = await Test.createTestingModule({ imports: [RealtimeTestModule] }).setLogger(logger).compile();
  const app = moduleRef.createNestApplication({ logger });
  app.useWebSocketAdapter(new RedisIoAdapter(app));
  if (globalSchemaPipe) app.useGlobalPipes(new SchemaValidationPipe());
  apps.push(app);
  await app.listen(0, '127.0.0.1');
  const connections = app.get(RedisConnections);
  await until(async () => connections.statuses().every((status) => status.state === 'ready'), Boolean);
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, alerts: app.get(StockAlerts) };
}

async function connect(url: string, userId: string, tenantId: string): Promise<PresenceClient> {
  const client = new PresenceClient(url, tokenFor(userId, tenantId));
  clients.push(client);
  await client.connected();
  await client.waitFor('presence:snapshot');
  return client;
}

/** An acknowledged request after an emit proves that whatever was sent to that socket before it has arrived. */
const settle = (...sockets: PresenceClient[]) => Promise.all(sockets.map((socket) => socket.request('presence:list')));

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(apps.splice(0).map((app) => app.close()));
  logger.lines.length = 0;
});
afterAll(stopAllRedisServers);

describe('RealtimeService', () => {
  it("emitToUser from a worker (which serves no sockets) reaches that user's sockets on a web instance, and no one else's", async () => {
    const web = await start('web');
    const worker = await start('worker');
    const author = await connect(web.url, 'u1', 'pharmacy-1');
    const colleague = await connect(web.url, 'u2', 'pharmacy-1');
    // User ids are unique per pharmacy only: the same id in another tenant is someone else.
    const namesake = await connect(web.url, 'u1', 'pharmacy-2');

    worker.alerts.realtime.emitToUser('pharmacy-1', 'u1', 'test:stock-low', { sku: 'AMOX-500', units: 2 });
    expect(await author.waitFor('test:stock-low')).toEqual({ sku: 'AMOX-500', units: 2 });
    await settle(colleague, namesake);
    expect(colleague.all('test:stock-low')).toEqual([]);
    expect(namesake.all('test:stock-low')).toEqual([]);
  });

  it("emitToTenant from one web instance reaches the tenant's sockets on another, and not another tenant's", async () => {
    const a = await start('web');
    const b = await start('web');
    const first = await connect(a.url, 'u1', 'pharmacy-1');
    const second = await connect(b.url, 'u2', 'pharmacy-1');
    const outsider = await connect(a.url, 'u3', 'pharmacy-2');

    b.alerts.realtime.emitToTenant('pharmacy-1', 'test:stock-low', { sku: 'IBU-200', units: 0 });
    expect(await first.waitFor('test:stock-low')).toEqual({ sku: 'IBU-200', units: 0 });
    expect(await second.waitFor('test:stock-low')).toEqual({ sku: 'IBU-200', units: 0 });
    await settle(outsider);
    expect(outsider.all('test:stock-low')).toEqual([]);
  });
});

describe('a feature gateway on the realtime namespace', () => {
  it('has its events known to the guard, its payloads validated by its schema, and errors answered as { error }', async () => {
    const { url } = await start('web');
    const client = await connect(url, 'u1', 'pharmacy-1');
    expect(await client.request('test:watch-stock', { sku: 'AMOX-500' })).toEqual({ watching: 'AMOX-500', tenant: 'pharmacy-1' });
    expect(await client.request('test:watch-stock', { sku: '' })).toEqual({ error: 'sku must not be empty' });
    expect(await client.request('test:watch-stock', 'AMOX-500')).toEqual({ error: expect.stringContaining('expected object') });
    expect(await client.request('test:watch-stock', { sku: 'x'.repeat(2_000) })).toEqual({ error: expect.stringContaining('too large') });
    expect(await client.request('test:unknown', {})).toEqual({ error: 'unknown event' });
    expect(await client.request('test:fail')).toEqual({ error: 'internal error' });
    expect(logger.lines.filter((line) => line.includes('test:fail handler failed: Error: a bug in a handler'))).toHaveLength(1);
    // Presence's own event goes on working beside it.
    expect(await client.request('presence:list', { tenant: 'other' })).toEqual({ error: 'payload has unknown key "tenant"' });
    expect(client.socket.connected).toBe(true);
  });

  it('answers a refused payload as { error } also behind the global HTTP SchemaValidationPipe, naming the payload', async () => {
    const { url } = await start('web', [StockModule], true);
    const client = await connect(url, 'u1', 'pharmacy-1');
    expect(await client.request('test:watch-stock', { sku: '' })).toEqual({ error: 'sku must not be empty' });
    expect(await client.request('test:watch-stock', { sku: 'AMOX-500' })).toEqual({ watching: 'AMOX-500', tenant: 'pharmacy-1' });
  });

  it('serves nothing in an APP_ROLE=worker process: no socket can connect there', async () => {
    const { url } = await start('worker');
    await expect(new PresenceClient(url, tokenFor('u1', 'pharmacy-1')).connected(3_000)).rejects.toThrow();
    expect(logger.lines.filter((line) => line.includes('APP_ROLE=worker serves no sockets'))).toHaveLength(1);
  });

  it('fails boot when declared on another namespace, which would skip the handshake check and the guard', async () => {
    @WebSocketGateway({ namespace: '/open' })
    class OpenGateway {}
    @Module({ providers: [OpenGateway] })
    class OpenModule {}
    await expect(start('web', [OpenModule])).rejects.toThrow('OpenGateway is a gateway on namespace /open, which has no authentication: declare it with @RealtimeGateway()');
  });
});
