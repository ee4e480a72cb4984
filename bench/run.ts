import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { BenchResult, markdownTable, Suite } from './support';
import * as suites from './suites';

// `npm run bench` runs from the repository root.
const BENCHMARKS_FILE = join(process.cwd(), 'BENCHMARKS.md');

// Typed as Suite[] so a suite module that lacks name, title or run() fails the type check.
const SUITES: Suite[] = Object.values(suites).sort((a, b) => a.name.localeCompare(b.name));

const HEADER = `# Benchmarks

Written by \`npm run bench\` (builds the app, then runs every suite in \`bench/suites.ts\`);
\`npm run bench -- health\` runs only the named suites and leaves the other sections of this file as they are.
Each suite starts its own redis-server and the built app (\`dist/main.js\`) on free ports on 127.0.0.1,
exactly as the e2e tests do, and never touches the shared Redis on 6379.

How to read the tables: absolute numbers depend on the machine and its load, so compare the **× columns**:
each divides a measurement by a baseline taken in the same run on the same machine (named in the
\`baseline\` column), e.g. GET /health against GET /health/live of the same app process. p50 is the median,
p99 the 99th percentile (nearest rank). Each section records when and where it was measured.
`;

interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: string;
  node: string;
  redis: string;
}

function redisVersion(): Promise<string> {
  return new Promise((resolve) => {
    execFile('redis-server', ['--version'], { timeout: 5_000 }, (error, stdout) => {
      if (error) resolve('not found');
      else resolve(/\bv=(\S+)/.exec(stdout)?.[1] ?? stdout.trim());
    });
  });
}

async function describeMachine(): Promise<Machine> {
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model.trim() ?? 'unknown CPU',
    cores: cpuList.length,
    memoryGiB: (totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    redis: await redisVersion(),
  };
}

function startMarker(name: string): string {
  return `<!-- bench:${name} -->`;
}

function endMarker(name: string): string {
  return `<!-- /bench:${name} -->`;
}

function renderSection(suite: Suite, result: BenchResult, machine: Machine, startedAt: Date, durationMs: number): string {
  const lines = [
    startMarker(suite.name),
    `## ${suite.name}: ${suite.title}`,
    '',
    `- Date: ${startedAt.toISOString()} (took ${(durationMs / 1000).toFixed(0)} s)`,
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB RAM; Node ${machine.node}; redis-server ${machine.redis}`,
    '',
    markdownTable(result.rows),
    '',
  ];
  const checks = result.checks ?? [];
  if (checks.length > 0) {
    lines.push(...checks.map((check) => `- ${check.ok ? 'PASS' : 'FAIL'}: ${check.label}`), '');
  }
  const notes = result.notes ?? [];
  if (notes.length > 0) {
    lines.push('Notes:', '', ...notes.map((note) => `- ${note}`), '');
  }
  lines.push(endMarker(suite.name));
  return lines.join('\n');
}

/** The sections already in BENCHMARKS.md, by suite name, verbatim. */
function existingSections(text: string): Map<string, string> {
  const sections = new Map<string, string>();
  for (const match of text.matchAll(/<!-- bench:([\w-]+) -->[\s\S]*?<!-- \/bench:\1 -->/g)) sections.set(match[1], match[0]);
  return sections;
}

async function writeBenchmarks(fresh: Map<string, string>): Promise<void> {
  let previous = '';
  try {
    previous = await readFile(BENCHMARKS_FILE, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const old = existingSections(previous);
  const ordered: string[] = [];
  for (const suite of SUITES) {
    const section = fresh.get(suite.name) ?? old.get(suite.name);
    if (section !== undefined) ordered.push(section);
  }
  // Sections of suites no longer in the list are kept (at the end) rather than silently dropped.
  for (const [name, section] of old) if (!SUITES.some((suite) => suite.name === name)) ordered.push(section);
  await writeFile(BENCHMARKS_FILE, `${HEADER}\n${ordered.join('\n\n')}\n`);
}

async function main(): Promise<number> {
  const names = new Set(SUITES.map((suite) => suite.name));
  if (names.size !== SUITES.length) throw new Error('two suites share a name');
  const filter = process.argv.slice(2);
  const unknown = filter.filter((arg) => !names.has(arg));
  if (unknown.length > 0) {
    process.stderr.write(`unknown suite(s): ${unknown.join(', ')}. Available: ${[...names].join(', ')}\n`);
    return 2;
  }
  const selected = filter.length > 0 ? SUITES.filter((suite) => filter.includes(suite.name)) : SUITES;
  const machine = await describeMachine();
  process.stdout.write(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}; redis-server ${machine.redis}\n`);

  const fresh = new Map<string, string>();
  let failed = false;
  for (const suite of selected) {
    process.stdout.write(`\n▶ ${suite.name}: ${suite.title}\n`);
    const startedAt = new Date();
    const started = performance.now();
    try {
      const result = await suite.run();
      const section = renderSection(suite, result, machine, startedAt, performance.now() - started);
      fresh.set(suite.name, section);
      process.stdout.write(`${section.split('\n').slice(2, -1).join('\n')}\n`);
      if ((result.checks ?? []).some((check) => !check.ok)) failed = true;
    } catch (error) {
      failed = true;
      process.stderr.write(
        `✗ ${suite.name} failed; its section in BENCHMARKS.md is left as it was:\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
  }

  await writeBenchmarks(fresh);
  process.stdout.write(`\nWrote ${BENCHMARKS_FILE} (${fresh.size} of ${selected.length} suite(s) updated)${failed ? '; a suite or check FAILED (see above)' : ''}\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
