import { describe, expect, it } from '@jest/globals';
import { detectProvider, parseRedisUrl, RedisUrlError } from './redis-url';

/** A password distinctive enough that finding it anywhere in a message can only be a leak. */
const SECRET = 'Zq9xSecretPw7Kk';

/** Calls parseRedisUrl expecting a RedisUrlError, and returns it for message checks. */
function parseError(value: string): RedisUrlError {
  try {
    parseRedisUrl(value);
  } catch (error) {
    expect(error).toBeInstanceOf(RedisUrlError);
    return error as RedisUrlError;
  }
  throw new Error(`parseRedisUrl accepted ${value}`);
}

describe('parseRedisUrl', () => {
  describe('URL parts', () => {
    it('parses host, port, user, password and db of a redis:// URL', () => {
      const endpoint = parseRedisUrl('redis://alice:hunter2@cache.example.com:6380/3');
      expect(endpoint.host).toBe('cache.example.com');
      expect(endpoint.port).toBe(6380);
      expect(endpoint.username).toBe('alice');
      expect(endpoint.password).toBe('hunter2');
      expect(endpoint.db).toBe(3);
      expect(endpoint.tls).toBe(false);
      expect(endpoint.tlsUpgraded).toBe(false);
      expect(endpoint.provider).toBe('other');
    });

    it('defaults the port to 6379 and the db to 0, with no credentials', () => {
      const endpoint = parseRedisUrl('redis://cache.example.com');
      expect(endpoint.port).toBe(6379);
      expect(endpoint.db).toBe(0);
      expect(endpoint.username).toBeUndefined();
      expect(endpoint.password).toBeUndefined();
    });

    it('treats a bare trailing slash as db 0', () => {
      expect(parseRedisUrl('redis://cache.example.com:6379/').db).toBe(0);
    });

    it('turns TLS on for rediss:// without marking it as upgraded', () => {
      const endpoint = parseRedisUrl('rediss://cache.example.com:6390');
      expect(endpoint.tls).toBe(true);
      expect(endpoint.tlsUpgraded).toBe(false);
      expect(endpoint.port).toBe(6390);
    });

    it('URL-decodes the user and the password', () => {
      const endpoint = parseRedisUrl('redis://us%3Aer:p%40ss@cache.example.com:6379');
      expect(endpoint.username).toBe('us:er');
      expect(endpoint.password).toBe('p@ss');
    });

    it('accepts a password without a user', () => {
      const endpoint = parseRedisUrl('redis://:onlypass@cache.example.com');
      expect(endpoint.username).toBeUndefined();
      expect(endpoint.password).toBe('onlypass');
    });

    it('accepts a user without a password', () => {
      const endpoint = parseRedisUrl('redis://bob@cache.example.com');
      expect(endpoint.username).toBe('bob');
      expect(endpoint.password).toBeUndefined();
    });

    it('ignores surrounding white space', () => {
      const endpoint = parseRedisUrl('  redis://cache.example.com:6381/2 \n');
      expect(endpoint.host).toBe('cache.example.com');
      expect(endpoint.port).toBe(6381);
      expect(endpoint.db).toBe(2);
    });
  });

  describe('providers', () => {
    it('upgrades a redis:// Upstash URL to TLS', () => {
      const endpoint = parseRedisUrl(`redis://default:${SECRET}@eu1-fine-bird-12345.upstash.io:6379`);
      expect(endpoint.provider).toBe('upstash');
      expect(endpoint.tls).toBe(true);
      expect(endpoint.tlsUpgraded).toBe(true);
    });

    it('keeps a rediss:// Upstash URL on TLS without calling it upgraded', () => {
      const endpoint = parseRedisUrl(`rediss://default:${SECRET}@eu1-fine-bird-12345.upstash.io:6379`);
      expect(endpoint.provider).toBe('upstash');
      expect(endpoint.tls).toBe(true);
      expect(endpoint.tlsUpgraded).toBe(false);
      expect(endpoint.username).toBe('default');
      expect(endpoint.password).toBe(SECRET);
    });

    it('accepts /0 on Upstash', () => {
      expect(parseRedisUrl('rediss://default:pw@x.upstash.io:6379/0').db).toBe(0);
    });

    it('upgrades a redis:// Render external Key Value URL to TLS', () => {
      const endpoint = parseRedisUrl('redis://red-abc123:pw@oregon-keyvalue.render.com:6379');
      expect(endpoint.provider).toBe('render');
      expect(endpoint.tls).toBe(true);
      expect(endpoint.tlsUpgraded).toBe(true);
    });

    it('keeps a Render internal host (red-xxxx) on plain TCP', () => {
      const endpoint = parseRedisUrl('redis://red-abc123:6379');
      expect(endpoint.provider).toBe('render');
      expect(endpoint.host).toBe('red-abc123');
      expect(endpoint.tls).toBe(false);
      expect(endpoint.tlsUpgraded).toBe(false);
    });

    it('uses TLS on a Render internal host only when asked with rediss://', () => {
      const endpoint = parseRedisUrl('rediss://red-abc123:6379');
      expect(endpoint.provider).toBe('render');
      expect(endpoint.tls).toBe(true);
      expect(endpoint.tlsUpgraded).toBe(false);
    });

    it('recognises Railway private and proxy hosts without forcing TLS', () => {
      const internal = parseRedisUrl('redis://default:pw@redis.railway.internal:6379');
      expect(internal.provider).toBe('railway');
      expect(internal.tls).toBe(false);
      const proxy = parseRedisUrl('redis://default:pw@shuttle.proxy.rlwy.net:41234');
      expect(proxy.provider).toBe('railway');
      expect(proxy.tls).toBe(false);
      expect(proxy.port).toBe(41234);
    });

    it('recognises local hosts, returning an IPv6 host without brackets', () => {
      expect(parseRedisUrl('redis://localhost:6379').provider).toBe('local');
      const loopback = parseRedisUrl('redis://127.0.0.1:6379');
      expect(loopback.provider).toBe('local');
      expect(loopback.host).toBe('127.0.0.1');
      const ipv6 = parseRedisUrl('redis://[::1]:6380');
      expect(ipv6.provider).toBe('local');
      expect(ipv6.host).toBe('::1');
      expect(ipv6.port).toBe(6380);
      expect(ipv6.tls).toBe(false);
    });

    it('calls any other host "other" and leaves TLS to the scheme', () => {
      const plain = parseRedisUrl('redis://redis.example.org:6379');
      expect(plain.provider).toBe('other');
      expect(plain.tls).toBe(false);
      const secure = parseRedisUrl('rediss://redis.example.org:6379');
      expect(secure.provider).toBe('other');
      expect(secure.tls).toBe(true);
      expect(secure.tlsUpgraded).toBe(false);
    });
  });

  describe('redacted', () => {
    it('replaces the password with *** and omits db 0', () => {
      const endpoint = parseRedisUrl(`rediss://default:${SECRET}@x.upstash.io:6379`);
      expect(endpoint.redacted).toBe('rediss://default:***@x.upstash.io:6379');
      expect(endpoint.redacted).not.toContain(SECRET);
    });

    it('shows the effective scheme of an upgraded URL', () => {
      const endpoint = parseRedisUrl(`redis://default:${SECRET}@x.upstash.io`);
      expect(endpoint.redacted).toBe('rediss://default:***@x.upstash.io:6379');
    });

    it('includes a non-zero db and the default port', () => {
      const endpoint = parseRedisUrl(`redis://app:${SECRET}@cache.example.com/5`);
      expect(endpoint.redacted).toBe('redis://app:***@cache.example.com:6379/5');
      expect(endpoint.redacted).not.toContain(SECRET);
    });

    it('never contains a URL-encoded password, decoded or not', () => {
      const endpoint = parseRedisUrl('redis://app:Zq9x%40Secret@cache.example.com:6379');
      expect(endpoint.password).toBe('Zq9x@Secret');
      expect(endpoint.redacted).toBe('redis://app:***@cache.example.com:6379');
      expect(endpoint.redacted).not.toContain('Zq9x');
    });

    it('masks a password given without a user', () => {
      const endpoint = parseRedisUrl(`redis://:${SECRET}@cache.example.com:6379`);
      expect(endpoint.redacted).toBe('redis://:***@cache.example.com:6379');
    });

    it('has no credentials part when the URL has none', () => {
      expect(parseRedisUrl('redis://localhost').redacted).toBe('redis://localhost:6379');
    });
  });

  describe('errors', () => {
    it('rejects an https:// URL as a REST endpoint and points to the rediss:// URL', () => {
      const error = parseError(`https://default:${SECRET}@eu1-fine-bird-12345.upstash.io`);
      expect(error.message).toContain('REST');
      expect(error.message).toContain('rediss://');
      expect(error.message).not.toContain(SECRET);
    });

    it('rejects a value that is not a URL', () => {
      const error = parseError('not a url');
      expect(error.message).toContain('not a valid URL');
      expect(error.message).toContain('redis://');
    });

    it('rejects an unparseable URL without repeating its password', () => {
      const error = parseError(`redis://default:${SECRET}@cache.example.com:notaport`);
      expect(error.message).toContain('not a valid URL');
      expect(error.message).not.toContain(SECRET);
    });

    it('rejects another scheme, naming the schemes it accepts', () => {
      const error = parseError(`memcached://user:${SECRET}@cache.example.com:11211`);
      expect(error.message).toContain('memcached://');
      expect(error.message).toContain('redis://');
      expect(error.message).toContain('rediss://');
      expect(error.message).not.toContain(SECRET);
    });

    it('rejects a non-numeric database path', () => {
      const error = parseError(`redis://user:${SECRET}@cache.example.com:6379/cache`);
      expect(error.message).toContain('/cache');
      expect(error.message).toContain('number');
      expect(error.message).not.toContain(SECRET);
    });

    it('rejects a negative database path', () => {
      const error = parseError('redis://cache.example.com:6379/-1');
      expect(error.message).toContain('number');
    });

    it('rejects a non-zero database on Upstash', () => {
      const error = parseError(`rediss://default:${SECRET}@x.upstash.io:6379/2`);
      expect(error.message).toContain('Upstash has only database 0');
      expect(error.message).not.toContain(SECRET);
    });
  });
});

