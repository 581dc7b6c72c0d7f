import native = require('./native')
import { abortHandle } from './abort'
import { awaitNative, callNative, fromNative, RESULTS_DID_NOT_FIT } from './errors'
import { checkOptions, defaultOf } from './options'
import { KeyFilter } from './key-filter'
import { checkBuffer, checkPath, IndexBase, keyArrayOf, type NativeIndexBase } from './index-base'
import { type Key, type KeysInput, toKeyArray } from './keys'
import { resultPool, SearchResults } from './results'
import { type AddStreamOptions, type StreamItem, batchRows, ingest, type SearchStreamOptions } from './stream'
import { checkObject, type Metric, toMatrix, toRows, toVector, type VectorInput, type VectorsInput } from './validate'

export { checkBuffer, checkPath, keyArrayOf }

/** Up to this many result cells (rows × k), `searchSync` sizes its output for k columns
 * without asking the index for its size. */
const SMALL_CELLS = 1024

/** The most result cells (queries × min(k, size)) one search returns; more is
 * ERR_INVALID_ARGUMENT, in both twins. */
const MAX_RESULT_CELLS = native.MAX_RESULT_CELLS

const HAS_SHARED_MEMORY = typeof SharedArrayBuffer !== 'undefined'

/** Whether a typed array's memory is a SharedArrayBuffer (other threads may write it). */
export function isShared(array: ArrayBufferView): boolean {
  return HAS_SHARED_MEMORY && array.buffer instanceof SharedArrayBuffer
}


/** Options of a search. */
export interface SearchOptions {
  /** Hits per query. Larger than the index returns what there is. */
  k: number
  /** Allow-list: only these keys may appear in the results. Given as data, never a callback; a
   * {@link KeyFilter} built once is faster for a list reused across searches. */
  filter?: KeysInput | KeyFilter
  /** Stops the search between batches; the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal
  /** Compressed index: candidates rescored per result (default: the index's `oversample`). */
  oversample?: number
  /** Compressed index: rescore candidates with the full vectors (default true). `false`
   * returns the codes' estimated distances. */
  rescore?: boolean
}

/** Options of an async add. */
export interface AddOptions {
  /** Stops before the vectors are added; the promise rejects with ERR_ABORTED, nothing added. */
  signal?: AbortSignal
}

/** Options of {@link VectorIndex.train} ({@link VectorIndex.trainSync} takes `queries` only). */
export interface TrainOptions {
  /** A sample of the expected queries (rows or a flat Float32Array of whole rows): with
   * `pcaDimensions`, learns LeanVec-OOD's query and data projections instead of PCA. */
  queries?: VectorsInput
  /** Stops before the new model is put in place; the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal
}

/** What the native single-vector index classes offer beyond {@link NativeIndexBase} (see
 * index.d.ts). */
export interface NativeIndex extends NativeIndexBase {
  add(keys: BigUint64Array, vectors: Float32Array, abort?: native.NativeAbortHandle | null): Promise<void>
  addSync(keys: BigUint64Array, vectors: Float32Array): void
  train(sample: Float32Array, queries?: Float32Array | null, abort?: native.NativeAbortHandle | null): Promise<void>
  trainSync(sample: Float32Array, queries?: Float32Array | null): void
  readonly dim: number
  readonly metric: string
}

/** A native index made by a static loader (`load`, `fromBuffer`), handed to a subclass
 * constructor in place of options. Not exported from the package. */
export class LoadedNative<N extends NativeIndex> {
  constructor(readonly native: N) {}
}

/** What a subclass constructor passes to {@link VectorIndex}'s: its shape, and how to make the
 * native index. */
export interface NativeParts<N extends NativeIndex> {
  dimensions: number
  metric: Exclude<Metric, 'hamming'>
  create: () => N
}

/** The parts of an index a static loader made. */
export function loadedParts<N extends NativeIndex>(loaded: LoadedNative<N>): NativeParts<N> {
  const index = loaded.native
  return { dimensions: index.dim, metric: index.metric as Exclude<Metric, 'hamming'>, create: () => index }
}

/** A search's arguments after validation. */
export interface QueryArgs {
  k: number
  matrix: Float32Array
  /** The allow-list given with the call, or a prepared one (at most one of the two). */
  filter: BigUint64Array | undefined
  prepared: native.NativeKeyFilter | undefined
  /** Candidates rescored per result (0: the index's own). */
  oversample: number
  rescore: boolean
}

/**
 * What {@link FlatIndex} and {@link HnswIndex} share: keys and vectors in, lifecycle, streaming,
 * and the sync search path that writes into pooled memory. Subclasses say how to search.
 */
export abstract class VectorIndex<N extends NativeIndex, H, O extends SearchOptions> extends IndexBase<N> {
  /** The same index for the free `…SearchIntoSyncFast` functions, which skip napi-rs's
   * per-call receiver check. */
  #searchHandle: H | null
  readonly dimensions: number
  readonly metric: Exclude<Metric, 'hamming'>

