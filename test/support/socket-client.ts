import { io, type Socket } from 'socket.io-client';
import type { AppProcess } from './app-process';

const DEFAULT_WAIT_MS = 10_000;

export interface ReceivedEvent {
  readonly event: string;
  readonly payload: unknown;
  readonly at: number;
}

interface EventWaiter {
  event: string;
  matches: (payload: unknown) => boolean;
  resolve: (payload: unknown) => void;
}

/**
 * A socket.io client of /presence that records every event it receives, so a test can await one
 * (already received or still to come) and later check what never came.
 */
export class PresenceClient {
  readonly received: ReceivedEvent[] = [];
  readonly socket: Socket;
  private readonly waiters = new Set<EventWaiter>();
  /** Why the socket disconnected, recorded when it happened, so awaiting two clients one after the other works. */
  private disconnectReason?: string;

  constructor(baseUrl: string, token: string | undefined) {
    this.socket = io(`${baseUrl}/presence`, {
      auth: token === undefined ? {} : { token },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    this.socket.on('disconnect', (reason) => (this.disconnectReason = reason));
    this.socket.onAny((event: string, payload: unknown) => {
      this.received.push({ event, payload, at: Date.now() });
      for (const waiter of [...this.waiters]) if (waiter.event === event && waiter.matches(payload)) waiter.resolve(payload);
    });
  }

  /** Connects and resolves once connected; rejects with the server's connect_error. */
  static async connect(app: AppProcess, token: string | undefined): Promise<PresenceClient> {
    const client = new PresenceClient(app.baseUrl, token);
    await client.connected();
    return client;
  }

  connected(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`not connected within ${timeoutMs} ms`)), timeoutMs);
      const done = (error?: Error) => {
        clearTimeout(timer);
        this.socket.off('connect', onConnect);
        this.socket.off('connect_error', onError);
        if (error) reject(error);
        else resolve();
      };
      const onConnect = () => done();
      const onError = (error: Error) => done(error);
      this.socket.once('connect', onConnect);
      this.socket.once('connect_error', onError);
    });
  }

  /** The first event named `event` whose payload matches, received before or after this call. */
  waitFor<T>(event: string, matches: (payload: T) => boolean = () => true, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
    const seen = this.received.find((received) => received.event === event && matches(received.payload as T));
    if (seen) return Promise.resolve(seen.payload as T);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no ${event} within ${timeoutMs} ms; received: ${JSON.stringify(this.received.map(({ event: name, payload }) => [name, payload]))}`));
      }, timeoutMs);
      const waiter: EventWaiter = {
        event,
        matches: (payload) => matches(payload as T),
        resolve: (payload) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(payload as T);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Every payload of `event` received so far that matches. */
  all<T>(event: string, matches: (payload: T) => boolean = () => true): T[] {
    return this.received.filter((received) => received.event === event && matches(received.payload as T)).map((received) => received.payload as T);
  }

  request<T>(event: string, ...args: unknown[]): Promise<T> {
    return this.socket.timeout(5_000).emitWithAck(event, ...args) as Promise<T>;
  }

  /** Resolves with the reason once the socket is disconnected (whoever closed it), now or earlier. */
  disconnected(timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    if (this.disconnectReason !== undefined) return Promise.resolve(this.disconnectReason);
    if (!this.socket.connected) return Promise.resolve('never connected');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`still connected after ${timeoutMs} ms`)), timeoutMs);
      this.socket.once('disconnect', (reason) => {
        clearTimeout(timer);
        resolve(reason);
      });
    });
  }

  close(): void {
    this.socket.disconnect();
  }
}
