import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../src/config';

/**
 * The rules our Render Blueprints rely on (../shared/FIELD-NOTES.md "Render", render.com Blueprint spec),
 * checked on the files themselves: Render reports a bad Blueprint only when someone syncs it.
 */

interface EnvVar {
  key?: string;
  value?: unknown;
  generateValue?: unknown;
  sync?: unknown;
  fromService?: { type?: string; name?: string; property?: string };
  fromGroup?: string;
}

interface Service {
  type: string;
  name: string;
  runtime?: string;
  region?: string;
  buildCommand?: string;
  startCommand?: string;
  healthCheckPath?: string;
  maxShutdownDelaySeconds?: number;
  ipAllowList?: unknown;
  maxmemoryPolicy?: string;
  envVars?: EnvVar[];
}

interface Blueprint {
  services: Service[];
  envVarGroups?: Array<{ name: string; envVars: EnvVar[] }>;
}

const root = process.cwd();
const UPSTASH = 'render.yaml';
const KEYVALUE = 'render.keyvalue.yaml';
const SOURCES = ['value', 'generateValue', 'sync', 'fromService', 'fromGroup'] as const;
/** We exit by SHUTDOWN_TIMEOUT_SECONDS after SIGTERM; Render's SIGKILL (maxShutdownDelaySeconds) must come later, with room for the exit. */
const SHUTDOWN_MARGIN_SECONDS = 5;
const RENDER_MAX_SHUTDOWN_DELAY_SECONDS = 300;

function load(file: string): Blueprint {
  return parse(readFileSync(join(root, file), 'utf8')) as Blueprint;
}

function appServices(blueprint: Blueprint): Service[] {
  return blueprint.services.filter((service) => service.type === 'web' || service.type === 'worker');
}

function sourcesOf(entry: EnvVar): string[] {
  return SOURCES.filter((source) => entry[source] !== undefined);
}

/** What one service's process sees: its own entries and its groups', with what Render would fill in for the rest. */
function effectiveEnv(blueprint: Blueprint, service: Service): Record<string, string> {
  const env: Record<string, string> = { PORT: '10000' };
  const entries = (service.envVars ?? []).flatMap((entry) =>
    entry.fromGroup === undefined ? [entry] : (blueprint.envVarGroups?.find((group) => group.name === entry.fromGroup)?.envVars ?? []),
  );
  for (const entry of entries) {
    if (entry.key === undefined) continue;
    if (entry.value !== undefined) env[entry.key] = String(entry.value);
    // Render generates a base64-encoded 256-bit value.
    else if (entry.generateValue === true) env[entry.key] = randomBytes(32).toString('base64');
    else if (entry.sync === false) env[entry.key] = placeholderFor(entry.key);
    // Render's internal host of that instance: one per instance, red-<id>.
    else if (entry.fromService?.property === 'connectionString') env[entry.key] = `redis://red-${(entry.fromService.name ?? '').replace(/[^a-z0-9]/g, '')}:6379`;
  }
  return env;
}

/** What an operator pastes into the dashboard for a `sync: false` variable. */
function placeholderFor(key: string): string {
  if (key === 'REDIS_URL') return 'rediss://default:AbCdEf0123456789@fine-cat-12345.upstash.io:6379';
  if (key === 'CORS_ORIGINS') return 'https://app.pharmacare.example';
  throw new Error(`no placeholder for the sync: false variable ${key}: add one that our config accepts`);
}

