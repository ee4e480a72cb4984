import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_VARIABLES } from './app-config';

// Jest runs from the repository root; ESM specs have no __dirname.
const root = process.cwd();

describe('CONFIG_VARIABLES', () => {
  it('lists every variable loadConfig reads, from the schema and from the raw environment', () => {
    const source = readFileSync(join(root, 'src/config/app-config.ts'), 'utf8');
    const rawReads = [...source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((match) => match[1]);
    expect(rawReads).toEqual(expect.arrayContaining(['REDIS_URL', 'JWT_SECRET', 'NODE_ENV']));
    for (const name of rawReads) expect(CONFIG_VARIABLES).toContain(name);
    expect(CONFIG_VARIABLES).toEqual(expect.arrayContaining(['PORT', 'SHUTDOWN_TIMEOUT_SECONDS', 'QUEUE_DRAIN_DELAY_SECONDS']));
  });
});

describe('.env.example', () => {
  const lines = readFileSync(join(root, '.env.example'), 'utf8').split('\n');
  // A set line (NAME=value) or a commented-out one (# NAME=) for variables without a default.
  const documented = new Set(lines.map((line) => /^(?:# ?)?([A-Z][A-Z0-9_]*)=/.exec(line)?.[1]).filter((name) => name !== undefined));

  it.each([...CONFIG_VARIABLES])('documents %s', (name) => {
    expect(documented.has(name)).toBe(true);
  });

  it('states the default of each variable in the comment above it (or above its group)', () => {
    const assignment = /^(?:# ?)?[A-Z][A-Z0-9_]*=/;
    const withoutDefault = [...documented].filter((name) => {
      let index = lines.findIndex((line) => line.replace(/^# ?/, '').startsWith(`${name}=`)) - 1;
      while (index >= 0 && assignment.test(lines[index])) index -= 1;
      const comment: string[] = [];
      for (; index >= 0 && lines[index].startsWith('#') && !assignment.test(lines[index]); index -= 1) comment.push(lines[index]);
      return !/\bDefaults?:/.test(comment.join('\n'));
    });
    expect(withoutDefault).toEqual([]);
  });
});
