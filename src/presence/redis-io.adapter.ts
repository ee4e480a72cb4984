import type { INestApplication } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { Server, type ServerOptions } from 'socket.io';
import { corsOptions } from '../common/security-headers';
import { AppConfig } from '../config';
import { RedisConnections } from '../redis';
import { PRESENCE_NAMESPACE } from './presence.constants';
import { socketIoRedisAdapter } from './socket-io-redis-adapter';

/** socket.io-client asks for its namespace as soon as the connection opens; this is only for clients that never do. */
const CONNECT_TIMEOUT_MS = 10_000;

/** What a client that opens the root namespace is told before its connection is closed. */
export const ROOT_NAMESPACE_CLOSED = `no such namespace: connect to ${PRESENCE_NAMESPACE}`;

/**
 * Socket.io across instances: broadcasts and room emits go through Redis pub/sub (socketIoRedisAdapter).
 *
 * An APP_ROLE=worker process serves no sockets, but a feature module it imports may hold a gateway: that
 * gateway gets a Socket.io server bound to nothing (no HTTP server, no Redis adapter), so nothing can connect
 * to it (and the handshake check, which only web processes load, is never missing in front of it).
 */
export class RedisIoAdapter extends IoAdapter {
  private readonly redisAdapter: ReturnType<typeof socketIoRedisAdapter>;
  private readonly corsOrigins: AppConfig['http']['corsOrigins'];
  private readonly servesSockets: boolean;
  private toldInactive = false;

  constructor(app: INestApplication) {
    super(app);
    const connections = app.get(RedisConnections);
    const config = app.get(AppConfig);
    this.redisAdapter = socketIoRedisAdapter(connections, config, this.logger);
    this.corsOrigins = config.http.corsOrigins;
    this.servesSockets = config.appRole !== 'worker';
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    if (!this.servesSockets) {
      if (!this.toldInactive) this.logger.log('APP_ROLE=worker serves no sockets: gateways stay inactive here (RealtimeService emits from any process)');
      this.toldInactive = true;
      return new Server(options);
    }
    const server = super.createIOServer(port, {
      ...options,
      cors: corsOptions({ http: { corsOrigins: this.corsOrigins } }),
      allowRequest: (request, callback) => callback(null, this.allowsOrigin(request.headers.origin)),
      // A connection that joins no namespace (an unknown one, or none) is closed after this; the default holds it 45 s.
      connectTimeout: CONNECT_TIMEOUT_MS,
    } as ServerOptions);
    server.adapter(this.redisAdapter as Parameters<Server['adapter']>[0]);
    // The root namespace always exists and needs no token: without this it holds any connection forever.
    server.of('/').use((socket, next) => {
      next(new Error(ROOT_NAMESPACE_CLOSED));
      // Socket.io writes the connect_error on the next tick and skips it for a closed connection, so close after
      // it; engine.io's close() flushes what is buffered first. Namespaces multiplexed on it reconnect by themselves.
      setImmediate(() => socket.conn.close());
    });
    return server;
  }

  /**
   * `cors` covers HTTP long-polling only; browsers send no preflight for a WebSocket, so the handshake's Origin
   * is checked here too. A request without Origin is not from a browser page, which is what CORS is about.
   */
  private allowsOrigin(origin: string | undefined): boolean {
    return this.corsOrigins === '*' || origin === undefined || this.corsOrigins.includes(origin);
  }

  /** A server bound to nothing has no engine to close (socket.io's close would throw and stall the shutdown). */
  override async close(server: Server): Promise<void> {
    if (this.servesSockets) await super.close(server);
  }
}
