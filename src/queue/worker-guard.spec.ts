import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { MAX_BACKOFF_MS, PausableWorker, WorkerGuard } from './worker-guard';

class FakeWorker implements PausableWorker {
  paused = false;
  pauses = 0;
  resumes = 0;
  async pause(): Promise<void> {
    this.paused = true;
    this.pauses += 1;
  }
  resume(): void {
    this.paused = false;
    this.resumes += 1;
  }
}

function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = { warn: (line: string) => lines.push(`warn ${line}`), log: (line: string) => lines.push(`log ${line}`) } as unknown as Logger;
  return { logger, lines };
}

describe('WorkerGuard', () => {
  let now = 0;
  beforeEach(() => {
    jest.useFakeTimers();
    now = 0;
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  const advance = (ms: number) => {
    now += ms;
    jest.advanceTimersByTime(ms);
  };

  it('pauses at the first refusal, logs once, and doubles the pause while Redis keeps refusing, up to the cap', () => {
    const { logger, lines } = capturingLogger();
    const guard = new WorkerGuard(logger, () => now);
    const worker = new FakeWorker();
    const resumedAt: number[] = [];
    for (let round = 0; round < 8; round++) {
      guard.onError(worker, 'OOM command not allowed', 'Redis is out of memory');
      expect(worker.paused).toBe(true);
      const before = worker.resumes;
      while (worker.resumes === before) advance(100);
      resumedAt.push(now);
    }
    const pauses = resumedAt.map((at, i) => at - (i === 0 ? 0 : resumedAt[i - 1]));
    expect(pauses.slice(0, 5)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
    expect(Math.max(...pauses)).toBe(MAX_BACKOFF_MS);
    expect(lines.filter((line) => line.includes('worker paused'))).toHaveLength(1);
    expect(guard.health()).toMatchObject({ paused: true, reason: 'Redis is out of memory' });
  });

  it('reports recovery once, after a resumed worker ran without an error, and starts over at 1 s', () => {
    const { logger, lines } = capturingLogger();
    const guard = new WorkerGuard(logger, () => now);
    const worker = new FakeWorker();
    guard.onError(worker, 'READONLY', 'a read-only replica');
    advance(1_000);
    expect(worker.resumes).toBe(1);
    advance(2_000);
    expect(guard.health()).toEqual({ paused: false });
    expect(lines.filter((line) => line.includes('worker resumed'))).toHaveLength(1);
    guard.onError(worker, 'READONLY', 'a read-only replica');
    advance(1_000);
    expect(worker.resumes).toBe(2);
  });

  it('does not call a quiet worker recovered while Redis is known to refuse still: it pauses again', () => {
    const { logger, lines } = capturingLogger();
    let refused = true;
    const guard = new WorkerGuard(logger, () => now, () => refused);
    const worker = new FakeWorker();
    guard.onError(worker, 'OOM', 'Redis is out of memory');
    advance(1_000 + 2_000);
    expect(guard.health().paused).toBe(true);
    expect(worker.pauses).toBe(2);
    refused = false;
    advance(2_000 + 2_000);
    expect(guard.health()).toEqual({ paused: false });
    expect(lines.filter((line) => line.includes('worker resumed'))).toHaveLength(1);
  });

  it('ignores a lone error Redis does not explain, but pauses a worker that spins on them', () => {
    const { logger } = capturingLogger();
    const guard = new WorkerGuard(logger, () => now);
    const worker = new FakeWorker();
    guard.onError(worker, 'Missing lock for job 1', undefined);
    expect(worker.pauses).toBe(0);
    for (let i = 0; i < 10; i++) guard.onError(worker, 'ERR weird', undefined);
    expect(worker.pauses).toBe(1);
    expect(guard.health().reason).toMatch(/every command fails \(ERR weird\)/);
  });
});
