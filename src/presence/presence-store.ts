import type { RedisClient } from '../redis';
import { definePresenceScripts, PresenceKeys, PresenceRedis } from './presence.scripts';

/** Users of one tenant that no instance holds any more, to be announced offline. */
export type ReleasedUsers = (tenantId: string, userIds: readonly string[]) => void;

export interface Acquired {
  readonly wentOnline: boolean;
  readonly sinceMs: number;
  /** This instance had been reaped (its lease ran out in a stall or outage) and is now a new incarnation: every user it holds must be acquired again. */
  readonly reincarnated: boolean;
}

/**
 * How long a reaped instance stays fenced out of a tenant. A write of its incarnation sent before it learnt it was
 * reaped may arrive late (a frozen Redis, a slow network); an hour is far past any such delay.
 */
const FENCE_TTL_MS = String(60 * 60 * 1000);

/**
 * The presence model in Redis, for one instance (see presence.scripts.ts for the layout). Each operation is one
 * script call on the registry's slot or on one tenant's, so on a Cluster every call lands on one shard and tenants
 * spread over them. This class keeps the little it must know between calls: its incarnation, the tenants it has
 * registered, and the other instances it may have to reap.
 */
export class PresenceStore {
  private readonly redis: PresenceRedis;
  private readonly keys: PresenceKeys;
  private incarnation = 0;
  /** Not yet in the live set: the first registration adds it; after that, absence means it was reaped. */
  private fresh = true;
  /** Tenants listed under this incarnation in the registry, so a reaper finds its users there. */
  private readonly registered = new Set<string>();
  private leaseValidUntil = 0;
  private others: string[] = [];
  private readonly registering = new Map<string, Promise<boolean>>();
  /** On one Redis, instances of the release before this layout may still run, or have died holding users. */
  private previousReleaseMayRun: boolean;

  constructor(
    redis: RedisClient,
    root: string,
    cluster: boolean,
    private readonly baseId: string,
    readonly leaseMs: number,
  ) {
    this.redis = definePresenceScripts(redis);
    this.keys = new PresenceKeys(root, cluster);
    this.previousReleaseMayRun = !cluster;
  }

  get instanceId(): string {
    return `${this.baseId}.${this.incarnation}`;
  }

  async acquire(tenantId: string, userId: string): Promise<Acquired> {
    let reincarnated = false;
    // A new incarnation registers fresh and is fenced nowhere, so a second attempt fails only if it too was reaped meanwhile.
    for (let attempt = 1; ; attempt += 1) {
      const incarnation = this.incarnation;
      const me = this.instanceId;
      // Registered first: were this instance to die after the tenant's write, a reaper must know to look there.
      if ((await this.ensureRegistered(tenantId)) && this.incarnation === incarnation) {
        const reply = (await this.redis.presenceAcquire(...this.keys.ofInstanceInTenant(me, tenantId), me, userId, String(Date.now()))) as [number, number?, string?];
        if (reply[0] === 1) return { wentOnline: reply[1] === 1, sinceMs: Number(reply[2]), reincarnated };
      }
      if (attempt === 3) throw new Error(`presence: instance ${this.baseId} was reaped ${attempt} times while acquiring a user`);
      reincarnated = this.reincarnate(incarnation) || reincarnated;
    }
  }

  /** Returns whether no instance holds the user any more. */
  async release(tenantId: string, userId: string): Promise<boolean> {
    const instance = this.instanceId;
    return (await this.redis.presenceRelease(this.keys.held(instance, tenantId), this.keys.holders(tenantId), this.keys.online(tenantId), userId)) === 1;
  }

  /**
   * Renews the lease, forgets the registered tenants not in `holding` (those it holds no one in any more), and returns
   * the dead instances this one is to reap (see reap). `reincarnated`: this instance had been reaped; every user must be acquired again.
   * Dead instances of the previous release are reaped here at once, their users told to `released`.
   */
  async heartbeat(holding: ReadonlySet<string>, released: ReleasedUsers): Promise<{ reincarnated: boolean; claims: string[] }> {
    // Forgotten before the call: a user of such a tenant connecting meanwhile registers it again, after this call.
    const forget = [...this.registered].filter((tenantId) => !holding.has(tenantId));
    for (const tenantId of forget) this.registered.delete(tenantId);
    const incarnation = this.incarnation;
    const me = this.instanceId;
    const others = this.others;
    const keys = [this.keys.live, this.keys.lease(me), this.keys.tenants(me), this.keys.reapers];
    for (const other of others) keys.push(this.keys.lease(other), this.keys.tenants(other), this.keys.orphans(other));
    const sent = Date.now();
    const reply = (await this.redis.presenceHeartbeat(
      keys.length,
      ...keys,
      me,
      String(this.leaseMs),
      String(sent),
      this.fresh ? '1' : '0',
      String(forget.length),
      ...forget,
      ...others,
    )) as [0] | [1, string[], string[]];
    if (reply[0] === 0) return { reincarnated: this.reincarnate(incarnation), claims: [] };
    if (this.incarnation !== incarnation) return { reincarnated: false, claims: [] };
    this.registeredAt(sent);
    this.others = reply[1].filter((instance) => instance !== me);
    if (this.previousReleaseMayRun) await this.reapPreviousRelease(released);
    return { reincarnated: false, claims: reply[2] };
  }

