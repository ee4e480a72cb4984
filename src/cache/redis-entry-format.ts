import { defaultDeserialize as deserializeKeyvDefault } from '@keyv/serialize';
import type { DeserializedData } from 'keyv';

/**
 * How the Redis tier writes Keyv's envelope ({ value, expires }): plain JSON behind a leading marker field.
 *
 * Keyv's default serializer (@keyv/serialize) walks every value in JavaScript to escape strings that start with
 * ':' and revives every string on read. For a job result that was a third of what storing it cost the worker
 * (a CPU profile of the report job), for a format we never need: the cache holds JSON values, not Buffers.
 * Entries written before carry no marker (they start with `{"value":`) and are still read with Keyv's own
 * deserializer until they expire; an older release reading a new entry gets the same value plus the marker,
 * which Keyv ignores.
 */
const MARKER = 'plain';
const MARKED = `{"${MARKER}":1,`;

export function serializeRedisEntry<Value>(entry: DeserializedData<Value>): string {
  return JSON.stringify({ [MARKER]: 1, ...entry });
}

export function deserializeRedisEntry<Value>(stored: string): DeserializedData<Value> | undefined {
  return (stored.startsWith(MARKED) ? JSON.parse(stored) : deserializeKeyvDefault(stored)) as DeserializedData<Value> | undefined;
}
