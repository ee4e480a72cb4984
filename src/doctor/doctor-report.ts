export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about a warn or fail. */
  readonly fix?: string;
}

/** One line per check, then a summary. Every secret is masked, whatever a message might have picked up. */
export function formatReport(results: readonly CheckResult[], secrets: readonly string[]): string {
  const width = Math.max(...results.map((result) => result.name.length));
  const lines = results.map((result) => {
    const fix = result.fix && result.status !== 'ok' ? ` -> fix: ${result.fix}` : '';
    return `${result.status.padEnd(4)}  ${result.name.padEnd(width)}  ${result.detail}${fix}`;
  });
  const failed = results.filter((result) => result.status === 'fail').length;
  const warned = results.filter((result) => result.status === 'warn').length;
  lines.push(
    failed > 0
      ? `doctor: ${failed} failed, ${warned} warning${warned === 1 ? '' : 's'}`
      : `doctor: all checks passed${warned > 0 ? ` with ${warned} warning${warned === 1 ? '' : 's'}` : ''}`,
  );
  return mask(lines.join('\n'), secrets);
}

/** Non-zero on any failure; warnings alone do not fail. */
export function exitCode(results: readonly CheckResult[]): number {
  return results.some((result) => result.status === 'fail') ? 1 : 0;
}

function mask(text: string, secrets: readonly string[]): string {
  return secrets.filter((secret) => secret.length > 0).reduce((masked, secret) => masked.split(secret).join('***'), text);
}
