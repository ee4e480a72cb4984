import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import type { RedisConfig, RedisEndpoint } from '../config';
import { MAX_CLIENTS_REPLY } from './redis-refusal';

const PROBE_TIMEOUT_MS = 1_000;

/**
 * Why a connection attempt ended without a reply ioredis could read. Some causes show only on a second, raw
 * connection that sends nothing Redis would answer:
 * - Redis at its connection limit writes "-ERR max number of clients reached" on accept and closes (a cluster node:
 *   "max number of clients + cluster connections reached"); ioredis has already sent its handshake by then, so it
 *   sees only ECONNRESET or EPIPE.
 * - a plain-text Redis reached with rediss:// reads the TLS hello as garbage and stays silent, so the TLS
 *   handshake times out; the same port answers a plain-text PING.
 * - an ioredis Cluster reports any failed connection to its seed (refused, a rejected certificate) as "Connection is
 *   closed": the raw connection's own error code says which.
 * - any other error Redis writes before hanging up (a protected-mode server's "-DENIED", reached from another
 *   machine without a password) is the reply itself.
 */
export type ProbeFinding = 'maxclients' | 'plaintext' | { readonly code: string } | { readonly reply: string } | undefined;

/** What Redis writes, unprompted, right after accepting a connection (TLS as the endpoint says). */
function greeting(endpoint: RedisEndpoint, config: RedisConfig): Promise<{ received: string; errorCode?: string }> {
  return read(
    endpoint.tls
      ? tlsConnect({
          host: endpoint.host,
          port: endpoint.port,
          servername: isIP(endpoint.host) ? undefined : endpoint.host,
          ca: config.tlsCa,
          rejectUnauthorized: !config.tlsInsecure,
        })
      : tcpConnect({ host: endpoint.host, port: endpoint.port, family: config.family || undefined }),
    undefined,
  );
}

/** The reply of a plain-text PING on the endpoint's port. */
async function plainTextPing(endpoint: RedisEndpoint, config: RedisConfig): Promise<string> {
  return (await read(tcpConnect({ host: endpoint.host, port: endpoint.port, family: config.family || undefined }), 'PING\r\n')).received;
}

function read(socket: Socket, send: string | undefined): Promise<{ received: string; errorCode?: string }> {
  return new Promise((resolve) => {
    let received = '';
    let errorCode: string | undefined;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ received, errorCode });
    };
    const timer = setTimeout(finish, PROBE_TIMEOUT_MS);
    socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => {
      if (send) socket.write(send);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\n')) finish();
    });
    socket.once('error', (error: Error & { code?: string }) => {
      errorCode = error.code;
      finish();
    });
    socket.once('close', finish);
  });
}

/** Looks for the causes above; undefined when neither shows (the original diagnosis stands). */
export async function probeRedisEndpoint(endpoint: RedisEndpoint, config: RedisConfig, suspect: 'reset' | 'tls-timeout'): Promise<ProbeFinding> {
  if (suspect === 'reset') {
    const { received, errorCode } = await greeting(endpoint, config);
    if (MAX_CLIENTS_REPLY.test(received)) return 'maxclients';
    if (received.startsWith('-')) return { reply: received.slice(1).trim() };
    return errorCode ? { code: errorCode } : undefined;
  }
  const reply = await plainTextPing(endpoint, config);
  return /^[+-]/.test(reply) ? 'plaintext' : undefined;
}
