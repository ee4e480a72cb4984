import { describe, expect, it } from '@jest/globals';
import { classifyRedisRefusal, redisRoleOf, RedisRoleError, redisUnavailability } from './redis-refusal';

/** Redis's replies as they reach callers (ioredis ReplyError messages, BullMQ appending the script). */
const REPLIES: Array<[string, string]> = [
  ["OOM command not allowed when used memory > 'maxmemory'. script: d96ca626f1ea141b44a856b312fc636d99aa9ea9, on @user_script:217.", 'oom'],
  ['ERR max number of clients reached', 'maxclients'],
  // A cluster node counts its cluster bus links against maxclients, and says so.
  ['ERR max number of clients + cluster connections reached', 'maxclients'],
  ["READONLY You can't write against a read only replica.", 'readonly'],
  ['LOADING Redis is loading the dataset in memory', 'loading'],
  ['CLUSTERDOWN The cluster is down', 'clusterdown'],
  ['CLUSTERDOWN Hash slot not served', 'clusterdown'],
  ['TRYAGAIN Multiple keys request during rehashing of slot', 'tryagain'],
  ["CROSSSLOT Keys in request don't hash to the same slot", 'crossslot'],
  ['MOVED 3999 127.0.0.1:6381', 'moved'],
  ['NOSCRIPT No matching script. Please use EVAL.', 'noscript'],
  ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.', 'busy'],
  ['MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.', 'misconf'],
  ['MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.', 'masterdown'],
  ["NOPERM this user has no permissions to run the 'evalsha' command", 'noperm'],
  ["ERR unknown command 'EVALSHA', with args beginning with: ", 'unknown-command'],
];

describe('classifyRedisRefusal', () => {
  it.each(REPLIES)('classifies %s', (message, kind) => {
    expect(classifyRedisRefusal(new Error(message))?.kind).toBe(kind);
  });

  it("never repeats Redis's raw text (script hashes, keys) to users", () => {
    for (const [message] of REPLIES) {
      const refusal = classifyRedisRefusal(new Error(message));
      expect(refusal?.userMessage).not.toContain(message.split(' ').slice(1, 4).join(' '));
      expect(refusal?.userMessage).not.toMatch(/script|@user_script|[0-9a-f]{40}/);
    }
  });

  it('tells users Redis is full on OOM, and to come back later than for a blip', () => {
    const refusal = classifyRedisRefusal(new Error("OOM command not allowed when used memory > 'maxmemory'."));
    expect(refusal?.userMessage).toMatch(/^Redis is full/);
    expect(refusal?.retryAfterSeconds).toBeGreaterThan(5);
  });

  it('recognises a refusal wrapped by another layer (error.cause), as a store reporting a failed write would', () => {
    const wrapped = new Error('could not store the result', { cause: new Error("OOM command not allowed when used memory > 'maxmemory'.") });
    expect(classifyRedisRefusal(wrapped)?.kind).toBe('oom');
  });

  it('leaves other errors alone: a bug or a bad request is not a refusal', () => {
    expect(classifyRedisRefusal(new Error("ERR wrong number of arguments for 'set' command"))).toBeUndefined();
    expect(classifyRedisRefusal(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBeUndefined();
    expect(classifyRedisRefusal(undefined)).toBeUndefined();
  });
});

describe('redisUnavailability', () => {
  it('calls timeouts and closed connections "unreachable", with the usual message', () => {
    for (const message of [
      'Command timed out',
      'Connection is closed.',
      "Stream isn't writeable and enableOfflineQueue options is false",
      'connect ECONNREFUSED 127.0.0.1:6379',
      // An ioredis Cluster: no node reached, a failover outlasting the redirections, a command role without offline queue.
      'Failed to refresh slots cache.',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      "Cluster isn't ready and enableOfflineQueue options is false",
    ]) {
      expect(redisUnavailability(new Error(message))).toMatchObject({ kind: 'unreachable', userMessage: expect.stringMatching(/Redis is unreachable/) });
    }
  });

  it('tells clients to retry a cluster failover or resharding within seconds, not half a minute', () => {
    for (const message of ['CLUSTERDOWN The cluster is down', 'TRYAGAIN Multiple keys request during rehashing of slot']) {
      const refusal = redisUnavailability(new Error(message));
      expect(refusal?.kind).not.toBe('unreachable');
      expect(refusal?.retryAfterSeconds).toBeLessThanOrEqual(5);
      expect(refusal && 'fix' in refusal ? refusal.fix : '').toMatch(/failover/);
    }
  });

  it('returns the refusal for a state, and undefined for anything else', () => {
    expect(redisUnavailability(new Error("READONLY You can't write against a read only replica."))?.kind).toBe('readonly');
    expect(redisUnavailability(new Error('report 1 is completed but has no result'))).toBeUndefined();
  });
});

describe('redisRoleOf', () => {
  it('finds the role a RedisRoleError names, through the errors that wrap it, and none elsewhere', () => {
    const refused = new Error("OOM command not allowed when used memory > 'maxmemory'.");
    const cacheError = new RedisRoleError('not storing r1: Redis refused it', 'cache', { cause: refused });
    expect(redisRoleOf(cacheError)).toBe('cache');
    expect(redisRoleOf(new Error('job failed', { cause: cacheError }))).toBe('cache');
    expect(redisRoleOf(refused)).toBeUndefined();
    expect(redisRoleOf('not an error')).toBeUndefined();
    expect(redisUnavailability(cacheError)?.kind).toBe('oom');
  });
});
