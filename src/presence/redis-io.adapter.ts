import type { INestApplication } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import type { Server, ServerOptions } from 'socket.io';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { withHandledRejections } from './handled-rejections';
import { adapterKey } from './presence.constants';

/**
 * Socket.io across instances: broadcasts and room emits go through Redis pub/sub on RedisModule's clients
 * (publish on `command`, subscriptions on the shared `subscriber`), under REDIS_KEY_PREFIX.
 */
export class RedisIoAdapter extends IoAdapter {
  private readonly pubClient: Redis;
  private readonly subClient: Redis;
  private readonly key: string;

  constructor(app: INestApplication) {
    super(app);
    const connections = app.get(RedisConnections);
    this.pubClient = withHandledRejections(connections.client('command'), this.logger);
    this.subClient = withHandledRejections(connections.client('subscriber'), this.logger);
    this.key = adapterKey(app.get(AppConfig).redis.keyPrefix);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const server = super.createIOServer(port, options);
    server.adapter(createAdapter(this.pubClient, this.subClient, { key: this.key }));
    return server;
  }
}
