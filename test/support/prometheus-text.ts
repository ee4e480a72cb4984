import type { AppProcess } from './app-process';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

/**
 * Parses the Prometheus text exposition format (0.0.4) strictly enough to catch a broken exposition:
 * every sample belongs to a family declared by # TYPE, labels are well formed, values are numbers.
 */
export function parsePrometheusText(text: string): Sample[] {
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    const where = `line ${index + 1} "${line}"`;
    if (line === '' || line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (!TYPES.has(type) || families.has(name)) throw new Error(`bad or repeated TYPE at ${where}`);
      families.set(name, type);
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample: ${where}`);
    const [, name, labelText = '', valueText] = match;
    const value = parseValue(valueText);
    if (value === undefined) throw new Error(`bad value at ${where}`);
    if (!familyOf(name, families)) throw new Error(`sample without a # TYPE at ${where}`);
    samples.push({ name, labels: parseLabels(labelText, where), value });
  }
  return samples;
}

/** As Prometheus reads them (Go's ParseFloat): NaN and Inf in any case; prom-client writes "Nan". */
function parseValue(text: string): number | undefined {
  const special: Record<string, number> = { nan: NaN, '+inf': Infinity, inf: Infinity, '-inf': -Infinity };
  if (text.toLowerCase() in special) return special[text.toLowerCase()];
  const value = Number(text);
  return text.trim() === '' || Number.isNaN(value) ? undefined : value;
}

function familyOf(name: string, families: Map<string, string>): string | undefined {
  if (families.has(name)) return name;
  for (const [family, type] of families) {
    if ((SUFFIXES[type] ?? []).some((suffix) => name === family + suffix)) return family;
  }
  return undefined;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (!match || match.index !== start) throw new Error(`bad labels at ${where}`);
    labels[match[1]] = match[2].replace(/\\(.)/g, (_all, char: string) => (char === 'n' ? '\n' : char));
  }
  return labels;
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function total(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** pharmacare_redis_commands_total of one client role, by command. */
export function commandsOf(samples: readonly Sample[], role: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const sample of samples) {
    if (sample.name === 'pharmacare_redis_commands_total' && sample.labels.role === role) counts[sample.labels.command] = sample.value;
  }
  return counts;
}

/** GET /metrics, parsed; throws unless it answers 200. */
export async function scrape(app: AppProcess, token?: string): Promise<Sample[]> {
  const response = await app.request('/metrics', token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return parsePrometheusText(response.text);
}
