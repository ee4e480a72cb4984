import type { INestApplication } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import { Server, type ServerOptions } from 'socket.io';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { withHandledRejections } from './handled-rejections';
import { adapterKey } from './presence.constants';

/**
 * Socket.io across instances: broadcasts and room emits go through Redis pub/sub on RedisModule's clients
 * (publish on `command`, subscriptions on the shared `subscriber`), under REDIS_KEY_PREFIX.
 *
 * An APP_ROLE=worker process serves no sockets, but a feature module it imports may hold a gateway: that
 * gateway gets a Socket.io server bound to nothing (no HTTP server, no Redis adapter), so nothing can connect
 * to it (and the handshake check, which only web processes load, is never missing in front of it).
 */
export class RedisIoAdapter extends IoAdapter {
  private readonly pubClient: Redis;
  private readonly subClient: Redis;
  private readonly key: string;
  private readonly servesSockets: boolean;
  private toldInactive = false;

  constructor(app: INestApplication) {
    super(app);
    const connections = app.get(RedisConnections);
    const config = app.get(AppConfig);
    this.pubClient = withHandledRejections(connections.client('command'), this.logger);
    this.subClient = withHandledRejections(connections.client('subscriber'), this.logger);
    this.key = adapterKey(config.redis.keyPrefix);
    this.servesSockets = config.appRole !== 'worker';
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    if (!this.servesSockets) {
      if (!this.toldInactive) this.logger.log('APP_ROLE=worker serves no sockets: gateways stay inactive here (RealtimeService emits from any process)');
      this.toldInactive = true;
      return new Server(options);
    }
    const server = super.createIOServer(port, options);
    server.adapter(createAdapter(this.pubClient, this.subClient, { key: this.key }));
    return server;
  }

  /** A server bound to nothing has no engine to close (socket.io's close would throw and stall the shutdown). */
  override async close(server: Server): Promise<void> {
    if (this.servesSockets) await super.close(server);
  }
}
