import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import type { RedisConfig, RedisEndpoint } from '../config';
import { diagnoseProbeFinding, type RedisErrorDiagnosis } from './redis-error';

const PROBE_TIMEOUT_MS = 1_000;

/**
 * Why a connection attempt ended without a reply ioredis could read. Some causes show only on a second, raw
 * connection that sends nothing Redis would answer:
 * - an error Redis writes on accept before it hangs up: at its connection limit "-ERR max number of clients reached"
 *   (a cluster node: "max number of clients + cluster connections reached"), in protected mode "-DENIED" to a
 *   connection from another machine. ioredis has already sent its handshake by then, so it sees only ECONNRESET or
 *   EPIPE (or, through a proxy, takes the error for CLIENT SETNAME's reply and ignores it).
 * - a plain-text Redis reached with rediss:// reads the TLS hello as garbage and stays silent, so the TLS
 *   handshake times out; the same port answers a plain-text PING.
 * - an ioredis Cluster reports any failed connection to its seed (refused, a rejected certificate) as "Connection is
 *   closed": the raw connection's own error code says which.
 */
export type ProbeFinding = 'plaintext' | { readonly code: string } | { readonly reply: string } | undefined;

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

/** Looks for the causes above; undefined when none shows (the original diagnosis stands). */
async function probeRedisEndpoint(endpoint: RedisEndpoint, config: RedisConfig, suspect: 'reset' | 'tls-timeout'): Promise<ProbeFinding> {
  if (suspect === 'reset') {
    const { received, errorCode } = await greeting(endpoint, config);
    if (received.startsWith('-')) return { reply: received.slice(1).trim() };
    return errorCode ? { code: errorCode } : undefined;
  }
  const reply = await plainTextPing(endpoint, config);
  return /^[+-]/.test(reply) ? 'plaintext' : undefined;
}

/** What a diagnosis may hide (see ProbeFinding): a reset or a closed connection, or a TLS handshake that timed out. */
function suspectOf(diagnosis: RedisErrorDiagnosis, endpoint: RedisEndpoint): 'reset' | 'tls-timeout' | undefined {
  if (diagnosis.kind === 'closed') return 'reset';
  return diagnosis.kind === 'timeout' && endpoint.tls ? 'tls-timeout' : undefined;
}

/** Whether closerDiagnosis would take a raw look: the diagnosis may hide its cause. */
export function mayHideCause(diagnosis: RedisErrorDiagnosis, endpoint: RedisEndpoint): boolean {
  return suspectOf(diagnosis, endpoint) !== undefined;
}

/** The diagnosis a raw look at the server makes closer; `diagnosis` itself when it hides nothing or the look finds nothing. */
export async function closerDiagnosis(diagnosis: RedisErrorDiagnosis, endpoint: RedisEndpoint, config: RedisConfig): Promise<RedisErrorDiagnosis> {
  const suspect = suspectOf(diagnosis, endpoint);
  if (!suspect) return diagnosis;
  const finding = await probeRedisEndpoint(endpoint, config, suspect).catch(() => undefined);
  return finding ? diagnoseProbeFinding(finding, endpoint) : diagnosis;
}
