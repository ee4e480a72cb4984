import { describe, expect, it } from '@jest/globals';
import { parseRedisUrl, type RedisEndpoint } from '../config';
import { clusterDiagnosis, diagnoseProbeFinding, diagnoseRedisError, HANDSHAKE_TIMEOUT_CODE, isClusterNode, type RedisErrorDiagnosis } from './redis-error';

const SECRET = 'Tq7pLeakCanaryPw42';

const withPassword: RedisEndpoint = parseRedisUrl(`rediss://default:${SECRET}@eu1-fine-bird-12345.upstash.io:6379`);
const withoutPassword: RedisEndpoint = parseRedisUrl('redis://cache.example.com:6380');

/** An error shaped like the ones ioredis and Node sockets emit. */
function redisError(message: string, code?: string): Error & { code?: string } {
  const error: Error & { code?: string } = new Error(message);
  if (code !== undefined) error.code = code;
  return error;
}

/** Like ioredis does, attaches the failed command and its arguments (the AUTH password among them). */
function withAuthCommand(error: Error & { code?: string }): Error & { code?: string; command: { name: string; args: string[] } } {
  return Object.assign(error, { command: { name: 'auth', args: ['default', SECRET] } });
}

function expectNoSecret(diagnosis: RedisErrorDiagnosis): void {
  expect(diagnosis.reason).not.toContain(SECRET);
  expect(diagnosis.fix).not.toContain(SECRET);
}

