import { describe, expect, it } from '@jest/globals';
import { userRoom } from './presence.constants';

describe('userRoom', () => {
  it('is per tenant: the same user id in two pharmacies is two rooms', () => {
    expect(userRoom('pharmacy-1', 'u1')).not.toBe(userRoom('pharmacy-2', 'u1'));
  });

  it('cannot be spelled by another tenant/user pair through a separator in an id', () => {
    expect(userRoom('a:b', 'c')).not.toBe(userRoom('a', 'b:c'));
    expect(userRoom('a%3Ab', 'c')).not.toBe(userRoom('a:b', 'c'));
  });
});