describe.each([UPSTASH, KEYVALUE])('Render Blueprint %s', (file) => {
  const blueprint = load(file);
  const services = appServices(blueprint);
  const web = services.find((service) => service.type === 'web');
  const worker = services.find((service) => service.type === 'worker');

  it('has one web and one background worker service, built and started the same way', () => {
    expect(services.map((service) => service.type).sort()).toEqual(['web', 'worker']);
    for (const service of services) {
      expect(service.name).toMatch(/^[a-z0-9-]+$/);
      expect(service.runtime).toBe('node');
      expect(service.buildCommand).toMatch(/^npm ci\b.*&& npm run build$/);
      expect(service.startCommand).toBe('node dist/main.js');
    }
    expect(new Set(blueprint.services.map((service) => service.name)).size).toBe(blueprint.services.length);
  });

  it('gives the web service the readiness check and the worker none (Render workers have no health check)', () => {
    expect(web?.healthCheckPath).toBe('/health');
    expect(worker?.healthCheckPath).toBeUndefined();
  });

  it('installs devDependencies at build time although NODE_ENV=production (nest build needs @nestjs/cli)', () => {
    for (const service of services) {
      const env = effectiveEnv(blueprint, service);
      expect(env.NODE_ENV).toBe('production');
      const includesDev = /--include=dev\b/.test(service.buildCommand ?? '') || env.NPM_CONFIG_PRODUCTION === 'false';
      expect(includesDev).toBe(true);
    }
  });

  it('gives every env var exactly one source, and groups only value or generateValue', () => {
    for (const service of blueprint.services) {
      for (const entry of service.envVars ?? []) {
        expect({ service: service.name, entry, sources: sourcesOf(entry) }).toMatchObject({ sources: [expect.any(String)] });
        if (entry.fromGroup !== undefined) {
          expect(entry.key).toBeUndefined();
          expect(blueprint.envVarGroups?.map((group) => group.name)).toContain(entry.fromGroup);
        } else {
          expect(typeof entry.key).toBe('string');
        }
        // YAML turns off/on/yes/no and bare numbers into other types; Render wants strings.
        if (entry.value !== undefined) expect(typeof entry.value).toBe('string');
        if (entry.generateValue !== undefined) expect(entry.generateValue).toBe(true);
        if (entry.sync !== undefined) expect(entry.sync).toBe(false);
      }
    }
    for (const group of blueprint.envVarGroups ?? []) {
      for (const entry of group.envVars) {
        expect({ group: group.name, entry, sources: sourcesOf(entry) }).toMatchObject({ sources: [expect.stringMatching(/^(value|generateValue)$/)] });
      }
    }
  });

  it('sets only variables our configuration knows (a typo would be ignored silently)', () => {
    for (const service of services) {
      for (const key of Object.keys(effectiveEnv(blueprint, service))) expect(CONFIG_VARIABLES).toContain(key);
    }
  });

  it('asks for CORS_ORIGINS on the web service (production refuses to start without it), and not on the worker', () => {
    expect(web?.envVars?.find((entry) => entry.key === 'CORS_ORIGINS')).toEqual({ key: 'CORS_ORIGINS', sync: false });
    expect(worker?.envVars?.some((entry) => entry.key === 'CORS_ORIGINS')).toBe(false);
    expect(loadConfig(effectiveEnv(blueprint, web as Service)).http.corsOrigins).toEqual(['https://app.pharmacare.example']);
  });

  it('shares one generated JWT_SECRET between web and worker through an env var group', () => {
    const groupsWithSecret = (blueprint.envVarGroups ?? []).filter((group) => group.envVars.some((entry) => entry.key === 'JWT_SECRET'));
    expect(groupsWithSecret).toHaveLength(1);
    const [group] = groupsWithSecret;
    expect(group.envVars.find((entry) => entry.key === 'JWT_SECRET')?.generateValue).toBe(true);
    for (const service of services) {
      expect(service.envVars).toContainEqual({ fromGroup: group.name });
      expect(service.envVars?.some((entry) => entry.key === 'JWT_SECRET')).toBe(false);
    }
  });

  it('lets Render stop a service only after our own shutdown deadline has passed', () => {
    for (const service of services) {
      const config = loadConfig(effectiveEnv(blueprint, service));
      const delay = service.maxShutdownDelaySeconds ?? 30;
      expect(Number.isInteger(delay)).toBe(true);
      expect(delay).toBeGreaterThanOrEqual(config.shutdownTimeoutMs / 1000 + SHUTDOWN_MARGIN_SECONDS);
      expect(delay).toBeLessThanOrEqual(RENDER_MAX_SHUTDOWN_DELAY_SECONDS);
    }
  });

  it('passes our own config validation with every required production variable provided', () => {
    for (const service of services) {
      const env = effectiveEnv(blueprint, service);
      const config = loadConfig(env);
      expect(config.nodeEnv).toBe('production');
      expect(config.appRole).toBe(service.type);
      expect(config.redis.endpoint).toBeDefined();
      // loadConfig only requires JWT_SECRET on the web role; the worker gets the same one all the same.
      expect(config.jwt.generated).toBe(false);
      expect(Object.keys(env)).toEqual(expect.arrayContaining(['NODE_ENV', 'APP_ROLE', 'REDIS_URL', 'JWT_SECRET']));
    }
  });
});

