import native = require('./native')
import { abortHandle } from './abort'
import { abortError, awaitNative, callNative, fromNative, invalidArgument, RESULTS_DID_NOT_FIT, VecdexError } from './errors'
import { KeyFilter } from './key-filter'
import type { CompressionStats } from './compression'
import { checkKey, type Key, type KeysInput, toKeyArray } from './keys'
import { resultPool, SearchResults } from './results'
import { type AddStreamOptions, type StreamItem, batchRows, ingest, type SearchStreamOptions } from './stream'
import { checkK, checkObject, checkSignal, type Metric, toMatrix, type VectorsInput } from './validate'

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

/** One key or many, as the BigUint64Array the native layer takes. */
export function keyArrayOf(keys: KeysInput | Key): BigUint64Array {
  return typeof keys === 'number' || typeof keys === 'bigint' ? BigUint64Array.of(checkKey(keys)) : toKeyArray(keys)
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

/** What every native index class offers (see index.d.ts). */
export interface NativeIndex {
  readonly size: number
  readonly memoryBytes: number
  add(keys: BigUint64Array, vectors: Float32Array, abort?: native.NativeAbortHandle | null): Promise<void>
  addSync(keys: BigUint64Array, vectors: Float32Array): void
  remove(keys: BigUint64Array): Promise<number>
  removeSync(keys: BigUint64Array): number
  get(key: bigint): Float32Array | null
  contains(key: bigint): boolean
  keys(): BigUint64Array
  close(): void
  readonly isTrained: boolean
  train(sample: Float32Array): Promise<void>
  trainSync(sample: Float32Array): void
  compressionStats(): native.NativeCompressionStats
  save(path: string): Promise<void>
  saveSync(path: string): void
  toBuffer(): Promise<Buffer>
  toBufferSync(): Buffer
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

/** Checks a file path argument. */
export function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw invalidArgument(`path must be a non-empty string, got ${typeof path === 'string' ? JSON.stringify(path) : typeof path}`)
  }
  return path
}

