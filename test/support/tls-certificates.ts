import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface TestCertificates {
  caFile: string;
  caPem: string;
  certFile: string;
  keyFile: string;
  /** A CA that did not sign certFile, for "wrong CA" tests. */
  otherCaFile: string;
}

const OPENSSL = '/usr/bin/openssl';

// Our own config so the result does not depend on the distribution's openssl.cnf.
const REQ_CONFIG = `
[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

const SERVER_EXTENSIONS = `
[server_cert]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync(OPENSSL, args, { timeout: 10_000 });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`openssl not found at ${OPENSSL}: install it (apt-get install openssl)`, { cause: error });
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`, { cause: error });
  }
}

async function createCa(configFile: string, keyFile: string, certFile: string, commonName: string): Promise<void> {
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-noenc',
    '-sha256',
    '-days',
    '1',
    '-config',
    configFile,
    '-extensions',
    'v3_ca',
    '-subj',
    `/CN=${commonName}`,
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
}

export async function generateTestCertificates(dir: string): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true });
  const path = (name: string): string => join(dir, name);
  const configFile = path('openssl.cnf');
  const extFile = path('server.ext');
  await Promise.all([writeFile(configFile, REQ_CONFIG), writeFile(extFile, SERVER_EXTENSIONS)]);

  // Key generation dominates the cost, so the three keys are made in parallel.
  await Promise.all([
    createCa(configFile, path('ca.key'), path('ca.crt'), 'PharmaCare Test CA'),
    createCa(configFile, path('other-ca.key'), path('other-ca.crt'), 'PharmaCare Unrelated Test CA'),
    openssl([
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-noenc',
      '-sha256',
      '-config',
      configFile,
      '-subj',
      '/CN=localhost',
      '-keyout',
      path('server.key'),
      '-out',
      path('server.csr'),
    ]),
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    path('server.csr'),
    '-CA',
    path('ca.crt'),
    '-CAkey',
    path('ca.key'),
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '1',
    '-sha256',
    '-extfile',
    extFile,
    '-extensions',
    'server_cert',
    '-out',
    path('server.crt'),
  ]);

  return {
    caFile: path('ca.crt'),
    caPem: await readFile(path('ca.crt'), 'utf8'),
    certFile: path('server.crt'),
    keyFile: path('server.key'),
    otherCaFile: path('other-ca.crt'),
  };
}
