import { setTimeout as delay } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { io, type Socket } from 'socket.io-client';
import { JWT_SECRET, tokenFor } from './reports-client';

/**
 * Every kind of hostile input RELIABILITY.md's table lists, as requests and sockets, and a driver that sends them
 * round robin to a set of instances. Run in its own process (hostile-attacker.ts) by the fuzz e2e, so the cost of
 * sending 8 MB bodies does not land on the event loop that times the quiet tenant.
 */

const sign = (claims: object, options: jwt.SignOptions = { expiresIn: '5m' }, secret = JWT_SECRET) => jwt.sign(claims, secret, { algorithm: 'HS256', ...options });

// Encoded once: fetch would otherwise encode 8 MB of string on every send.
// Shaped like a report (many small objects): what makes parsing expensive, unlike one long string.
const LINE = '{"sku":"AMOX-500","quantity":2,"unitPrice":3.5,"soldAt":"2026-11-01T10:00:00Z"}';
const EIGHT_MB_JSON = Buffer.from(
  `{"type":"sales-summary","sales":[${Array.from({ length: Math.floor((8 * 1024 * 1024 - 64) / (LINE.length + 1)) }, () => LINE).join(',')}]}`,
);
const NINE_MB_JSON = Buffer.from(`{"padding":"${'x'.repeat(9 * 1024 * 1024)}"}`);
const DEEP_JSON = `{"type":"sales-summary","sales":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;

interface HostileRequest {
  readonly name: string;
  readonly path: string;
  readonly init: RequestInit;
}

const bearer = (token: string) => `Bearer ${token}`;
const json = { 'content-type': 'application/json' };
const attacker = tokenFor('attacker', 'tenant-hostile');

/** Every kind of bad token and body; each must be answered with a 4xx JSON error. */
export const HOSTILE_REQUESTS: HostileRequest[] = [
  ...(
    [
      ['garbage token', 'not.a.jwt'],
      ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u","tenant":"t"}').toString('base64url')}.`],
      ['lone surrogate tenant', sign({ sub: 'u1', tenant: 't\ud800' })],
      ['lone surrogate sub', sign({ sub: '\udfffu', tenant: 't1' })],
      ['control characters', sign({ sub: 'u1\r\nX-Injected: 1', tenant: 't1' })],
      ['10 KB tenant', sign({ sub: 'u1', tenant: 'x'.repeat(10 * 1024) })],
      ['no exp', sign({ sub: 'u1', tenant: 't1' }, {})],
      ['exp 1e308', sign({ sub: 'u1', tenant: 't1', exp: 1e308 }, { noTimestamp: true })],
      [
        'iat in the future',
        sign({ sub: 'u1', tenant: 't1', iat: Math.floor(Date.now() / 1000) + 86_400, exp: Math.floor(Date.now() / 1000) + 90_000 }, { noTimestamp: true }),
      ],
      ['numeric tenant', sign({ sub: 'u1', tenant: 42 })],
      ['another secret', sign({ sub: 'u1', tenant: 't1' }, { expiresIn: '5m' }, 'another-secret-that-is-long-enough-000000')],
      ['HS512', jwt.sign({ sub: 'u1', tenant: 't1' }, JWT_SECRET, { algorithm: 'HS512', expiresIn: '5m' })],
    ] as const
  ).map(([name, token]): HostileRequest => ({ name: `token: ${name}`, path: '/auth/me', init: { headers: { authorization: bearer(token) } } })),
  { name: 'header: Basic', path: '/auth/me', init: { headers: { authorization: 'Basic dTE6cGFzcw==' } } },
  { name: 'header: 8 KB of Bearer', path: '/reports/rpt_00000000000000000000000000000000', init: { headers: { authorization: bearer('a'.repeat(8 * 1024)) } } },
  { name: 'body: 8 MB, no token', path: '/reports', init: { method: 'POST', headers: json, body: EIGHT_MB_JSON } },
  { name: 'body: 8 MB, unknown route', path: '/no/such/route', init: { method: 'POST', headers: json, body: EIGHT_MB_JSON } },
  { name: 'body: 9 MB, authenticated', path: '/reports', init: { method: 'POST', headers: { ...json, authorization: bearer(attacker) }, body: NINE_MB_JSON } },
  {
    name: 'body: malformed JSON',
    path: '/reports',
    init: { method: 'POST', headers: { ...json, authorization: bearer(attacker) }, body: '{"type":"sales-summary","sales":[{' },
  },
  { name: 'body: 20,000 levels deep', path: '/reports', init: { method: 'POST', headers: { ...json, authorization: bearer(attacker) }, body: DEEP_JSON } },
  {
    name: 'body: 1e400 and __proto__',
    path: '/reports',
    init: {
      method: 'POST',
      headers: { ...json, authorization: bearer(attacker) },
      body: '{"__proto__":{"admin":true},"type":"sales-summary","sales":[{"sku":"A","quantity":1e400,"unitPrice":1,"soldAt":"2026-11-01T10:00:00Z"}]}',
    },
  },
  {
    name: 'body: money past the bounds, year 10000',
    path: '/reports',
    init: {
      method: 'POST',
      headers: { ...json, authorization: bearer(attacker) },
      body: JSON.stringify({ type: 'sales-summary', sales: [{ sku: 'A', quantity: 999_999, unitPrice: 999_999.99, soldAt: '9999-12-31T23:59:59-23:59' }] }),
    },
  },
  { name: 'body: text/plain', path: '/reports', init: { method: 'POST', headers: { 'content-type': 'text/plain', authorization: bearer(attacker) }, body: 'hello' } },
  {
    name: 'body: latin1 JSON',
    path: '/reports',
    init: { method: 'POST', headers: { 'content-type': 'application/json; charset=latin1', authorization: bearer(attacker) }, body: '{}' },
  },
  { name: 'path: report id with a lone surrogate', path: '/reports/%ED%A0%80', init: { headers: { authorization: bearer(attacker) } } },
  { name: 'path: /admin/queues without credentials', path: '/admin/queues', init: {} },
];

