import { describe, expect, it } from '@jest/globals';
import { exitCode, formatReport, type CheckResult } from './doctor-report';

const passed: CheckResult = { name: 'connection', status: 'ok', detail: 'reached 127.0.0.1:6380 and ready in 3 ms' };
const warned: CheckResult = { name: 'eviction', status: 'warn', detail: 'allkeys-lru (CONFIG GET)', fix: 'set the policy to noeviction' };
const failed: CheckResult = { name: 'auth', status: 'fail', detail: 'authentication failed (WRONGPASS)', fix: 'copy the URL again' };

describe('formatReport', () => {
  it('prints one aligned line per check, the fix after each problem, then a summary', () => {
    expect(formatReport([passed, warned, failed], []).split('\n')).toEqual([
      'ok    connection  reached 127.0.0.1:6380 and ready in 3 ms',
      'warn  eviction    allkeys-lru (CONFIG GET) -> fix: set the policy to noeviction',
      'fail  auth        authentication failed (WRONGPASS) -> fix: copy the URL again',
      'doctor: 1 failed, 1 warning',
    ]);
  });

  it('masks every secret wherever a message picked one up', () => {
    const leaky: CheckResult = { name: 'server', status: 'fail', detail: 'ERR AUTH default Hunter2Secret failed', fix: 'not Hunter2Secret' };
    const report = formatReport([leaky], ['Hunter2Secret', '']);
    expect(report).not.toContain('Hunter2Secret');
    expect(report).toContain('ERR AUTH default *** failed -> fix: not ***');
  });

  it('summarises warnings only as a pass', () => {
    expect(formatReport([passed, warned], [])).toMatch(/\ndoctor: all checks passed with 1 warning$/);
    expect(formatReport([passed], [])).toMatch(/\ndoctor: all checks passed$/);
  });
});

describe('exitCode', () => {
  it('is 1 on any failure and 0 with warnings only', () => {
    expect(exitCode([passed, warned, failed])).toBe(1);
    expect(exitCode([passed, warned])).toBe(0);
  });
});
