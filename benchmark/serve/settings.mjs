// Settings shared by the serve suite's bench side (engines.mjs, the report) and its peer servers
// (peer-server.mjs), kept apart so that neither has to import the other.

/**
 * LanceDB's refineFactor in its HNSW-SQ searches: the ann suite's setting (REFINE_FACTOR in
 * adapters/ann/lancedb.mjs, where a probe on glove-100k found 2 the smallest factor reaching
 * LanceDB's highest recall).
 */
export const LANCEDB_REFINE_FACTOR = 2

/**
 * prom-client's event-loop sampling interval (ms) in vecdex serve (lib/serve-metrics.ts) and the
 * peer servers. perf_hooks.monitorEventLoopDelay records the time between its timer's wake-ups,
 * so an idle loop reads this much: the load test reports the p99 minus it, the delay proper.
 */
export const EVENT_LOOP_SAMPLING_MS = 10