  private async reapPreviousRelease(released: ReleasedUsers): Promise<void> {
    const [running, ...flat] = (await this.redis.presenceReapPreviousRelease(this.keys.previousReleaseInstances, this.keys.root)) as [number, ...string[]];
    // Checked again by the next instance to start: one command per process, once the previous release is gone.
    if (running === 0) this.previousReleaseMayRun = false;
    for (let i = 0; i + 1 < flat.length; i += 2) released(flat[i], [flat[i + 1]]);
  }

  /**
   * Releases the users of the dead instances this one claimed, tenant by tenant, telling `released` who went
   * offline. Each tenant's release runs once whoever runs it, so an offline is told exactly once; a tenant that
   * fails stays claimed and is tried again after the next heartbeat.
   */
  async reap(claims: readonly string[], released: ReleasedUsers): Promise<void> {
    const me = this.instanceId;
    for (const dead of claims) {
      const tenants = await this.redis.smembers(this.keys.orphans(dead));
      const done = await this.releaseTenants(dead, tenants, released);
      await this.redis.presenceFinish(this.keys.orphans(dead), this.keys.reapers, dead, me, ...done);
    }
  }

  /**
   * A graceful leave: releases everything this instance holds, then leaves the registry. Should a tenant fail, it
   * stays registered, and another instance reaps the rest once the lease runs out. Returns how many went offline.
   */
  async leave(released: ReleasedUsers): Promise<number> {
    const me = this.instanceId;
    // The registry's list, a superset of what this process remembers registering (a tenant joins it before the memo).
    const tenants = await this.redis.smembers(this.keys.tenants(me));
    let offline = 0;
    const done = await this.releaseTenants(me, tenants, (tenantId, userIds) => {
      offline += userIds.length;
      released(tenantId, userIds);
    });
    if (done.length < tenants.length) throw new Error(`${tenants.length - done.length} of ${tenants.length} tenants could not be released`);
    await this.redis.presenceDeregister(this.keys.live, this.keys.lease(me), this.keys.tenants(me), me);
    return offline;
  }

  /**
   * Holding nobody (every release has returned): leaves the registry; the next acquire registers afresh, as a new
   * incarnation, so that the reply of a heartbeat still in flight cannot mark this one registered.
   */
  async idle(): Promise<void> {
    const me = this.instanceId;
    this.reincarnate(this.incarnation);
    await this.redis.presenceDeregister(this.keys.live, this.keys.lease(me), this.keys.tenants(me), me);
  }

  async online(tenantId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.online(tenantId));
  }

  /** Returns the tenants released; the users that went offline are told as each tenant's reply arrives. */
  private async releaseTenants(instance: string, tenants: readonly string[], released: ReleasedUsers): Promise<string[]> {
    const results = await Promise.allSettled(
      tenants.map(async (tenantId) => {
        const userIds = (await this.redis.presenceReap(...this.keys.ofInstanceInTenant(instance, tenantId), instance, FENCE_TTL_MS)) as string[];
        if (userIds.length > 0) released(tenantId, userIds);
        return tenantId;
      }),
    );
    const failed = results.find((result) => result.status === 'rejected');
    if (failed && results.every((result) => result.status === 'rejected')) throw failed.reason;
    return results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  }

  /** One registration in flight per tenant: a storm of a tenant's users connecting at once sends one. */
  private ensureRegistered(tenantId: string): Promise<boolean> {
    if (this.registered.has(tenantId) && this.leaseSurelyValid()) return Promise.resolve(true);
    let pending = this.registering.get(tenantId);
    if (!pending) {
      const registration = this.register(tenantId).finally(() => {
        if (this.registering.get(tenantId) === registration) this.registering.delete(tenantId);
      });
      this.registering.set(tenantId, registration);
      pending = registration;
    }
    return pending;
  }

  private async register(tenantId: string): Promise<boolean> {
    const sent = Date.now();
    const incarnation = this.incarnation;
    const me = this.instanceId;
    const ok =
      (await this.redis.presenceRegister(
        this.keys.live,
        this.keys.lease(me),
        this.keys.tenants(me),
        me,
        String(this.leaseMs),
        String(sent),
        this.fresh ? '1' : '0',
        tenantId,
      )) === 1;
    // A reply for an incarnation since left behind says nothing about the current one.
    if (ok && this.incarnation === incarnation) {
      this.registeredAt(sent);
      this.registered.add(tenantId);
    }
    return ok;
  }

  private registeredAt(sent: number): void {
    this.fresh = false;
    this.leaseValidUntil = sent + this.leaseMs;
  }

  /**
   * The lease is renewed with every registration; once it may have run out (an instance idle for a while sends no
   * heartbeat), the next acquire renews it first, so a busy neighbour does not reap the users it is taking on.
   */
  private leaseSurelyValid(): boolean {
    return Date.now() < this.leaseValidUntil - this.leaseMs / 4;
  }

  /**
   * Starts over as a new incarnation, registered nowhere: what the old one held is reaped by others (and fenced out),
   * or was released (idle). Once per incarnation, however many calls found it reaped: returns whether this call was the one.
   */
  private reincarnate(from: number): boolean {
    if (this.incarnation !== from) return false;
    this.incarnation += 1;
    this.fresh = true;
    this.registered.clear();
    this.registering.clear();
    this.leaseValidUntil = 0;
    return true;
  }
}