describe(`Render Blueprint ${UPSTASH} (Upstash)`, () => {
  const blueprint = load(UPSTASH);

  it('asks for REDIS_URL in the dashboard (sync: false) on both services, and runs no Redis of its own', () => {
    expect(blueprint.services.some((service) => service.type === 'keyvalue')).toBe(false);
    for (const service of appServices(blueprint)) {
      expect(service.envVars?.find((entry) => entry.key === 'REDIS_URL')).toEqual({ key: 'REDIS_URL', sync: false });
    }
  });
});

describe(`Render Blueprint ${KEYVALUE} (Render Key Value)`, () => {
  const blueprint = load(KEYVALUE);
  const keyValues = blueprint.services.filter((service) => service.type === 'keyvalue');

  /** The Key Value instance the variable of every app service is wired to (the same for all of them). */
  const wiredTo = (key: string): Service | undefined => {
    const names = new Set(appServices(blueprint).map((service) => service.envVars?.find((entry) => entry.key === key)?.fromService?.name));
    expect(names.size).toBe(1);
    return keyValues.find((keyValue) => names.has(keyValue.name));
  };

  it('runs two internal-only Key Value instances: one that never evicts (BullMQ would lose jobs), one that evicts for the cache', () => {
    expect(keyValues).toHaveLength(2);
    for (const keyValue of keyValues) expect(keyValue.ipAllowList).toEqual([]);
    expect(wiredTo('REDIS_URL')?.maxmemoryPolicy).toBe('noeviction');
    expect(wiredTo('REDIS_CACHE_URL')?.maxmemoryPolicy).toBe('allkeys-lru');
  });

  it.each(['REDIS_URL', 'REDIS_CACHE_URL'])('wires %s of both services to a connection string, in its region (internal host names are regional)', (key) => {
    const keyValue = wiredTo(key);
    expect(keyValue).toBeDefined();
    for (const service of appServices(blueprint)) {
      expect(service.envVars?.find((entry) => entry.key === key)).toEqual({
        key,
        fromService: { type: 'keyvalue', name: keyValue?.name, property: 'connectionString' },
      });
      expect(service.region).toBe(keyValue?.region);
    }
  });

  it("gives the cache a database of its own, apart from the queue's", () => {
    for (const service of appServices(blueprint)) {
      const config = loadConfig(effectiveEnv(blueprint, service));
      expect(config.redis.cacheEndpoint).toBeDefined();
      expect(config.redis.cacheEndpoint?.host).not.toBe(config.redis.endpoint?.host);
    }
  });

  it('describes the same web and worker services as render.yaml, apart from REDIS_URL and REDIS_CACHE_URL', () => {
    const withoutRedisUrls = (file: Blueprint) => ({
      envVarGroups: file.envVarGroups,
      services: appServices(file).map((service) => ({
        ...service,
        envVars: service.envVars?.filter((entry) => entry.key !== 'REDIS_URL' && entry.key !== 'REDIS_CACHE_URL'),
      })),
    });
    expect(withoutRedisUrls(blueprint)).toEqual(withoutRedisUrls(load(UPSTASH)));
  });
});

describe('Node version for Render', () => {
  it('pins a Node LTS line in .node-version that package.json engines accepts', () => {
    const pinned = readFileSync(join(root, '.node-version'), 'utf8').trim();
    const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(pinned).toMatch(/^(22|24)(\.\d+){0,2}$/);
    expect(engines.split('||').map((range) => range.trim().replace(/^\^/, '').split('.')[0])).toContain(pinned.split('.')[0]);
  });
});