describe('detectProvider', () => {
  it.each([
    ['eu1-fine-bird-12345.upstash.io', 'upstash', true],
    ['oregon-keyvalue.render.com', 'render', true],
    ['red-abc123', 'render', false],
    ['redis.railway.internal', 'railway', false],
    ['shuttle.proxy.rlwy.net', 'railway', false],
    ['localhost', 'local', false],
    ['127.0.0.1', 'local', false],
    ['::1', 'local', false],
    ['redis.example.org', 'other', false],
    ['10.0.0.5', 'other', false],
  ] as const)('%s -> %s (TLS only: %s)', (host, provider, tlsOnly) => {
    expect(detectProvider(host)).toEqual({ provider, tlsOnly });
  });

  it('ignores the case of the host', () => {
    expect(detectProvider('EU1-Fine-Bird.UPSTASH.IO')).toEqual({ provider: 'upstash', tlsOnly: true });
  });

  it('does not take a look-alike host for a provider', () => {
    expect(detectProvider('upstash.io.example.com').provider).toBe('other');
    expect(detectProvider('notupstash.io').provider).toBe('other');
    expect(detectProvider('red-abc123.example.com').provider).toBe('other');
  });
});

describe('parseRedisUrl regressions', () => {
  it('reports a password with a broken %-escape as a REDIS_URL problem, not a URIError crash', () => {
    expect(() => parseRedisUrl('redis://default:50%off@cache.example.com:6379')).toThrow(RedisUrlError);
    expect(() => parseRedisUrl('redis://default:50%off@cache.example.com:6379')).toThrow(/%-escape/);
  });

  it('does not take a DNS name starting with 127. for a local Redis', () => {
    expect(detectProvider('127.evil.example.com').provider).toBe('other');
  });
});
