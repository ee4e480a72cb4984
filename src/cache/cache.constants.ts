/** Injection token of the two Keyv tiers (memory first, then Redis) that cache-manager is built on. */
export const CACHE_TIERS = Symbol('CACHE_TIERS');

/** Bump when the cached value format changes: old entries are then simply not found. */
export const CACHE_NAMESPACE = 'v1';

/** How long one instance may hold the right to compute a missing key before others compute too. */
export const COMPUTE_LOCK_MS = 10_000;
/** How long others wait for that instance's result before computing it themselves. */
export const COMPUTE_WAIT_MS = 3_000;
export const COMPUTE_POLL_MS = 50;

/**
 * The largest entry CacheService.setOrThrow stores (serialized): job results, which may be far over
 * CACHE_MAX_VALUE_KB. Upstash refuses requests over 10 MB; this leaves room for the keys and the command.
 */
export const MAX_RESULT_BYTES = 8 * 1024 * 1024;
