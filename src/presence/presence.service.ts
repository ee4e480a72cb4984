import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Principal } from '../auth';
import { AppConfig } from '../config';
import { InjectRedis, type RedisClient } from '../redis';
import { OfflineEvent, OnlineEvent, OnlineUser, PRESENCE_EVENTS } from './presence.constants';
import { definePresenceScripts, PresenceKeys, PresenceRedis } from './presence.scripts';
import { PresenceSockets } from './presence-sockets';
import { RealtimeService } from './realtime.service';

/** What this instance knows about one user of one tenant. */
interface LocalUser {
  readonly tenantId: string;
  readonly userId: string;
  /** Sockets of the user on this instance: only 0 <-> 1 changes touch Redis. */
  sockets: number;
  /** Pending while the user's last socket here is gone but the offline grace has not run out. */
  grace?: NodeJS.Timeout;
  /** Whether Redis counts this instance as holding the user. */
  held: boolean;
  /** The acquire or release in flight, if any: at most one per user, so they never cross. */
  syncing?: Promise<void>;
  lastSeen: number;
}

/** Time left of the shutdown deadline for closing the server and the Redis connections after the presence drain. */
const SHUTDOWN_RESERVE_MS = 2_000;

/**
 * Who is online, per tenant, across instances. Costs do not grow with sockets: a user's first socket on an
 * instance and their last one leaving (after the offline grace) are one script call each; further tabs only
 * change a local counter. Each instance holds a lease; a heartbeat every third of the TTL refreshes it and
 * releases the users of instances whose lease ran out (SIGKILL, crash), in one script call.
 */