/** Checks a buffer argument (any Uint8Array, Buffer included). */
export function checkBuffer(buffer: unknown): Uint8Array {
  if (!(buffer instanceof Uint8Array)) {
    throw invalidArgument(`buffer must be a Uint8Array or Buffer, got ${buffer === null ? 'null' : typeof buffer}`)
  }
  return buffer
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
export abstract class VectorIndex<N extends NativeIndex, H, O extends SearchOptions> implements Disposable {
  #native: N | null
  /** The same index for the free `…SearchIntoSyncFast` functions, which skip napi-rs's
   * per-call receiver check. */
  #searchHandle: H | null
  readonly dimensions: number
  readonly metric: Exclude<Metric, 'hamming'>

  protected constructor({ dimensions, metric, create }: NativeParts<N>, searchHandle: (index: N) => H) {
    this.dimensions = dimensions
    this.metric = metric
    this.#native = callNative(create)
    this.#searchHandle = searchHandle(this.#native)
  }

  /** The native index; throws ERR_CLOSED once closed. */
  protected handle(): N {
    if (this.#native === null) throw new VecdexError('ERR_CLOSED', 'the index is closed')
    return this.#native
  }

  /** Number of vectors stored. */
  get size(): number {
    return callNative(() => this.handle().size)
  }

  /** Native bytes held, as reported to V8. */
  get memoryBytes(): number {
    return callNative(() => this.handle().memoryBytes)
  }

  get closed(): boolean {
    return this.#native === null
  }

  #batch(keys: KeysInput | Key, vectors: VectorsInput): [BigUint64Array, Float32Array] {
    const keyArray = keyArrayOf(keys)
    const matrix = toMatrix(vectors, this.dimensions, 'vectors')
    if (matrix.length / this.dimensions !== keyArray.length) {
      throw invalidArgument(`${keyArray.length} keys for ${matrix.length / this.dimensions} vectors: give one key per vector`)
    }
    return [keyArray, matrix]
  }

  /**
   * Adds vectors under keys (one key per vector; a flat Float32Array holds n × dimensions
   * values). A key already present gets the new vector. The batch is validated whole first:
   * on any error nothing is added.
   */
  async add(keys: KeysInput | Key, vectors: VectorsInput, options: AddOptions = {}): Promise<void> {
    const [keyArray, matrix] = this.#batch(keys, vectors)
    using link = abortHandle(checkSignal(options.signal))
    await awaitNative(callNative(() => this.handle().add(keyArray, matrix, link.native)), link.signal)
  }

  /** Blocking twin of {@link add}. */
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

  /** Removes keys (unknown keys are ignored); resolves to how many were removed. */
  async remove(keys: KeysInput | Key): Promise<number> {
    const keyArray = keyArrayOf(keys)
    return awaitNative(callNative(() => this.handle().remove(keyArray)))
  }

  /** Blocking twin of {@link remove}. */
  removeSync(keys: KeysInput | Key): number {
    const keyArray = keyArrayOf(keys)
    return callNative(() => this.handle().removeSync(keyArray))
  }

  /** The stored vector of `key` (normalised to unit length under cosine), or undefined. */
  get(key: Key): Float32Array | undefined {
    const k = checkKey(key)
    return callNative(() => this.handle().get(k)) ?? undefined
  }

  contains(key: Key): boolean {
    const k = checkKey(key)
    return callNative(() => this.handle().contains(k))
  }

  /** Every key, in storage order. */
  keys(): BigUint64Array {
    return callNative(() => this.handle().keys())
  }

  protected queryArgs(queries: VectorsInput, options: SearchOptions): QueryArgs {
    checkObject(options, 'options')
    const k = checkK(options.k)
    // Fast path for the common case: one Float32Array query of the right length.
    const matrix = queries instanceof Float32Array && queries.length === this.dimensions ? queries : toMatrix(queries, this.dimensions, 'queries')
    const { oversample = 0, rescore = true } = options
    if (oversample !== 0 && (typeof oversample !== 'number' || !Number.isInteger(oversample) || oversample < 1 || oversample > 1000)) {
      throw invalidArgument(`oversample must be an integer from 1 to 1000, got ${String(oversample)}`)
    }
    if (typeof rescore !== 'boolean') throw invalidArgument(`rescore must be a boolean, got ${String(rescore)}`)
    const given = options.filter
    if (given instanceof KeyFilter) return { k, matrix, filter: undefined, prepared: given.native, oversample, rescore }
    const filter = given === undefined ? undefined : toKeyArray(given, 'filter')
    return { k, matrix, filter, prepared: undefined, oversample, rescore }
  }

  /** Whether searches can run: always for an uncompressed index; a compressed one once its
   * codec is trained (see {@link CompressionOptions}). */
  get isTrained(): boolean {
    return callNative(() => this.handle().isTrained)
  }

  /**
   * Trains the compressed search form on a sample of vectors (like those to be stored) and
   * re-encodes every vector already stored; replaces an earlier training. Both happen on a
   * background pool at a lower priority (seconds for PQ) while `searchSync` calls and searches
   * called before `train` go on with the old model; the result is then swapped in. Searches
   * called after `train` see the new model, as with every write. An index without compression
   * rejects with ERR_INVALID_ARGUMENT.
   */
  async train(sample: VectorsInput, options: { signal?: AbortSignal } = {}): Promise<void> {
    const matrix = toMatrix(sample, this.dimensions, 'sample')
    if (checkSignal(options.signal)?.aborted) throw abortError(options.signal)
    await awaitNative(callNative(() => this.handle().train(matrix)))
  }

  /** Blocking twin of {@link train}. */
  trainSync(sample: VectorsInput): void {
    const matrix = toMatrix(sample, this.dimensions, 'sample')
    callNative(() => this.handle().trainSync(isShared(matrix) ? matrix.slice() : matrix))
  }

  /** Sizes of the compressed form, and of the full vectors kept for rescoring. */
  compressionStats(): CompressionStats {
    return callNative(() => this.handle().compressionStats()) as CompressionStats
  }

  /** The `k` nearest vectors of each query (one vector, or a flat n × dimensions batch). */
  abstract search(queries: VectorsInput, options: O): Promise<SearchResults>

  /** Calls the native sync search, writing into `out` (see `searchSync`). */
  protected abstract searchInto(handle: H, args: QueryArgs, options: O, query: Float32Array, out: Uint8Array, offset: number, cells: number): number

  /** Blocking twin of {@link search}: no thread hop, best for single queries. */
  searchSync(queries: VectorsInput, options: Omit<O, 'signal'>): SearchResults {
    // The hot path of single-query latency: no intermediate objects, one look at the buffer.
    const args = this.queryArgs(queries, options)
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
   * Searches every query an (async) iterable yields, in batches of `batchSize` rows, yielding
   * one {@link SearchResults} per batch. One batch is searched ahead while the consumer works
   * on the previous one; breaking out early aborts it and releases its native state.
   */
  async *searchStream(
    queries: AsyncIterable<Float32Array | readonly number[]> | Iterable<Float32Array | readonly number[]>,
    options: O & { batchSize?: SearchStreamOptions['batchSize'] },
  ): AsyncGenerator<SearchResults, void, undefined> {
    checkObject(options, 'options')
    checkK(options.k)
    this.handle()
    const ahead = new AbortController()
    const outer = checkSignal(options.signal)
    if (outer?.aborted) throw abortError(outer)
    // The batch in flight stops with the outer signal's reason, which its error carries.
    const forward = () => ahead.abort(outer?.reason)
    outer?.addEventListener('abort', forward, { once: true })
    // A batch that finished before the abort is not yielded after it: the stream stops.
    const unlessAborted = (results: SearchResults) => {
      if (outer?.aborted) throw abortError(outer)
      return results
    }
    const { batchSize, ...searchOptions } = options
    let pending: Promise<SearchResults> | null = null
    try {
      for await (const rows of batchRows(queries, this.dimensions, batchSize ?? 256)) {
        const next = this.search(rows, { ...searchOptions, signal: ahead.signal } as unknown as O)
        next.catch(() => {}) // observed below; avoids an unhandled rejection if abandoned
        const previous = pending
        pending = next
        if (previous) yield unlessAborted(await previous)
      }
      if (pending) {
        const last = pending
        pending = null
        yield unlessAborted(await last)
      }
    } finally {
      outer?.removeEventListener('abort', forward)
      if (pending) {
        ahead.abort()
        await pending.catch(() => {})
      }
    }
  }

  /**
   * Saves the index to `path` atomically: it writes a temporary file in the same folder, fsyncs
   * it, renames it over `path` and fsyncs the folder, so a save that fails or is killed leaves
   * the previous file intact. Saves what every write called before it left; the file is
   * checksummed (CRC-32C per section) and loads with the class's static `load`.
   */
  async save(path: string): Promise<void> {
    const file = checkPath(path)
    return awaitNative(callNative(() => this.handle().save(file)))
  }

  /** Blocking twin of {@link save}. */
  saveSync(path: string): void {
    const file = checkPath(path)
    callNative(() => this.handle().saveSync(file))
  }

  /** The index as one file image (what {@link save} writes), for storing elsewhere; the
   * class's static `fromBuffer` reads it back. */
  async toBuffer(): Promise<Buffer> {
    return awaitNative(callNative(() => this.handle().toBuffer()))
  }

  /** Blocking twin of {@link toBuffer}. */
  toBufferSync(): Buffer {
    return callNative(() => this.handle().toBufferSync())
  }

  /** Frees the native index now. Idempotent; later calls throw ERR_CLOSED; searches already
   * running finish normally. */
  close(): void {
    const handle = this.#native
    this.#native = null
    this.#searchHandle = null
    handle?.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
