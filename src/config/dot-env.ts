import { existsSync } from 'node:fs';

/** Reads `.env` from the working directory into process.env, as the app and the doctor both do; tests never read it. */
export function loadDotEnv(): void {
  if (process.env.NODE_ENV !== 'test' && existsSync('.env')) process.loadEnvFile('.env');
}