  protected constructor({ dimensions, metric, create }: NativeParts<N>, searchHandle: (index: N) => H) {
    super(callNative(create))
    this.dimensions = dimensions
    this.metric = metric
    this.#searchHandle = searchHandle(this.handle())
  }

  protected override released(): void {
    this.#searchHandle = null
  }

  /** The keys, and exactly one vector per key (the keys give the count). */
  #batch(keys: KeysInput | Key, vectors: VectorsInput): [BigUint64Array, Float32Array] {
    const keyArray = keyArrayOf(keys)
    return [keyArray, toRows(vectors, keyArray.length, this.dimensions, 'vectors')]
  }

  /**
   * Adds one vector under one key (`add(key, vector)`), or n vectors under n keys
   * (`add(keys, vectors)`). The keys give the count: `vectors` is n rows, or a flat array of
   * n × dimensions values; any other count or length is ERR_DIMENSION_MISMATCH naming both
   * ("2 keys need 8 values (2 × 4 dimensions), got 12"). A key already present gets the new
   * vector. The batch is validated whole first: on any error nothing is added.
   */
  async add(key: Key, vector: VectorInput, options?: AddOptions): Promise<void>
  async add(keys: KeysInput, vectors: VectorsInput, options?: AddOptions): Promise<void>
  async add(keys: KeysInput | Key, vectors: VectorsInput, options: AddOptions = {}): Promise<void> {
    const { signal } = checkOptions<AddOptions>(options, 'SignalOptions')
    const [keyArray, matrix] = this.#batch(keys, vectors)
    using link = abortHandle(signal)
    await awaitNative(callNative(() => this.handle().add(keyArray, matrix, link.native)), link.signal)
  }

  /** Blocking twin of {@link add}. */
  addSync(key: Key, vector: VectorInput): void
  addSync(keys: KeysInput, vectors: VectorsInput): void
  addSync(keys: KeysInput | Key, vectors: VectorsInput): void {
    const [keyArray, matrix] = this.#batch(keys, vectors)
    // Validated memory must not change under the native call: copy what other threads share.
    const stable = isShared(matrix) ? matrix.slice() : matrix
    callNative(() => this.handle().addSync(isShared(keyArray) ? keyArray.slice() : keyArray, stable))
  }

  /**
   * Adds everything an (async) iterable yields — `{ key, vector }`, `{ keys, vectors }` batches,
   * or bare vectors keyed from `startKey` — in native batches of `batchSize`. The next item is
   * not pulled until the previous batch is stored (backpressure). Returns the count added.
   */
  async addStream(source: AsyncIterable<StreamItem> | Iterable<StreamItem>, options: AddStreamOptions = {}): Promise<number> {
    this.handle()
    return ingest(source, this.dimensions, options, (keys, vectors, signal) => this.add(keys, vectors, { signal }))
  }

