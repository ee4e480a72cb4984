import { describe, expect, it } from '@jest/globals';
import { defaultDeserialize, defaultSerialize } from '@keyv/serialize';
import { deserializeRedisEntry, serializeRedisEntry } from './redis-entry-format';

const entry = { value: { id: 'rpt_1', lines: [{ sku: ':leading-colon', quantity: 2 }], note: 'plain' }, expires: 1_800_000_000_000 };

describe('Redis entry format', () => {
  it('round-trips a value, strings that start with ":" included', () => {
    expect(deserializeRedisEntry(serializeRedisEntry(entry))).toMatchObject(entry);
  });

  it("reads entries written with Keyv's default serializer, which escapes a leading ':'", () => {
    const legacy = defaultSerialize(entry);
    expect(legacy).toContain('"::leading-colon"');
    expect(deserializeRedisEntry(legacy)).toEqual(entry);
  });

  it("is read by Keyv's default deserializer (an older release) as the same envelope, for values without a leading ':'", () => {
    const value = { id: 'rpt_2', total: 12.5 };
    expect(defaultDeserialize(serializeRedisEntry({ value, expires: 1 }))).toMatchObject({ value, expires: 1 });
  });
});
