import { describe, expect, it } from '@jest/globals';
import { withDeadline } from './with-deadline';

describe('withDeadline', () => {
  it('settles like the work when it finishes first', async () => {
    await expect(withDeadline(Promise.resolve('done'), 1_000, () => 'late')).resolves.toBe('done');
    await expect(withDeadline(Promise.reject(new Error('failed')), 1_000, () => 'late')).rejects.toThrow('failed');
  });

  it('settles with the fallback, or its error, when the work never does', async () => {
    const never = new Promise<string>(() => undefined);
    await expect(withDeadline(never, 10, () => 'fallback')).resolves.toBe('fallback');
    await expect(
      withDeadline(never, 10, () => {
        throw new Error('too slow');
      }),
    ).rejects.toThrow('too slow');
  });
});
