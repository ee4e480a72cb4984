import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { isClusterClient, type RedisClient } from './command-counter';
import { formatDuration } from '../common/format-duration';
import { withDeadline } from '../common/with-deadline';
import type { RedisRefusal, RedisRefusalKind } from './redis-refusal';
import type { RedisUrlVariable } from '../config';

/** Redis refusing commands for one reason, from the first refusal seen until it accepts them again. */
export interface RedisRefusalEpisode {
  /** The database that refuses. */
  readonly endpoint: RedisUrlVariable;
  readonly kind: RedisRefusalKind;
  readonly reason: string;
  readonly since: number;
  readonly refusals: number;
}

interface OpenEpisode {
  readonly refusal: RedisRefusal;
  readonly since: number;
  lastSeen: number;
  refusals: number;
}

/** How often an open episode is checked; INFO is not billed on Upstash. */
const CHECK_INTERVAL_MS = 2_000;
/**
 * For states INFO does not show (a renamed command, CROSSSLOT): over once nothing was refused for this long. Longer
 * than the worker guard's longest pause, so a refusal that persists keeps one episode open instead of a new one each
 * time the paused worker tries again.
 */
const QUIET_MS = 60_000;

/** The states INFO shows the end of, so an open episode of one of them means Redis refuses still. */
export const INFO_TRACKED_REFUSALS: ReadonlySet<RedisRefusalKind> = new Set(['oom', 'readonly', 'loading']);
const INFO_TIMEOUT_MS = 1_000;

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/**
 * Whether Redis is still in the state, from INFO; undefined when INFO cannot tell. OOM: noeviction refuses writes
 * while used_memory is over maxmemory. READONLY: the server is a replica. LOADING: loading:1. On a Cluster, INFO
 * answers for one node: each master is asked, and the state lasts while any of them is in it.
 */
async function stillIn(kind: RedisRefusalKind, redis: RedisClient): Promise<boolean | undefined> {
  if (!isClusterClient(redis)) return nodeStillIn(kind, redis);
  const states = await Promise.all(redis.nodes('master').map((node) => nodeStillIn(kind, node)));
  return states.includes(true) ? true : states.length > 0 && states.every((state) => state === false) ? false : undefined;
}

async function nodeStillIn(kind: RedisRefusalKind, redis: Redis): Promise<boolean | undefined> {
  const section = kind === 'oom' ? 'memory' : kind === 'readonly' ? 'replication' : kind === 'loading' ? 'persistence' : undefined;
  if (!section) return undefined;
  const info = await withDeadline(redis.info(section), INFO_TIMEOUT_MS, () => '');
  if (kind === 'oom') {
    const max = Number(infoField(info, 'maxmemory'));
    const used = Number(infoField(info, 'used_memory'));
    if (!Number.isFinite(max) || !Number.isFinite(used)) return undefined;
    return max > 0 && used >= max;
  }
  if (kind === 'readonly') {
    const role = infoField(info, 'role');
    return role === undefined ? undefined : role !== 'master';
  }
  const loading = infoField(info, 'loading');
  return loading === undefined ? undefined : loading === '1';
}

/**
 * One log line when a Redis database starts refusing commands for a state (out of memory, read-only replica...),
 * one when it accepts them again, and the open episodes for /health: never a line per refused request.
 */
export class RefusalEpisodes {
  private readonly logger = new Logger('Redis');
  private readonly open = new Map<RedisRefusalKind, OpenEpisode>();
  private timer?: NodeJS.Timeout;
  private checking = false;

  /** `redis`: a client of that database that runs INFO; `essential`: whether requests fail while it refuses, or only fail open. */
  constructor(
    private readonly redis: RedisClient,
    private readonly endpoint: RedisUrlVariable = 'REDIS_URL',
    private readonly essential = true,
    private readonly now: () => number = Date.now,
  ) {}

  note(refusal: RedisRefusal): void {
    const now = this.now();
    const episode = this.open.get(refusal.kind);
    if (episode) {
      episode.lastSeen = now;
      episode.refusals += 1;
      return;
    }
    this.open.set(refusal.kind, { refusal, since: now, lastSeen: now, refusals: 1 });
    const meanwhile = this.essential
      ? 'Requests that need it are answered 503 with Retry-After until it passes.'
      : 'Nothing needs it to answer: its clients fail open until it passes (a database that may evict, maxmemory-policy allkeys-lru, never fills up).';
    this.logger.error(`Redis refuses commands: ${refusal.reason} (${this.endpoint}). ${meanwhile} Fix: ${refusal.fix}.`);
    this.timer ??= setInterval(() => void this.check(), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  episodes(): RedisRefusalEpisode[] {
    return [...this.open.values()].map(({ refusal, since, refusals }) => ({ endpoint: this.endpoint, kind: refusal.kind, reason: refusal.reason, since, refusals }));
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async check(): Promise<void> {
    if (this.checking || this.redis.status !== 'ready') return;
    this.checking = true;
    try {
      for (const [kind, episode] of this.open) {
        const now = this.now();
        const quiet = now - episode.lastSeen >= QUIET_MS;
        const state = await stillIn(kind, this.redis).catch(() => true);
        // A state INFO shows is over once INFO says so and nothing was refused since the last check.
        const over = state === undefined ? quiet : !state && now - episode.lastSeen >= CHECK_INTERVAL_MS;
        if (!over) continue;
        this.open.delete(kind);
        this.logger.log(`Redis accepts commands again: ${kind} over after ${formatDuration(now - episode.since)} (${episode.refusals} refused, ${this.endpoint})`);
      }
    } finally {
      this.checking = false;
    }
    if (this.open.size === 0) this.stop();
  }
}