describe('diagnoseRedisError', () => {
  describe('authentication', () => {
    it('diagnoses WRONGPASS as auth, pointing at REDIS_URL', () => {
      const diagnosis = diagnoseRedisError(redisError('WRONGPASS invalid username-password pair or user is disabled.'), withPassword);
      expect(diagnosis.kind).toBe('auth');
      expect(diagnosis.reason).toContain('WRONGPASS');
      expect(diagnosis.fix).toContain('REDIS_URL');
      expectNoSecret(diagnosis);
    });

    it('diagnoses NOAUTH as auth, saying to add a password', () => {
      const diagnosis = diagnoseRedisError(redisError('NOAUTH Authentication required.'), withoutPassword);
      expect(diagnosis.kind).toBe('auth');
      expect(diagnosis.reason).toContain('NOAUTH');
      expect(diagnosis.fix).toContain('REDIS_URL');
      expect(diagnosis.fix).toMatch(/requires a password/);
    });

    it('gives NOAUTH a different fix from a wrong password', () => {
      const wrong = diagnoseRedisError(redisError('WRONGPASS invalid username-password pair'), withPassword);
      const missing = diagnoseRedisError(redisError('NOAUTH Authentication required.'), withPassword);
      expect(missing.kind).toBe('auth');
      expect(missing.fix).not.toBe(wrong.fix);
      expect(missing.fix).toMatch(/requires a password/);
    });

    it('diagnoses the older "invalid password" reply as auth', () => {
      const diagnosis = diagnoseRedisError(redisError('ERR invalid password'), withPassword);
      expect(diagnosis.kind).toBe('auth');
      expect(diagnosis.fix).toContain('REDIS_URL');
    });

    it('does not leak the password carried on error.command.args', () => {
      const error = withAuthCommand(redisError('WRONGPASS invalid username-password pair or user is disabled.'));
      const diagnosis = diagnoseRedisError(error, withPassword);
      expect(diagnosis.kind).toBe('auth');
      expectNoSecret(diagnosis);
      expect(JSON.stringify(diagnosis)).not.toContain(SECRET);
    });
  });

  describe('TLS', () => {
    it.each(['SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'])('diagnoses %s as tls, pointing at REDIS_TLS_CA_FILE', (code) => {
      const diagnosis = diagnoseRedisError(redisError(`certificate problem (${code})`, code), withPassword);
      expect(diagnosis.kind).toBe('tls');
      expect(diagnosis.reason).toContain(code);
      expect(diagnosis.reason).toContain('eu1-fine-bird-12345.upstash.io');
      expect(diagnosis.fix).toContain('REDIS_TLS_CA_FILE');
      expectNoSecret(diagnosis);
    });

    it('diagnoses ERR_TLS_CERT_ALTNAME_INVALID as tls, about the host name', () => {
      const diagnosis = diagnoseRedisError(redisError("Hostname/IP does not match certificate's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID'), withPassword);
      expect(diagnosis.kind).toBe('tls');
      expect(diagnosis.fix).toContain('host name');
      expect(diagnosis.fix).toContain('eu1-fine-bird-12345.upstash.io');
      expectNoSecret(diagnosis);
    });

    it('does not leak the password carried on error.command.args', () => {
      const error = withAuthCommand(redisError('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'));
      const diagnosis = diagnoseRedisError(error, withPassword);
      expect(diagnosis.kind).toBe('tls');
      expectNoSecret(diagnosis);
    });
  });

  describe('network', () => {
    it('diagnoses ECONNREFUSED as refused, naming host and port', () => {
      const diagnosis = diagnoseRedisError(redisError('connect ECONNREFUSED 10.0.0.5:6380', 'ECONNREFUSED'), withoutPassword);
      expect(diagnosis.kind).toBe('refused');
      expect(diagnosis.reason).toContain('cache.example.com:6380');
      expect(diagnosis.fix).toContain('REDIS_URL');
    });

    it('diagnoses ENOTFOUND as dns, naming the host', () => {
      const diagnosis = diagnoseRedisError(redisError('getaddrinfo ENOTFOUND cache.example.com', 'ENOTFOUND'), withoutPassword);
      expect(diagnosis.kind).toBe('dns');
      expect(diagnosis.reason).toContain('cache.example.com');
    });

    it('diagnoses ETIMEDOUT as timeout', () => {
      const diagnosis = diagnoseRedisError(redisError('connect ETIMEDOUT', 'ETIMEDOUT'), withoutPassword);
      expect(diagnosis.kind).toBe('timeout');
      expect(diagnosis.reason).toContain('cache.example.com:6380');
    });

    it('diagnoses ECONNRESET as closed', () => {
      const diagnosis = diagnoseRedisError(redisError('read ECONNRESET', 'ECONNRESET'), withoutPassword);
      expect(diagnosis.kind).toBe('closed');
      expect(diagnosis.reason).toContain('cache.example.com:6380');
    });

    it.each([
      ['ECONNREFUSED', 'refused'],
      ['ENOTFOUND', 'dns'],
      ['ETIMEDOUT', 'timeout'],
      ['ECONNRESET', 'closed'],
    ] as const)('does not leak the password carried on error.command.args (%s)', (code, kind) => {
      const diagnosis = diagnoseRedisError(withAuthCommand(redisError(`socket error ${code}`, code)), withPassword);
      expect(diagnosis.kind).toBe(kind);
      expectNoSecret(diagnosis);
    });
  });

  describe('database', () => {
    it('diagnoses a refused SELECT as the /db of REDIS_URL, naming the database', () => {
      const endpoint = parseRedisUrl(`redis://default:${SECRET}@127.0.0.1:6390/99`);
      const diagnosis = diagnoseRedisError(redisError('ERR DB index is out of range'), endpoint);
      expect(diagnosis.kind).toBe('database');
      expect(diagnosis.reason).toContain('database 99 does not exist');
      expect(diagnosis.fix).toContain('/db at the end of REDIS_URL');
      expectNoSecret(diagnosis);
    });
  });

  describe('anything else', () => {
    it('diagnoses an unknown error as other, keeping its message', () => {
      const diagnosis = diagnoseRedisError(redisError('ERR an unusual failure of this server'), withoutPassword);
      expect(diagnosis.kind).toBe('other');
      expect(diagnosis.reason).toContain('ERR an unusual failure');
      expect(diagnosis.fix.length).toBeGreaterThan(0);
    });

    it('explains a state Redis refuses in (OOM) in its own words, with the fix', () => {
      const diagnosis = diagnoseRedisError(redisError("OOM command not allowed when used memory > 'maxmemory'."), withoutPassword);
      expect(diagnosis.reason).toMatch(/out of memory/);
      expect(diagnosis.fix).toMatch(/free memory or raise the limit/);
    });

    it('does not leak the password carried on error.command.args', () => {
      const error = withAuthCommand(redisError('ERR something unexpected', 'ESOMETHING'));
      const diagnosis = diagnoseRedisError(error, withPassword);
      expect(diagnosis.kind).toBe('other');
      expectNoSecret(diagnosis);
    });
  });
});

describe('diagnoses found in bad states (issue #15)', () => {
  it('names a full connection table, not "Redis may be restarting"', () => {
    const diagnosis = diagnoseRedisError(redisError('ERR max number of clients reached'), withoutPassword);
    expect(diagnosis.kind).toBe('maxclients');
    expect(diagnosis.reason).toMatch(/max number of clients reached/);
    expect(diagnosis.fix).toMatch(/connection limit/);
    expect(diagnosis.fix).not.toMatch(/restarting/);
    // A cluster node words it differently (its cluster bus links count against maxclients too).
    expect(diagnoseRedisError(redisError('ERR max number of clients + cluster connections reached'), withoutPassword).kind).toBe('maxclients');
  });

  it('tells a silent server (handshake timeout) from an unreachable one', () => {
    const error = redisError('no handshake reply within 10 s', HANDSHAKE_TIMEOUT_CODE);
    const diagnosis = diagnoseRedisError(error, withoutPassword);
    expect(diagnosis.kind).toBe('handshake');
    expect(diagnosis.reason).toMatch(/accepted the connection but sent no Redis reply/);
  });

  it('says a rediss:// URL reached a plain-text Redis once the probe saw one', () => {
    const diagnosis = diagnoseProbeFinding('plaintext', withPassword);
    expect(diagnosis.kind).toBe('plaintext');
    expect(diagnosis.fix).toMatch(/use redis:\/\/ instead of rediss:\/\//);
  });

  it("names a protected-mode server's DENIED, read by the probe, with the fix; any other reply it read is quoted", () => {
    const denied = diagnoseProbeFinding(
      { reply: 'DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.' },
      withoutPassword,
    );
    expect(denied.kind).toBe('denied');
    expect(denied.reason).toMatch(/cache\.example\.com:6380 refused the connection: Redis runs in protected mode/);
    expect(denied.fix).toMatch(/set a password .*requirepass.* in REDIS_URL/);
    const other = diagnoseProbeFinding({ reply: 'ERR something this proxy says' }, withoutPassword);
    expect(other.kind).toBe('other');
    expect(other.reason).toMatch(/ERR something this proxy says/);
  });

  it('recognises a cluster node from INFO cluster', () => {
    expect(isClusterNode('# Cluster\r\ncluster_enabled:1\r\n')).toBe(true);
    expect(isClusterNode('# Cluster\r\ncluster_enabled:0\r\n')).toBe(false);
    expect(clusterDiagnosis(withPassword).reason).toMatch(/is a Redis Cluster node .*but REDIS_CLUSTER is not set/);
    expect(clusterDiagnosis(withPassword).fix).toMatch(/set REDIS_CLUSTER=true/);
  });

  it('names REDIS_CLUSTER when it is set but the server is a single Redis', () => {
    const diagnosis = diagnoseRedisError(new Error('ERR This instance has cluster support disabled'), withPassword);
    expect(diagnosis).toMatchObject({ kind: 'cluster', reason: expect.stringMatching(/REDIS_CLUSTER=true but .* is not a Redis Cluster node/) });
    expect(diagnosis.fix).toMatch(/unset REDIS_CLUSTER/);
  });

  it("diagnoses a Cluster client's 'every node failed' by the last node's error", () => {
    const allFailed = Object.assign(new Error('Failed to refresh slots cache.'), {
      lastNodeError: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7000'), { code: 'ECONNREFUSED' }),
    });
    expect(diagnoseRedisError(allFailed, withPassword).kind).toBe('refused');
  });
});

describe('diagnoseRedisError regressions', () => {
  it('masks a password that the server echoes back in an unknown error', () => {
    const endpoint = parseRedisUrl('redis://:Canary123@cache.example.com:6379');
    const diagnosis = diagnoseRedisError(new Error("ERR unexpected reply to 'AUTH', with args beginning with: 'Canary123' "), endpoint);
    expect(diagnosis.kind).toBe('other');
    expect(diagnosis.reason).not.toContain('Canary123');
    expect(diagnosis.reason).toContain('***');
  });
});
