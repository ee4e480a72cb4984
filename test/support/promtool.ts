import { spawn, spawnSync } from 'node:child_process';

/** Whether Prometheus' promtool is on PATH (Debian and Ubuntu: apt-get install prometheus; .ci/run installs it). */
export const promtoolInstalled = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).error === undefined;

export interface PromtoolResult {
  /** 0: clean; 3: lint problems (promtool's own exit code); 1: not parseable. */
  code: number | null;
  /** What promtool printed, one problem a line ("name: problem"). */
  output: string;
}

/** `promtool check metrics` on a scrape, i.e. Prometheus' linter of the text format and its naming rules. */
export function promtoolCheckMetrics(exposition: string): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output: output.trim() }));
    child.stdin.end(exposition);
  });
}