export type SocketOutcome = 'connect_error' | 'error ack' | 'closed';

interface HostileSocket {
  readonly name: string;
  readonly run: (baseUrl: string) => Promise<SocketOutcome | string>;
}

function openSocket(url: string, token?: string): Socket {
  return io(url, { auth: token === undefined ? {} : { token }, transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5_000 });
}

/**
 * Resolves with what the server did to the socket: refused it (connect_error), answered `act`'s event with an error
 * ack, or closed it. Anything else (connected and left open, an ack without error) is returned as a failure.
 */
function socketOutcome(socket: Socket, act?: (socket: Socket) => Promise<unknown> | void): Promise<SocketOutcome | string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done('no answer within 5 s'), 5_000);
    const done = (outcome: SocketOutcome | string) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.disconnect();
      resolve(outcome);
    };
    socket.once('connect_error', () => done('connect_error'));
    socket.once('disconnect', () => done('closed'));
    socket.once('connect', () => {
      const reply = act?.(socket);
      if (!(reply instanceof Promise)) return;
      reply.then(
        (answer: unknown) => done(typeof answer === 'object' && answer !== null && 'error' in answer ? 'error ack' : `unexpected ack ${JSON.stringify(answer)}`),
        (error: unknown) => done(`no ack: ${String(error)}`),
      );
    });
  });
}

const emitWithAck =
  (event: string, ...args: unknown[]) =>
  (socket: Socket) =>
    socket.timeout(5_000).emitWithAck(event, ...args);