  /** Checks a search's arguments: a batch of queries, or (`batchMethod` given: the method a
   * batch should go to, for the error) exactly one query of `dimensions` numbers. */
  protected queryArgs(queries: VectorInput | VectorsInput, options: SearchOptions, batchMethod?: 'searchBatch' | 'searchBatchSync'): QueryArgs {
    checkOptions(options, this.searchOptionSet)
    const k = options.k
    const matrix = batchMethod === undefined ? toMatrix(queries, this.dimensions, 'queries') : toVector(queries, this.dimensions, 'query', `call ${batchMethod} for a batch`)
    // 0: the index's own oversample.
    const { oversample = 0, rescore = defaultOf<boolean>('SearchOptions', 'rescore') } = options
    const given = options.filter
    if (given instanceof KeyFilter) return { k, matrix, filter: undefined, prepared: given.native, oversample, rescore }
    const filter = given === undefined ? undefined : toKeyArray(given, 'filter')
    return { k, matrix, filter, prepared: undefined, oversample, rescore }
  }

  /**
   * Trains the compressed search form on a sample of vectors (like those to be stored) and
   * re-encodes every vector already stored; replaces an earlier training. Both happen on a
   * background pool at a lower priority (seconds for PQ) while `searchSync` calls and searches
   * called before `train` go on with the old model; the result is then swapped in. Searches
   * called after `train` see the new model, as with every write. An index without compression
   * rejects with ERR_INVALID_ARGUMENT.
   *
   * `queries`: a sample of the queries the index will answer, when they come from another
   * distribution than the stored vectors (questions against passages, example sentences
   * against definitions). With `pcaDimensions`, the index then learns LeanVec-OOD's separate
   * query and data projections (Tepper et al., TMLR 2024) instead of PCA: the reduced inner
   * product is fitted to these queries. Dot and cosine indexes only (ERR_INVALID_ARGUMENT
   * otherwise, and without `pcaDimensions`). An index that trains by itself learns PCA.
   */
  async train(sample: VectorsInput, options: TrainOptions = {}): Promise<void> {
    const matrix = toMatrix(sample, this.dimensions, 'sample')
    const { signal, queries } = checkOptions<TrainOptions>(options, 'TrainOptions')
    const queryMatrix = queries === undefined ? undefined : toMatrix(queries, this.dimensions, 'queries')
    using link = abortHandle(signal)
    await awaitNative(callNative(() => this.handle().train(matrix, queryMatrix, link.native)), link.signal)
  }

  /** Blocking twin of {@link train}. */
  trainSync(sample: VectorsInput, options: Omit<TrainOptions, 'signal'> = {}): void {
    const matrix = toMatrix(sample, this.dimensions, 'sample')
    const { queries } = checkOptions<TrainOptions>(options, 'TrainSyncOptions')
    const queryMatrix = queries === undefined ? undefined : toMatrix(queries, this.dimensions, 'queries')
    const owned = (m: Float32Array) => (isShared(m) ? m.slice() : m)
    callNative(() => this.handle().trainSync(owned(matrix), queryMatrix === undefined ? undefined : owned(queryMatrix)))
  }

  /** The option set (core table) this kind's search options are checked against. */
  protected abstract get searchOptionSet(): 'SearchOptions' | 'HnswSearchOptions'

  /** The `k` nearest vectors of one query of exactly `dimensions` numbers; one result row. */
  abstract search(query: VectorInput, options: O): Promise<SearchResults>

  /** The `k` nearest vectors of each query of a batch (rows, or a flat n × dimensions array);
   * one result row per query. */
  abstract searchBatch(queries: VectorsInput, options: O): Promise<SearchResults>

  /** Calls the native sync search, writing into `out` (see `searchSync`). */
  protected abstract searchInto(handle: H, args: QueryArgs, options: O, query: Float32Array, out: Uint8Array, offset: number, cells: number): number