@Injectable()
export class PresenceService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Presence');
  readonly instanceId = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly keys: PresenceKeys;
  private readonly redis: PresenceRedis;
  private readonly users = new Map<string, LocalUser>();
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatRunning?: Promise<void>;
  private redisFailing = false;
  /**
   * A presence command failed (timed out, connection dropped): it may still have run in Redis with its reply
   * lost, e.g. a heartbeat queued behind a frozen Redis that re-registered this instance after another one
   * reaped it, swallowing the `registered` signal. Redis's state is then unknown, so the next heartbeat resyncs.
   */
  private outcomeUnknown = false;
  private draining?: Promise<void>;
  private readonly onSigterm = () => void this.drain();
  private readonly onRedisReady = () => void this.heartbeat();

  constructor(
    @InjectRedis('command') redis: RedisClient,
    private readonly sockets: PresenceSockets,
    private readonly realtime: RealtimeService,
    private readonly config: AppConfig,
  ) {
    this.keys = new PresenceKeys(config.redis.presencePrefix, this.instanceId);
    this.redis = definePresenceScripts(redis);
  }

  onApplicationBootstrap(): void {
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    // After an outage, renew the lease and resync at once instead of at the next tick.
    this.redis.on('ready', this.onRedisReady);
    // Start draining on the signal, not in our shutdown hook: the offline grace then overlaps the hooks of
    // other modules (a queue worker's grace) instead of adding to them within SHUTDOWN_TIMEOUT_SECONDS.
    process.once('SIGTERM', this.onSigterm);
    void this.heartbeat();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  /**
   * Refreshed every third of PRESENCE_TTL_SECONDS and valid for two thirds, so a lease survives one late
   * refresh, and a dead instance's lease runs out and is seen by another instance's next heartbeat within the TTL.
   */
  private get heartbeatIntervalMs(): number {
    return Math.floor(this.config.presence.ttlMs / 3);
  }

  private get leaseMs(): string {
    return String(2 * this.heartbeatIntervalMs);
  }

  /** Users this instance holds (or is about to release after the grace). */
  localUsers(): number {
    return this.users.size;
  }

  /** Users with at least one socket on this instance right now (not those in their offline grace). */
  connectedUsers(): number {
    let connected = 0;
    for (const user of this.users.values()) if (user.sockets > 0) connected += 1;
    return connected;
  }

  /** A socket of the principal connected here. Resolves once Redis has been told (or failed to be). */
  async connect(principal: Principal): Promise<void> {
    const key = PresenceKeys.member(principal.tenantId, principal.userId);
    let user = this.users.get(key);
    if (!user) {
      user = { tenantId: principal.tenantId, userId: principal.userId, sockets: 0, held: false, lastSeen: Date.now() };
      this.users.set(key, user);
    }
    user.sockets += 1;
    if (user.grace) {
      clearTimeout(user.grace);
      user.grace = undefined;
    }
    await this.sync(user);
  }

  /** A socket of the principal left. The user is released only after the offline grace, if no socket came back. */
  disconnect(principal: Principal): void {
    const key = PresenceKeys.member(principal.tenantId, principal.userId);
    const user = this.users.get(key);
    if (!user || user.sockets === 0) return;
    user.sockets -= 1;
    if (user.sockets > 0) return;
    user.lastSeen = Date.now();
    // While draining, the shutdown releases everyone left in one call after the grace.
    if (this.draining) return;
    user.grace = setTimeout(() => {
      user.grace = undefined;
      void this.sync(user);
    }, this.config.presence.offlineGraceMs);
    user.grace.unref();
  }

  async snapshot(tenantId: string): Promise<OnlineUser[]> {
    const online = await this.redis.hgetall(this.keys.online(tenantId));
    return Object.entries(online)
      .map(([userId, since]) => ({ userId, since: new Date(Number(since)).toISOString() }))
      .sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
  }

  private wanted(user: LocalUser): boolean {
    return user.sockets > 0 || user.grace !== undefined;
  }

  /** Brings Redis in line with what this instance knows about the user; one operation at a time per user. */
  private sync(user: LocalUser): Promise<void> {
    if (this.draining) return Promise.resolve();
    user.syncing ??= this.runSync(user).finally(() => (user.syncing = undefined));
    return user.syncing;
  }

  private async runSync(user: LocalUser): Promise<void> {
    const key = PresenceKeys.member(user.tenantId, user.userId);
    try {
      while (!this.draining && this.users.get(key) === user && user.held !== this.wanted(user)) {
        if (this.wanted(user)) await this.acquire(user, key);
        else await this.release(user, key);
      }
      this.redisRecovered();
    } catch (error) {
      // Left as it is: the next heartbeat (or the client's 'ready') syncs it again.
      this.redisFailed(error);
    }
    if (!this.draining && !this.wanted(user) && !user.held && this.users.get(key) === user) this.users.delete(key);
  }

  private async acquire(user: LocalUser, key: string): Promise<void> {
    const reply = await this.redis.presenceAcquire(
      this.keys.instances,
      this.keys.lease,
      this.keys.held,
      this.keys.holders(user.tenantId),
      this.keys.online(user.tenantId),
      this.instanceId,
      this.leaseMs,
      key,
      user.userId,
      String(Date.now()),
    );
    const [registered, wentOnline, since] = reply as [number, number, string];
    user.held = true;
    if (registered === 1) this.resyncAllExcept(user);
    if (wentOnline === 1) {
      const event: OnlineEvent = { userId: user.userId, since: new Date(Number(since)).toISOString() };
      this.realtime.emitToTenant(user.tenantId, PRESENCE_EVENTS.online, event);
    }
  }

  private async release(user: LocalUser, key: string): Promise<void> {
    const wentOffline = await this.redis.presenceRelease(this.keys.held, this.keys.holders(user.tenantId), this.keys.online(user.tenantId), key, user.userId);
    user.held = false;
    if (wentOffline === 1) this.emitOffline(user.tenantId, user.userId, user.lastSeen);
  }

  /**
   * Redis may not hold what this instance believes: the instances set did not list it (it is new, or another
   * instance reaped it after its lease ran out during a stall or an outage), or a command's outcome is unknown.
   * Acquire and release are both idempotent, so each user gets the one that matches what it wants, whatever
   * this instance thought Redis held.
   */
  private resyncAllExcept(except?: LocalUser): void {
    for (const user of this.users.values()) {
      if (user === except) continue;
      user.held = !this.wanted(user);
      void this.sync(user);
    }
  }

  private heartbeat(): Promise<void> {
    // Not ready: the client's 'ready' event runs the heartbeat as soon as it is.
    if (this.draining || this.redis.status !== 'ready') return Promise.resolve();
    // An instance nobody is connected to holds no one and has no one to tell: it sends nothing, so an idle
    // deployment costs no commands. Its lease lapses; the first connect registers it again. Another instance
    // still reaps dead instances, and if none is busy, the first one to get a socket does.
    if (this.users.size === 0) return Promise.resolve();
    this.heartbeatRunning ??= this.runHeartbeat().finally(() => (this.heartbeatRunning = undefined));
    return this.heartbeatRunning;
  }

  private async runHeartbeat(): Promise<void> {
    let reply: unknown;
    try {
      reply = await this.redis.presenceHeartbeat(this.keys.instances, this.keys.lease, this.instanceId, this.leaseMs, String(Date.now()), this.keys.root);
    } catch (error) {
      this.redisFailed(error);
      return;
    }
    const [registered, ...released] = reply as [number, ...string[]];
    this.emitReleased(released, Date.now());
    if (registered === 1 || this.outcomeUnknown) {
      this.outcomeUnknown = false;
      this.resyncAllExcept();
    } else {
      // Users whose acquire or release failed while Redis was unreachable.
      for (const user of this.users.values()) if (user.held !== this.wanted(user)) void this.sync(user);
    }
    // A heartbeat can pass while the users' own commands still fail (a full Redis takes the lease refresh but
    // refuses new members): in sync only once every user is.
    this.redisRecovered();
  }

  /**
   * SIGTERM: close this instance's sockets so clients reconnect elsewhere, give them the offline grace to do
   * so (bounded by the shutdown deadline), then release in one call whoever did not come back anywhere.
   */
  private drain(): Promise<void> {
    this.draining ??= this.runDrain();
    return this.draining;
  }

  private async runDrain(): Promise<void> {
    const started = Date.now();
    process.off('SIGTERM', this.onSigterm);
    this.redis.off('ready', this.onRedisReady);
    clearInterval(this.heartbeatTimer);
    const closed = this.sockets.drain();
    for (const user of this.users.values()) clearTimeout(user.grace);
    const wait = Math.max(0, Math.min(this.config.presence.offlineGraceMs, this.config.shutdownTimeoutMs - SHUTDOWN_RESERVE_MS));
    if (this.users.size > 0) {
      this.logger.log(`closed ${closed} sockets; waiting ${wait} ms for ${this.users.size} users to reconnect elsewhere before releasing them`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    await this.heartbeatRunning;
    await Promise.all([...this.users.values()].map((user) => user.syncing));
    try {
      const released = (await this.redis.presenceLeave(this.keys.instances, this.keys.lease, this.instanceId, this.keys.root)) as string[];
      this.emitReleased(released, Date.now());
      this.logger.log(`released ${this.users.size} users (${released.length / 2} went offline) in ${Date.now() - started} ms`);
    } catch (error) {
      this.logger.warn(
        `could not release this instance's users (${describe(error)}): another instance reaps them within PRESENCE_TTL_SECONDS (${this.config.presence.ttlMs / 1000})`,
      );
    }
    this.users.clear();
  }

  /** Offline events for [tenant, user, tenant, user, ...] as returned by the reaping scripts. */
  private emitReleased(flat: readonly string[], fallbackLastSeen: number): void {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const tenantId = flat[i];
      const userId = flat[i + 1];
      const local = this.users.get(PresenceKeys.member(tenantId, userId));
      this.emitOffline(tenantId, userId, local?.lastSeen ?? fallbackLastSeen);
    }
  }

  private emitOffline(tenantId: string, userId: string, lastSeen: number): void {
    const event: OfflineEvent = { userId, lastSeen: new Date(lastSeen).toISOString() };
    this.realtime.emitToTenant(tenantId, PRESENCE_EVENTS.offline, event);
  }

  private redisFailed(error: unknown): void {
    this.outcomeUnknown = true;
    if (this.redisFailing) return;
    this.redisFailing = true;
    this.logger.warn(`presence is out of sync with Redis (${describe(error)}); retrying every heartbeat`);
  }

  private redisRecovered(): void {
    if (!this.redisFailing || this.outcomeUnknown) return;
    for (const user of this.users.values()) if (user.held !== this.wanted(user)) return;
    this.redisFailing = false;
    this.logger.log('presence back in sync with Redis');
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
