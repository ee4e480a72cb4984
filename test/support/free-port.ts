import { createServer } from 'node:net';

// The shared development Redis lives here; the harness must never hand it out.
const RESERVED_PORTS = new Set([6379]);

function listenOnEphemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = address !== null && typeof address === 'object' ? address.port : undefined;
      server.close((error) => {
        if (error) reject(error);
        else if (port === undefined) reject(new Error('freePort: server.address() returned no port'));
        else resolve(port);
      });
    });
  });
}

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await listenOnEphemeralPort();
    if (!RESERVED_PORTS.has(port)) return port;
  }
}
