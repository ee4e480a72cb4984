import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Principal } from '../auth';
import { AppConfig } from '../config';
import { InjectRedis, type RedisClient } from '../redis';
import { OfflineEvent, OnlineEvent, OnlineUser, PRESENCE_EVENTS } from './presence.constants';
import { PresenceStore } from './presence-store';
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
 * instance and their last one leaving (after the offline grace) are one script call each (one more the first time
 * the instance holds someone of that tenant); further tabs only change a local counter. Each instance holds a
 * lease; a heartbeat every third of the TTL refreshes it and claims instances whose lease ran out (SIGKILL, crash),
 * whose users this instance then releases, one script call per tenant they held users in.
 */
@Injectable()
export class PresenceService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Presence');
  private readonly store: PresenceStore;
  private readonly redis: RedisClient;
  private readonly users = new Map<string, LocalUser>();
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatRunning?: Promise<void>;
  private reaping?: Promise<void>;
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
    this.redis = redis;
    const baseId = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.store = new PresenceStore(redis, config.redis.presencePrefix, config.redis.cluster, baseId, 2 * this.heartbeatIntervalMs);
  }

  /** This instance's current incarnation in Redis. */
  get instanceId(): string {
    return this.store.instanceId;
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
    const key = localKey(principal.tenantId, principal.userId);
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
    const key = localKey(principal.tenantId, principal.userId);
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
    const online = await this.store.online(tenantId);
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
    const key = localKey(user.tenantId, user.userId);
    try {
      while (!this.draining && this.users.get(key) === user && user.held !== this.wanted(user)) {
        if (this.wanted(user)) await this.acquire(user);
        else await this.release(user);
      }
      this.redisRecovered();
    } catch (error) {
      // Left as it is: the next heartbeat (or the client's 'ready') syncs it again.
      this.redisFailed(error);
    }
    if (!this.draining && !this.wanted(user) && !user.held && this.users.get(key) === user) {
      this.users.delete(key);
      if (this.users.size === 0) await this.goIdle();
    }
  }

  /**
   * Nobody is held here any more: leave the registry, so that no other instance spends a reap on this one once its
   * lease (no longer renewed while idle) runs out. The next user registers it again.
   */
  private async goIdle(): Promise<void> {
    try {
      await this.store.idle();
    } catch (error) {
      // Still listed: another instance reaps it once the lease runs out, as after a crash, at one script call per tenant.
      this.redisFailed(error);
    }
  }

  private async acquire(user: LocalUser): Promise<void> {
    const { wentOnline, sinceMs, reincarnated } = await this.store.acquire(user.tenantId, user.userId);
    user.held = true;
    if (reincarnated) {
      this.rejoined();
      this.resyncAllExcept(user);
    }
    if (wentOnline) {
      const event: OnlineEvent = { userId: user.userId, since: new Date(sinceMs).toISOString() };
      this.realtime.emitToTenant(user.tenantId, PRESENCE_EVENTS.online, event);
    }
  }

  private async release(user: LocalUser): Promise<void> {
    const wentOffline = await this.store.release(user.tenantId, user.userId);
    user.held = false;
    if (wentOffline) this.emitOffline(user.tenantId, user.userId, user.lastSeen);
  }

  /**
   * Redis may not hold what this instance believes: another instance reaped it after its lease ran out during a
   * stall or an outage (it is a new incarnation now, holding nothing), or a command's outcome is unknown.
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
    let beat: Awaited<ReturnType<PresenceStore['heartbeat']>>;
    try {
      const holding = new Set([...this.users.values()].map((user) => user.tenantId));
      beat = await this.store.heartbeat(holding, (tenantId, userIds) => this.emitReleased(tenantId, userIds));
    } catch (error) {
      this.redisFailed(error);
      return;
    }
    // Not awaited: a lease renewal must never wait for a reap, which may visit many tenants.
    if (beat.claims.length > 0) this.reaping ??= this.reap(beat.claims).finally(() => (this.reaping = undefined));
    if (beat.reincarnated) this.rejoined();
    if (beat.reincarnated || this.outcomeUnknown) {
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

  private async reap(claims: readonly string[]): Promise<void> {
    let offline = 0;
    try {
      await this.store.reap(claims, (tenantId, userIds) => {
        offline += userIds.length;
        this.emitReleased(tenantId, userIds);
      });
      this.logger.log(`reaped ${claims.join(', ')} (lease ran out without a shutdown): ${offline} went offline`);
    } catch (error) {
      // The claims stay this instance's; the next heartbeat hands them back to try again.
      this.redisFailed(error);
    }
  }

  private rejoined(): void {
    this.logger.warn(
      `another instance reaped this one (its lease ran out: a stall or a Redis outage longer than ${this.store.leaseMs} ms); rejoined as ${this.instanceId}; acquiring its users again (${this.users.size})`,
    );
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
    await this.reaping;
    await Promise.all([...this.users.values()].map((user) => user.syncing));
    try {
      const offline = await this.store.leave((tenantId, userIds) => this.emitReleased(tenantId, userIds));
      this.logger.log(`released ${this.users.size} users (${offline} went offline) in ${Date.now() - started} ms`);
    } catch (error) {
      this.logger.warn(
        `could not release this instance's users (${describe(error)}): another instance reaps them within PRESENCE_TTL_SECONDS (${this.config.presence.ttlMs / 1000})`,
      );
    }
    this.users.clear();
  }

  /** Offline events for users no instance holds any more, released by a reap or by this instance's leave. */
  private emitReleased(tenantId: string, userIds: readonly string[]): void {
    const now = Date.now();
    for (const userId of userIds) this.emitOffline(tenantId, userId, this.users.get(localKey(tenantId, userId))?.lastSeen ?? now);
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

/** JSON: ids may contain any character, so no pair of them can spell another's key. */
function localKey(tenantId: string, userId: string): string {
  return JSON.stringify([tenantId, userId]);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