  /**
   * Blocking twin of {@link search}: no thread hop, the fastest way to run one query. A query of
   * any other length than `dimensions` is ERR_DIMENSION_MISMATCH (a batch goes to
   * {@link searchBatchSync}).
   */
  searchSync(query: VectorInput, options: Omit<O, 'signal'>): SearchResults {
    return this.#searchSync(this.queryArgs(query, options, 'searchBatchSync'), options)
  }

  /** Blocking twin of {@link searchBatch}: the JS thread waits until every query is answered. */
  searchBatchSync(queries: VectorsInput, options: Omit<O, 'signal'>): SearchResults {
    return this.#searchSync(this.queryArgs(queries, options), options)
  }

  #searchSync(args: QueryArgs, options: Omit<O, 'signal'>): SearchResults {
    // The hot path of single-query latency: no intermediate objects, one look at the buffer.
    const { k, matrix } = args
    this.handle()
    const handle = this.#searchHandle!
    const rows = matrix.length / this.dimensions
    // Rows have stride min(k, size): the output is sized by what the index can return, not by
    // k. Only when rows × k is small anyway is it sized for k, without asking the native side
    // for its size (a call saved on the hot path).
    let sized = rows * k <= SMALL_CELLS ? k : Math.min(k, this.size)
    // Native code borrows the query while writing the results: never let the two share memory
    // (a query taken from an earlier result's buffer), nor read memory another thread may write.
    const source = matrix.buffer
    let query = HAS_SHARED_MEMORY && source instanceof SharedArrayBuffer ? matrix.slice() : matrix
    const attempt = (): [number, number, Uint8Array, number] => {
      // More results than one search returns: no output at all, so the native side refuses the
      // call with the same error as the async twin (it checks before searching).
      const cells = rows * sized <= MAX_RESULT_CELLS ? rows * sized : 0
      const offset = resultPool.reserve(cells * 12 + rows * 4)
      const bytes = resultPool.bytes
      if (query.buffer === bytes.buffer) query = matrix.slice()
      return [this.searchInto(handle, args, options as O, query, bytes, offset, cells), cells, bytes, offset]
    }
    let stride: number, cells: number, bytes: Uint8Array, offset: number
    try {
      ;[stride, cells, bytes, offset] = attempt()
    } catch (error) {
      // An async add may have grown the index since `size` was read: size again, once, with
      // room for more growth.
      if (sized === k || (error as { code?: unknown } | null)?.code !== RESULTS_DID_NOT_FIT) throw fromNative(error)
      sized = Math.min(k, 2 * this.size)
      try {
        ;[stride, cells, bytes, offset] = attempt()
      } catch (again) {
        throw fromNative(again)
      }
    }
    const buffer = bytes.buffer
    return new SearchResults(
      stride,
      new BigUint64Array(buffer, offset, rows * stride),
      new Float32Array(buffer, offset + cells * 8, rows * stride),
      new Uint32Array(buffer, offset + cells * 12, rows),
    )
  }

  /**
   * Searches every query an (async) iterable yields (each item one query of exactly
   * `dimensions` numbers, as for {@link search}), in batches of `batchSize` rows, yielding one
   * {@link SearchResults} per batch, its rows in item order. One batch is searched ahead while
   * the consumer works on the previous one; breaking out early aborts it and releases its
   * native state.
   */
  async *searchStream(
    queries: AsyncIterable<VectorInput> | Iterable<VectorInput>,
    options: O & { batchSize?: SearchStreamOptions['batchSize'] },
  ): AsyncGenerator<SearchResults, void, undefined> {
    const { batchSize, ...searchOptions } = checkObject<typeof options>(options, 'options')
    checkOptions(searchOptions, this.searchOptionSet)
    const search = (rows: Float32Array, signal: AbortSignal) => this.searchBatch(rows, { ...searchOptions, signal } as unknown as O)
    yield* this.searchAhead(batchRows(queries, this.dimensions, batchSize), search, options.signal)
  }
}
