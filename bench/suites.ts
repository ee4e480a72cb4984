// Every benchmark suite, one line each. run.ts runs them (and orders BENCHMARKS.md) by name.
export * as health from './health.bench';
export * as queue from './queue.bench';
export * as cache from './cache.bench';
export * as presence from './presence.bench';
export * as soak from './soak.bench';
export * as cluster from './cluster.bench';
