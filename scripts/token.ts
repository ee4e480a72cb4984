/**
 * Prints an access token for local use: npm run token -- --user u1 --tenant t1 [--expires-in 1h]
 * Signs with JWT_SECRET (from the environment or .env), else with the secret the running development server generated.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { JwtService } from '@nestjs/jwt';

const USAGE = 'usage: npm run token -- --user <user id> --tenant <pharmacy id> [--expires-in 1h]';

function secret(): string {
  if (existsSync('.env')) process.loadEnvFile('.env');
  if (process.env.JWT_SECRET) return process.env.JWT_SECRET;
  if (existsSync('.dev/jwt-secret')) return readFileSync('.dev/jwt-secret', 'utf8');
  throw new Error('No JWT_SECRET: set it in the environment or .env, or start the development server first (npm run start:dev), which generates one.');
}

function main(): void {
  const { values } = parseArgs({
    options: { user: { type: 'string' }, tenant: { type: 'string' }, 'expires-in': { type: 'string', default: '1h' } },
  });
  if (!values.user || !values.tenant) throw new Error(USAGE);
  const jwt = new JwtService({ secret: secret() });
  const expiresIn = values['expires-in'] as `${number}${'s' | 'm' | 'h' | 'd'}`;
  process.stdout.write(`${jwt.sign({ sub: values.user, tenant: values.tenant }, { algorithm: 'HS256', expiresIn })}\n`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
