import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** What the metrics read from the server when scraped. */
export interface MetricsSource {
  collections(): Iterable<{ name: string; size: number; memoryBytes: number; dirty: boolean }>
  queueDepth(): number
  batchesInFlight(): number
}

/**
 * The server's Prometheus metrics, in a registry of its own (several servers in one process
 * never share counters): the process and event-loop metrics of prom-client
 * (`nodejs_eventloop_lag_p99_seconds` and the rest), plus the request counts and latencies,
 * search batch sizes, the batching queue and each collection's size.
 */
export class ServeMetrics {
  readonly registry = new Registry()
  readonly requests: Counter<'method' | 'route' | 'status'>
  readonly latency: Histogram<'method' | 'route'>
  readonly batchSize: Histogram
  readonly saves: Counter<'outcome'>

  constructor(source: MetricsSource) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 })
    this.requests = new Counter({ name: 'vecdex_http_requests_total', help: 'HTTP requests answered, by route pattern and status code', labelNames: ['method', 'route', 'status'], registers })
    this.latency = new Histogram({
      name: 'vecdex_http_request_duration_seconds',
      help: 'Time from a request arriving to its response being sent, by route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers,
    })
    this.batchSize = new Histogram({ name: 'vecdex_search_batch_size', help: 'Queries per native search call made by the micro-batcher', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], registers })
    this.saves = new Counter({ name: 'vecdex_saves_total', help: 'Collection saves, by outcome', labelNames: ['outcome'], registers })
    new Gauge({
      name: 'vecdex_search_queue_depth',
      help: 'Single-query searches waiting for a batch',
      registers,
      collect() {
        this.set(source.queueDepth())
      },
    })
    new Gauge({
      name: 'vecdex_search_batches_in_flight',
      help: 'Native batch searches running',
      registers,
      collect() {
        this.set(source.batchesInFlight())
      },
    })
    const perCollection = (name: string, help: string, read: (c: { size: number; memoryBytes: number; dirty: boolean }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['collection'],
        registers,
        collect() {
          this.reset()
          for (const c of source.collections()) this.set({ collection: c.name }, read(c))
        },
      })
    perCollection('vecdex_collection_items', 'Items stored, per collection', (c) => c.size)
    perCollection('vecdex_collection_memory_bytes', 'Native memory of the whole collection (index, ids, texts, metadata, columns)', (c) => c.memoryBytes)
    perCollection('vecdex_collection_dirty', '1 when the collection changed since its last save', (c) => (c.dirty ? 1 : 0))
  }
}
