import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { withDeadline } from '../common/with-deadline';
import { AppConfig } from '../config';
import { REDIS_ROLE_SPECS, RedisConnections, RedisRole } from '../redis';
import { HealthIndicators } from './health-indicators.registry';

export const PING_TIMEOUT_MS = 1_000;

type PingOutcome = { ok: true; latencyMs: number; mastersUp: number; shardsDown: string[]; clusterState?: string } | { ok: false; reason: string };

/** `silent`: the deadline passed on a connection that stayed open (frozen, or its packets dropped), not an error. */
type PingResult = { ok: true; latencyMs: number } | { ok: false; reason: string; silent?: true };

const NO_REPLY: PingResult = { ok: false, reason: `no PING reply within ${PING_TIMEOUT_MS} ms`, silent: true };

async function pingWithDeadline(ping: () => Promise<unknown>): Promise<PingResult> {
  const started = performance.now();
  try {
    const replied = await withDeadline(
      ping().then(() => true),
      PING_TIMEOUT_MS,
      () => false,
    );
    return replied ? { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 } : NO_REPLY;
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * One indicator per Redis client, `redis:<role>`, whose details name its URL variable (`endpoint`). A client that
 * has been down for less than the grace period is `degraded` (still 200), so Render neither pulls nor restarts an
 * instance over a blip; one the process works without (the cache's, on REDIS_CACHE_URL) stays degraded.
 */
@Injectable()
export class RedisHealthIndicator implements OnModuleInit {
  /** When PING on a client that ioredis still calls ready first failed: a frozen or half-open server. */
  private readonly unresponsiveSince = new Map<RedisRole, number>();
  /**
   * Servers connected but silent (a PING past its deadline), by address, since when. Nothing else logs this state:
   * no connection drops, commands just time out. Once per server, whichever role saw it first.
   */
  private readonly silentSince = new Map<string, number>();
  private readonly logger = new Logger('Redis');

  constructor(
    private readonly connections: RedisConnections,
    private readonly indicator: HealthIndicatorService,
    private readonly registry: HealthIndicators,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.registry.register(...this.connections.clientRoles().map((role) => () => this.check(role)));
  }

  async check(role: RedisRole): Promise<HealthIndicatorResult> {
    const session = this.indicator.check(`redis:${role}`);
    const status = this.connections.status(role);
    const { endpoint } = status;
    const { essential, tuning } = REDIS_ROLE_SPECS[role];
    const now = Date.now();
    let downSince = status.downSince;
    let reason = status.lastError?.reason;

    // Not connecting at all (a Redis Cluster node): nothing will change until its URL does.
    if (status.state === 'refused') {
      const details = { endpoint, state: 'refused', ...(reason ? { reason } : {}) };
      return essential ? session.down(details) : session.degraded(details);
    }

    if (status.state === 'ready') {
      const ping = await this.ping(role, endpoint);
      if (ping.ok) {
        this.unresponsiveSince.delete(role);
        // A Cluster with a master down stays ready, but the keys of that shard are unreachable until a failover.
        if (ping.shardsDown.length > 0 || (ping.clusterState !== undefined && ping.clusterState !== 'ok')) {
          return session.degraded({
            endpoint,
            state: 'cluster-degraded',
            latencyMs: ping.latencyMs,
            clusterState: ping.clusterState,
            mastersUp: ping.mastersUp,
            shardsDown: ping.shardsDown,
            reason: ping.shardsDown.length > 0 ? `no PING reply from master ${ping.shardsDown.join(', ')}` : `CLUSTER INFO says cluster_state:${ping.clusterState}`,
          });
        }
        // Reachable but refusing commands for a state (out of memory, read-only replica): degraded, with why,
        // on the command client of the database that refuses.
        const refusals = tuning === 'command' ? this.connections.refusals(role) : [];
        if (refusals.length > 0) {
          return session.degraded({
            endpoint,
            state: 'refusing',
            latencyMs: ping.latencyMs,
            refusing: refusals.map((refusal) => refusal.kind),
            reason: refusals.map((refusal) => refusal.reason).join('; '),
            refusingForMs: now - Math.min(...refusals.map((refusal) => refusal.since)),
          });
        }
        return session.up({
          endpoint,
          state: 'ready',
          latencyMs: ping.latencyMs,
          ...(ping.clusterState ? { clusterState: ping.clusterState, mastersUp: ping.mastersUp } : {}),
        });
      }
      downSince = this.unresponsiveSince.get(role) ?? now;
      this.unresponsiveSince.set(role, downSince);
      reason = ping.reason;
    }

    const details = {
      endpoint,
      state: status.state === 'ready' ? 'unresponsive' : status.state,
      downForMs: now - (downSince ?? now),
      reconnectAttempts: status.reconnectAttempts,
      ...(reason ? { reason } : {}),
    };
    return !essential || details.downForMs < this.config.health.redisGraceMs ? session.degraded(details) : session.down(details);
  }

  /**
   * PING with its own deadline: never trusts the client's queue to give up in time. On a Cluster every master is
   * PINGed, in parallel, and one that answers tells cluster_state; ok while at least one master answers.
   */
  private async ping(role: RedisRole, endpoint: string): Promise<PingOutcome> {
    const masters = this.connections.masters(role);
    const outcomes = await Promise.all(
      masters.map(({ client }): Promise<PingResult> | PingResult => (client ? pingWithDeadline(() => client.ping()) : { ok: false, reason: 'no connection to this master' })),
    );
    masters.forEach(({ node }, index) => this.noteSilence(node === 'server' ? `of ${endpoint}` : `master ${node} (${endpoint})`, outcomes[index]));
    const answered = outcomes.flatMap((outcome, index) => {
      const client = masters[index].client;
      return outcome.ok && client ? [{ ...outcome, client }] : [];
    });
    // Nothing else reconnects a role's client to a master that came back if no command of the role goes there.
    if (masters.some(({ client }) => !client)) this.connections.refreshSlots(role);
    const failed = outcomes.find((outcome) => !outcome.ok);
    if (answered.length === 0) return { ok: false, reason: failed && !failed.ok ? failed.reason : 'no master known' };
    const latencyMs = Math.max(...answered.map((outcome) => outcome.latencyMs));
    if (!this.config.redis.cluster) return { ok: true, latencyMs, shardsDown: [], mastersUp: answered.length };
    const info = await withDeadline(answered[0].client.cluster('INFO'), PING_TIMEOUT_MS, () => '').catch(() => '');
    return {
      ok: true,
      latencyMs,
      mastersUp: answered.length,
      shardsDown: masters.filter((_master, index) => !outcomes[index].ok).map(({ node }) => node),
      clusterState: /^cluster_state:(\w+)/m.exec(info)?.[1] ?? 'unknown',
    };
  }

  private noteSilence(server: string, outcome: PingResult): void {
    const since = this.silentSince.get(server);
    if (outcome.ok && since !== undefined) {
      this.silentSince.delete(server);
      this.logger.log(`Redis ${server} answers again, after ${Date.now() - since} ms without a reply`);
    } else if (!outcome.ok && outcome.silent && since === undefined) {
      this.silentSince.set(server, Date.now());
      this.logger.warn(
        `Redis ${server} is connected but silent: ${outcome.reason} (frozen, overloaded, or the network drops its packets); commands for it time out and answer 503 until it answers`,
      );
    }
  }
}
