import type { Collection, CollectionHit, CollectionSearchOptions } from './collection'

/** How concurrent single-query searches are gathered into native batches. */
export interface BatchingOptions {
  /**
   * Most queries in one native batch (1 to 4,096, default 256). A group that reaches it is
   * sent at once.
   */
  maxBatch?: number
  /**
   * How long the first query of a batch may wait for others, in milliseconds (0 to 100,
   * default 0). 0 waits for no timer: a batch closes when the event loop has read every
   * request that had arrived (the end of the current I/O phase), so a lone query is never
   * delayed, and under load the queries parsed in one pass of the event loop go together.
   */
  windowMs?: number
  /**
   * Batches running natively at once (1 to 64, default 2). While that many are running, new
   * queries queue and leave together as the next batch, so batches grow with the load instead
   * of the queue of native tasks.
   */
  maxInFlight?: number
}

/** The batching settings a server uses when given none. */
export const DEFAULT_BATCHING: Required<BatchingOptions> = { maxBatch: 256, windowMs: 0, maxInFlight: 2 }

/** Searches that can share a native call: one collection, the same options. */
interface Group {
  collection: Collection
  options: CollectionSearchOptions
  queries: Float32Array[]
  waiters: { resolve: (hits: CollectionHit[]) => void; reject: (error: unknown) => void }[]
}

/** Errors that belong to one query of a batch (its vector or options), not to the batch. */
const PER_QUERY_CODES = new Set(['ERR_INVALID_ARGUMENT', 'ERR_DIMENSION_MISMATCH', 'ERR_ZERO_VECTOR'])

/**
 * Micro-batching of single-query searches: queries for the same collection with the same
 * options (k, efSearch, filter, what to include) that arrive together go to the core as one
 * batch search, which runs them in parallel on the native pool, and the results are fanned
 * back out to each caller. A query's own error never fails its neighbours: when a batch is
 * refused for a per-query reason, each query is run alone.
 */
export class SearchBatcher {
  readonly #settings: Required<BatchingOptions>
  readonly #groups = new Map<string, Group>()
  readonly #onBatch: (size: number) => void
  #pending = 0
  #inFlight = 0
  #flushScheduled = false
  #idle: (() => void)[] = []

  constructor(settings: Required<BatchingOptions>, onBatch: (size: number) => void = () => {}) {
    this.#settings = settings
    this.#onBatch = onBatch
  }

  /** Queries waiting for a batch. */
  get queueDepth(): number {
    return this.#pending
  }

  /** Native batches running now. */
  get inFlight(): number {
    return this.#inFlight
  }

  /**
   * The hits of one query. `groupKey` must identify the collection and every option (the
   * filter as its JSON text): queries with equal keys share a batch.
   */
  search(collection: Collection, groupKey: string, query: Float32Array, options: CollectionSearchOptions): Promise<CollectionHit[]> {
    return new Promise((resolve, reject) => {
      let group = this.#groups.get(groupKey)
      if (group === undefined) {
        group = { collection, options, queries: [], waiters: [] }
        this.#groups.set(groupKey, group)
      }
      group.queries.push(query)
      group.waiters.push({ resolve, reject })
      this.#pending++
      if (group.queries.length >= this.#settings.maxBatch && this.#inFlight < this.#settings.maxInFlight) {
        this.#groups.delete(groupKey)
        this.#run(group)
      } else {
        this.#schedule()
      }
    })
  }

  /** Resolves once no query is queued or running. */
  drained(): Promise<void> {
    if (this.#pending === 0 && this.#inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #schedule(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    const flush = () => {
      this.#flushScheduled = false
      this.#flush()
    }
    if (this.#settings.windowMs > 0) setTimeout(flush, this.#settings.windowMs)
    else setImmediate(flush)
  }

  /** Sends queued groups while fewer than maxInFlight batches run; the rest wait for one to end. */
  #flush(): void {
    for (const [key, group] of this.#groups) {
      if (this.#inFlight >= this.#settings.maxInFlight) return
      this.#groups.delete(key)
      // A group longer than maxBatch (it grew while the pool was busy) leaves in pieces.
      if (group.queries.length > this.#settings.maxBatch) {
        const rest: Group = { ...group, queries: group.queries.splice(this.#settings.maxBatch), waiters: group.waiters.splice(this.#settings.maxBatch) }
        this.#groups.set(key, rest)
      }
      this.#run(group)
    }
  }

  #run(group: Group): void {
    this.#pending -= group.queries.length
    this.#inFlight++
    this.#onBatch(group.queries.length)
    this.#execute(group)
      .then(
        (outcomes) =>
          outcomes.forEach((outcome, i) => {
            if (outcome.status === 'fulfilled') group.waiters[i]!.resolve(outcome.value)
            else group.waiters[i]!.reject(outcome.reason)
          }),
        (error) => group.waiters.forEach((waiter) => waiter.reject(error)),
      )
      .finally(() => {
        this.#inFlight--
        if (this.#groups.size > 0) this.#flush()
        if (this.#pending === 0 && this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve()
      })
  }

  /** Each query's hits or error; rejects only with an error of the whole batch. */
  async #execute(group: Group): Promise<PromiseSettledResult<CollectionHit[]>[]> {
    if (group.queries.length === 1) return [{ status: 'fulfilled', value: await group.collection.search(group.queries[0]!, group.options) }]
    try {
      const rows = await group.collection.search(group.queries, group.options)
      return rows.map((value) => ({ status: 'fulfilled', value }))
    } catch (error) {
      if (!PER_QUERY_CODES.has((error as { code?: string }).code ?? '')) throw error
      // One query spoiled the batch: each alone, so only the bad one fails.
      return Promise.allSettled(group.queries.map((query) => group.collection.search(query, group.options)))
    }
  }
}