export const HOSTILE_SOCKETS: HostileSocket[] = [
  { name: 'root namespace, no token', run: (url) => socketOutcome(openSocket(url)) },
  { name: 'root namespace, valid token', run: (url) => socketOutcome(openSocket(url, attacker)) },
  { name: '/presence, lone surrogate token', run: (url) => socketOutcome(openSocket(`${url}/presence`, sign({ sub: 'u1', tenant: 't\ud800' }))) },
  { name: '/presence, token without exp', run: (url) => socketOutcome(openSocket(`${url}/presence`, sign({ sub: 'u1', tenant: 't1' }, {}))) },
  { name: '/presence, no token', run: (url) => socketOutcome(openSocket(`${url}/presence`)) },
  { name: 'unknown namespace', run: (url) => socketOutcome(openSocket(`${url}/admin`, attacker)) },
  { name: 'unknown event', run: (url) => socketOutcome(openSocket(`${url}/presence`, attacker), emitWithAck('admin:drop', { all: true })) },
  { name: 'oversize event (2 KB)', run: (url) => socketOutcome(openSocket(`${url}/presence`, attacker), emitWithAck('presence:list', { pad: 'x'.repeat(2048) })) },
  { name: 'bad payload', run: (url) => socketOutcome(openSocket(`${url}/presence`, attacker), emitWithAck('presence:list', [1, 2, 3])) },
  { name: 'frame over 16 KB', run: (url) => socketOutcome(openSocket(`${url}/presence`, attacker), (socket) => void socket.emit('presence:list', 'x'.repeat(20 * 1024))) },
  { name: 'malformed socket.io packet', run: (url) => socketOutcome(openSocket(`${url}/presence`, attacker), (socket) => void socket.io.engine.write('42[not json')) },
];

/** About ten 8 MB bodies a second in all: enough to load main's parse-before-auth (6x its quiet p99), not a flood. */
const BODY_STREAM_PAUSE_MS = 50;

export interface Answer {
  readonly name: string;
  readonly outcome: string;
}

/** Where the round robin over the kinds is: it carries on from one attack phase to the next, so short phases still cover them all. */
let position = 0;

/** Hostile requests and sockets, round robin over the instances, from `attackers` loops (and a body stream) until stopped. */
export function startAttack(baseUrls: readonly string[], attackers: number, pauseMs: number): { stop: () => Promise<Answer[]> } {
  let running = true;
  const answers: Answer[] = [];
  const loop = async () => {
    while (running) {
      const i = position++;
      const all = HOSTILE_REQUESTS.length + HOSTILE_SOCKETS.length;
      const index = i % all;
      // Each pass over the kinds goes to the next instance, so every kind reaches every instance.
      const baseUrl = baseUrls[Math.floor(i / all) % baseUrls.length];
      if (index < HOSTILE_REQUESTS.length) {
        const { name, path, init } = HOSTILE_REQUESTS[index];
        answers.push({ name, outcome: await httpOutcome(baseUrl, path, init) });
      } else {
        const { name, run } = HOSTILE_SOCKETS[index - HOSTILE_REQUESTS.length];
        answers.push({ name: `socket: ${name}`, outcome: await run(baseUrl) });
      }
      await delay(pauseMs);
    }
  };
  // Besides the mix, a steady stream of unauthenticated 8 MB bodies (parsed before auth, each cost 140-230 ms of CPU).
  const bodies = async () => {
    const big = HOSTILE_REQUESTS.filter((request) => request.init.body === EIGHT_MB_JSON);
    for (let i = 0; running; i += 1) {
      const { name, path, init } = big[i % big.length];
      answers.push({ name, outcome: await httpOutcome(baseUrls[i % baseUrls.length], path, init) });
      await delay(BODY_STREAM_PAUSE_MS);
    }
  };
  const loops = [...Array.from({ length: attackers }, () => loop()), bodies()];
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return answers;
    },
  };
}

/** "4xx json" for a 4xx JSON error whose statusCode matches, else what it was. */
async function httpOutcome(baseUrl: string, path: string, init: RequestInit): Promise<string> {
  try {
    const response = await fetch(`${baseUrl}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    const isJson = /application\/json/.test(response.headers.get('content-type') ?? '');
    let statusCode: unknown;
    try {
      statusCode = (JSON.parse(text) as { statusCode?: unknown }).statusCode;
    } catch {
      // not JSON
    }
    if (response.status >= 400 && response.status < 500 && isJson && statusCode === response.status) return '4xx json';
    return `${response.status} ${response.headers.get('content-type')} ${text.slice(0, 80)}`;
  } catch (error) {
    return `no answer: ${error instanceof Error ? error.message : String(error)}`;
  }
}
