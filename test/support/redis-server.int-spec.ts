import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, type ExecFileException } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { freePort } from './free-port';
import { RedisServer, stopAllRedisServers } from './redis-server';
import { generateTestCertificates, type TestCertificates } from './tls-certificates';

interface CliResult {
  error: ExecFileException | null;
  stdout: string;
  stderr: string;
}

function redisCli(args: string[], timeoutMs = 5_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ error, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves with whether the TLS handshake to host succeeded with the given CA and hostname check. */
function tlsHandshake(host: string, port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, ca, servername: host === 'localhost' ? host : undefined }, () => {
      socket.end();
      resolve(socket.authorized);
    });
    socket.once('error', () => resolve(false));
  });
}

afterAll(async () => {
  await stopAllRedisServers();
});

describe('freePort', () => {
  it('returns a usable port that is not the shared Redis port', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(6379);
  });
});

describe('RedisServer (plaintext)', () => {
  it('starts, answers PING and stops (idempotently)', async () => {
    const server = await RedisServer.start();
    try {
      expect(server.port).not.toBe(6379);
      expect(server.url()).toBe(`redis://127.0.0.1:${server.port}`);
      expect(await server.command('PING')).toBe('PONG');
      expect(await server.command('CONFIG', 'GET', 'maxmemory-policy')).toBe('maxmemory-policy\nnoeviction');
      const pid = server.pid;
      expect(pid).toBeDefined();
      await server.stop();
      expect(server.pid).toBeUndefined();
      expect(processExists(pid as number)).toBe(false);
      await server.stop();
      await server.kill();
    } finally {
      await server.kill();
    }
  });

  it('refuses port 6379', async () => {
    await expect(RedisServer.start({ port: 6379 })).rejects.toThrow(/6379/);
  });

  it('kill() then stop() is harmless', async () => {
    const server = await RedisServer.start();
    await server.kill();
    expect(server.pid).toBeUndefined();
    await server.stop();
  });

  it('rejects with the captured output when the port is taken', async () => {
    const server = await RedisServer.start();
    try {
      await expect(RedisServer.start({ port: server.port })).rejects.toThrow(/Address already in use/);
    } finally {
      await server.stop();
    }
  });

  it('restarts on the same port with an empty dataset', async () => {
    const server = await RedisServer.start();
    try {
      const { port } = server;
      const firstPid = server.pid;
      await server.command('SET', 'k', 'v');
      await server.restart();
      expect(server.port).toBe(port);
      expect(server.pid).toBeDefined();
      expect(server.pid).not.toBe(firstPid);
      expect(await server.command('PING')).toBe('PONG');
      expect(await server.command('DBSIZE')).toBe('0');
    } finally {
      await server.stop();
    }
  });

  it('restarts after kill() too', async () => {
    const server = await RedisServer.start();
    try {
      await server.kill();
      await server.restart();
      expect(await server.command('PING')).toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('pause() makes commands hang, resume() makes them answer again', async () => {
    const server = await RedisServer.start();
    try {
      server.pause();
      const hung = await redisCli([...server.cliArgs(), 'PING'], 1_000);
      expect(hung.error?.killed).toBe(true);
      expect(hung.stdout).toBe('');
      server.resume();
      expect(await server.command('PING')).toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('stop() works on a paused server', async () => {
    const server = await RedisServer.start();
    server.pause();
    await server.stop();
    expect(server.pid).toBeUndefined();
  });

  it('clientList() names the other clients but not its own probe', async () => {
    const server = await RedisServer.start();
    try {
      expect(await server.clientList()).toEqual([]);
      // A blocked redis-cli stays connected while we look.
      const blocked = redisCli([...server.cliArgs(), 'BLPOP', 'nothing', '0.5']);
      let names: string[] = [];
      for (let i = 0; i < 50 && names.length === 0; i++) names = await server.clientList();
      expect(names).toEqual(['']);
      await blocked;
    } finally {
      await server.stop();
    }
  });
});

describe('RedisServer (auth)', () => {
  it('password: rejects redis-cli without it (NOAUTH) and accepts it with it', async () => {
    const server = await RedisServer.start({ password: 's3cret/with:chars' });
    try {
      const anonymous = await redisCli([...server.cliArgs({ noAuth: true }), 'PING']);
      expect(anonymous.stdout).toMatch(/^NOAUTH/);
      const wrong = await redisCli([...server.cliArgs({ password: 'nope' }), 'PING']);
      expect(wrong.stderr).toMatch(/WRONGPASS/);
      expect(await server.command('PING')).toBe('PONG');
      expect(server.url()).toBe(`redis://default:s3cret%2Fwith%3Achars@127.0.0.1:${server.port}`);
      expect(server.url({ db: 2 })).toMatch(/@127\.0\.0\.1:\d+\/2$/);
    } finally {
      await server.stop();
    }
  });

  it('ACL user: works with --user', async () => {
    const server = await RedisServer.start({ password: 'admin', aclUser: { name: 'app', password: 'app-pass' } });
    try {
      const asApp = await redisCli([...server.cliArgs({ user: 'app' }), 'ACL', 'WHOAMI']);
      expect(asApp.stdout).toBe('app');
      const asAppRaw = await redisCli([
        '-h', '127.0.0.1', '-p', String(server.port), '--user', 'app', '--pass', 'app-pass', '--no-auth-warning',
        'SET', 'x', '1',
      ]);
      expect(asAppRaw.stdout).toBe('OK');
      const wrong = await redisCli([...server.cliArgs({ user: 'app', password: 'bad' }), 'PING']);
      expect(wrong.stderr).toMatch(/WRONGPASS/);
      expect(server.url({ user: 'app' })).toBe(`redis://app:app-pass@127.0.0.1:${server.port}`);
    } finally {
      await server.stop();
    }
  });
});

describe('RedisServer (TLS)', () => {
  let certDir: string;
  let certs: TestCertificates;

  beforeAll(async () => {
    certDir = await mkdtemp(join(tmpdir(), 'pharmacare-certs-'));
    const started = Date.now();
    certs = await generateTestCertificates(certDir);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  afterAll(async () => {
    await rm(certDir, { recursive: true, force: true });
  });

  it('accepts redis-cli with the right CA and refuses it with another CA', async () => {
    const server = await RedisServer.start({ tls: certs, password: 'tls-pass' });
    try {
      expect(server.url()).toBe(`rediss://default:tls-pass@localhost:${server.port}`);
      expect(await server.command('PING')).toBe('PONG');
      const wrongCa = await redisCli([...server.cliArgs({ caFile: certs.otherCaFile }), 'PING']);
      expect(wrongCa.error).not.toBeNull();
      expect(`${wrongCa.stdout}\n${wrongCa.stderr}`).toMatch(/certificate verify failed/);
      const plaintext = await redisCli(['-h', '127.0.0.1', '-p', String(server.port), 'PING'], 2_000);
      expect(plaintext.stdout).not.toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('serves a certificate Node accepts for localhost and 127.0.0.1, and only with the right CA', async () => {
    const server = await RedisServer.start({ tls: certs });
    try {
      expect(certs.caPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(await tlsHandshake('localhost', server.port, certs.caPem)).toBe(true);
      expect(await tlsHandshake('127.0.0.1', server.port, certs.caPem)).toBe(true);
      const otherCa = await readFile(certs.otherCaFile, 'utf8');
      expect(await tlsHandshake('localhost', server.port, otherCa)).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it('restarts on the same TLS port', async () => {
    const server = await RedisServer.start({ tls: certs });
    try {
      const { port } = server;
      await server.restart();
      expect(server.port).toBe(port);
      expect(await server.command('PING')).toBe('PONG');
    } finally {
      await server.stop();
    }
  });
});
