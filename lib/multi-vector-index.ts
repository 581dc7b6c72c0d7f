import native = require('./native')
import { abortHandle } from './abort'
import { type CompressionOptions, type CompressionStats, nativeCompression } from './compression'
import { abortError, awaitNative, callNative, invalidArgument, VecdexError } from './errors'
import { type FdeConfig, type FdeOptions, nativeFde } from './fde-encoder'
import { KeyFilter } from './key-filter'
import { checkKey, type Key, type KeysInput, toKeyArray } from './keys'
import { type PointCloud, type PointCloudBatch, type PointCloudsInput, queriesToCsr, toCloud, toCsr } from './point-clouds'
import { SearchResults } from './results'
import { checkDimensions, checkK, checkMetric, checkObject, checkSignal, describe } from './validate'
import { checkBuffer, checkPath, isShared, keyArrayOf } from './vector-index'

/** Options of a {@link MultiVectorIndex}. */
export interface MultiVectorIndexOptions extends CompressionOptions {
  /** Dimensions of every token vector (1 to 65,536). */
  dimensions: number
  /** Token similarity: 'cosine' (default; tokens are normalised when added and in queries) or
   * 'dot' (tokens as given). Chamfer sums, over query tokens, the best similarity to a
   * document token. */
  metric?: 'cosine' | 'dot'
  /** The fixed-dimensional encoding (see {@link FdeOptions}). An index's defaults differ from
   * the encoder's: 10 repetitions, 4 SimHash bits, AMS sketch to 4 values (640 dimensions),
   * which built a 16× smaller graph than the paper's 10,240 and found more of the exact top 10
   * on WordNet glosses (README). On that data a single repetition with no SimHash bit and the
   * identity projection (the token mean) did better still. */
  fde?: FdeOptions
  /** Links per node of the FDE graph (2 to 256, default 16). */
  m?: number
  /** Candidates considered when linking an FDE (default 128). */
  efConstruction?: number
  /** Candidates a graph search keeps (default 64; always at least `candidates`). */
  efSearch?: number
  /** Seed of the graph's node levels. */
  seed?: number
  /** FDE candidates reranked by exact Chamfer per query unless a search says otherwise
   * (1 to 65,536; default 100). More raise recall and cost rerank time. */
  candidates?: number
  /**
   * Query ball carving (MUVERA §3) before the rerank: a query token whose inner product with an
   * earlier cluster's first token is at least this joins that cluster, and each cluster scores
   * as the sum of its tokens. Fewer query rows make the rerank faster; scores become
   * approximate (never above the exact Chamfer). The paper uses 0.7. Default: off.
   */
  ballCarving?: number
  /**
   * How searches find documents unless a search says otherwise:
   * - 'rerank' (default, MUVERA): the `candidates` best documents by FDE inner product, from a
   *   graph search with the query's FDE, reranked by exact Chamfer;
   * - 'walk': a walk of the FDE graph that scores every document it visits by exact Chamfer,
   *   keeping `candidates` of them (the graph gives neighbourhoods, the true similarity
   *   steers). It costs a Chamfer evaluation per visited document instead of an FDE inner
   *   product, and reached higher recall per unit of time on real text (README).
   * - 'tokens': token retrieval (ColBERT's end-to-end retrieval, Khattab & Zaharia 2020, with
   *   XTR's imputation, Lee et al. 2023): each query token finds its `tokenNeighbours` nearest
   *   distinct document tokens in an HNSW graph of the distinct tokens; each document's
   *   estimated Chamfer sums, per query token, its best retrieved similarity (or the last
   *   retrieved one, when none of its tokens was found); the `candidates` best are reranked
   *   exactly. It needs no FDE and found the most of the exact top-10 per unit of time on
   *   WordNet glosses (README). Its index is built by the first such search after documents
   *   were added (seconds per 100k distinct tokens; later searches only index new documents),
   *   and is not saved: a loaded index builds it again.
   */
  strategy?: MultiVectorStrategy
  /**
   * How the graph compares FDEs: 'cosine' (default) scales each document's FDE to unit length,
   * so candidates rank by the angle between encodings; 'dot' keeps MUVERA's plain inner product.
   * On WordNet glosses the angle found more of the exact Chamfer top-10 from as many candidates
   * (README): the inner product favours documents with long encodings.
   */
  fdeMetric?: 'cosine' | 'dot'
}

/** See {@link MultiVectorIndexOptions.strategy}. */
export type MultiVectorStrategy = 'rerank' | 'walk' | 'tokens'

/** Options of a multi-vector search. */
export interface MultiVectorSearchOptions {
  /** Hits per query. */
  k: number
  /** FDE candidates to rerank (default: the index's `candidates`). */
  candidates?: number
  /** Graph candidates kept (default: the index's `efSearch`; at least `candidates`). */
  efSearch?: number
  /** Ball carving threshold for this search (default: the index's `ballCarving`). */
  ballCarving?: number
  /** Strategy of this search (default: the index's). */
  strategy?: MultiVectorStrategy
  /** 'tokens' strategy: distinct document tokens retrieved per query token (default 16, at most 4096). */
  tokenNeighbours?: number
  /** Allow-list of keys. */
  filter?: KeysInput | KeyFilter
  /** Stops the search; the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal
}

/** Options of an exact search. */
export interface ExactSearchOptions {
  k: number
  filter?: KeysInput | KeyFilter
  signal?: AbortSignal
}

/** Shape and size of a {@link MultiVectorIndex}. */
export interface MultiVectorStats {
  documents: number
  /** Tokens of the stored documents. */
  tokens: number
  /** Tokens of removed or replaced documents not yet reclaimed. */
  deadTokens: number
  /** Values per FDE. */
  fdeDimension: number
  /** Bytes of the token store (used by the rerank). */
  tokenBytes: number
  /** Bytes of the FDE index (graph, FDEs and any codes). */
  fdeBytes: number
  memoryBytes: number
}

/** What `addStream` takes: one keyed document. */
export interface DocumentItem {
  key: Key
  /** The document's token vectors. */
  tokens: PointCloud
}

const MAX_EF = 65536

function optionalInteger(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`)
  }
  return value
}

function optionalThreshold(value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalidArgument(`ballCarving must be a finite number, got ${describe(value)}`)
  }
  return value
}

function optionalStrategy(value: unknown): MultiVectorStrategy | undefined {
  if (value === undefined) return undefined
  if (value !== 'rerank' && value !== 'walk' && value !== 'tokens') throw invalidArgument(`strategy must be 'rerank', 'walk' or 'tokens', got ${describe(value)}`)
  return value
}

function filterArgs(filter: unknown): [BigUint64Array | undefined, native.NativeKeyFilter | undefined] {
  if (filter instanceof KeyFilter) return [undefined, filter.native]
  return [filter === undefined ? undefined : toKeyArray(filter, 'filter'), undefined]
}

/**
 * Multi-vector (late-interaction) retrieval with MUVERA: each document is a set of token
 * vectors (ColBERT-style), scored against a query's tokens by Chamfer similarity
 * `Σ_{q∈Q} max_{p∈P} ⟨q, p⟩`. Documents are stored twice: their fixed-dimensional encodings in an
 * HNSW graph (optionally compressed), and their tokens for the exact rerank. A search takes the
 * `candidates` best FDE matches and reranks them exactly; {@link searchExact} scores every
 * document (ground truth). A hit's `distance` is `−Chamfer` (lower is closer, as everywhere).
 *
 * Tokens (documents and queries, every method): finite; under 'dot' each token's Euclidean norm
 * is at most 2^30 (≈ 1.07e9), so that Chamfer sums of any length stay finite and ordered
 * (ERR_INVALID_ARGUMENT otherwise); under 'cosine' tokens are normalised and need only be
 * non-zero. `FdeEncoder` and `chamfer` apply the same rule.
 *
 * ```ts
 * using index = new MultiVectorIndex({ dimensions: 128 })
 * await index.add([1, 2], [doc1Tokens, doc2Tokens])
 * const hits = (await index.search(queryTokens, { k: 10 })).get(0)
 * ```
 */
/** A native index made by a static loader, handed to the constructor in place of options. */
class LoadedMultiVector {
  constructor(readonly native: native.NativeMultiVectorIndex) {}
}

function createNative(options: MultiVectorIndexOptions): native.NativeMultiVectorIndex {
  checkObject(options, 'options')
  const dimensions = checkDimensions(options.dimensions)
  const metric = checkMetric(options.metric ?? 'cosine', ['cosine', 'dot']) as 'cosine' | 'dot'
  const settings: native.NativeMultiVectorOptions = {
    fde: nativeFde(options.fde),
    m: optionalInteger(options.m, 'm', 2, 256),
    efConstruction: optionalInteger(options.efConstruction, 'efConstruction', 1, MAX_EF),
    efSearch: optionalInteger(options.efSearch, 'efSearch', 1, MAX_EF),
    seed: optionalInteger(options.seed, 'seed', 0, Number.MAX_SAFE_INTEGER),
    candidates: optionalInteger(options.candidates, 'candidates', 1, MAX_EF),
    ballCarving: optionalThreshold(options.ballCarving),
    strategy: optionalStrategy(options.strategy),
    fdeMetric: options.fdeMetric === undefined ? undefined : checkMetric(options.fdeMetric, ['cosine', 'dot']),
    compression: nativeCompression(options),
  }
  return callNative(() => new native.NativeMultiVectorIndex(dimensions, metric, settings))
}

export class MultiVectorIndex implements Disposable {
  #native: native.NativeMultiVectorIndex | null
  readonly dimensions: number
  readonly metric: 'cosine' | 'dot'
  /** The resolved encoding, with `outputDimension` and `rngVersion`. */
  readonly fde: FdeConfig
  readonly candidates: number
  readonly strategy: MultiVectorStrategy
  readonly fdeMetric: 'cosine' | 'dot'
  readonly m: number
  readonly efConstruction: number
  readonly efSearch: number

  constructor(options: MultiVectorIndexOptions) {
    const created = options instanceof LoadedMultiVector ? options.native : createNative(options)
    this.dimensions = created.dim
    this.metric = created.metric as 'cosine' | 'dot'
    this.#native = created
    this.fde = created.fde
    this.candidates = created.candidates
    this.strategy = created.strategy as MultiVectorStrategy
    this.fdeMetric = created.fdeMetric as 'cosine' | 'dot'
    this.m = created.m
    this.efConstruction = created.efConstruction
    this.efSearch = created.efSearch
  }

  /** Loads an index saved by {@link save}, off the event loop, checking the whole file first
   * (the FDE encoding, its RNG version, the token store and the FDE graph): ERR_CORRUPT_FILE,
   * ERR_UNSUPPORTED_FORMAT or ERR_IO otherwise. */
  static async load(path: string): Promise<MultiVectorIndex> {
    const file = checkPath(path)
    const loaded = await awaitNative(callNative(() => native.NativeMultiVectorIndex.loadLoaded(file)))
    return MultiVectorIndex.#wrap(() => native.NativeMultiVectorIndex.adoptLoaded(loaded))
  }

  /** Blocking twin of {@link load}. */
  static loadSync(path: string): MultiVectorIndex {
    const file = checkPath(path)
    return MultiVectorIndex.#wrap(() => native.NativeMultiVectorIndex.loadSync(file))
  }

  /** Rebuilds an index from a {@link toBuffer} image (copied first), off the event loop. */
  static async fromBuffer(buffer: Uint8Array): Promise<MultiVectorIndex> {
    const bytes = checkBuffer(buffer)
    const loaded = await awaitNative(callNative(() => native.NativeMultiVectorIndex.fromBufferLoaded(bytes)))
    return MultiVectorIndex.#wrap(() => native.NativeMultiVectorIndex.adoptLoaded(loaded))
  }

  /** Blocking twin of {@link fromBuffer}. */
  static fromBufferSync(buffer: Uint8Array): MultiVectorIndex {
    const bytes = checkBuffer(buffer)
    return MultiVectorIndex.#wrap(() => native.NativeMultiVectorIndex.fromBufferSync(bytes))
  }

  static #wrap(make: () => native.NativeMultiVectorIndex): MultiVectorIndex {
    return new MultiVectorIndex(new LoadedMultiVector(callNative(make)) as unknown as MultiVectorIndexOptions)
  }

  /** Saves the index to `path` atomically (temporary file, fsync, rename, folder fsync): a
   * save that fails or is killed leaves the previous file intact. */
  async save(path: string): Promise<void> {
    const file = checkPath(path)
    return awaitNative(callNative(() => this.#handle().save(file)))
  }

  /** Blocking twin of {@link save}. */
  saveSync(path: string): void {
    const file = checkPath(path)
    callNative(() => this.#handle().saveSync(file))
  }

  /** The index as one file image (what {@link save} writes). */
  async toBuffer(): Promise<Buffer> {
    return awaitNative(callNative(() => this.#handle().toBuffer()))
  }

  /** Blocking twin of {@link toBuffer}. */
  toBufferSync(): Buffer {
    return callNative(() => this.#handle().toBufferSync())
  }

  #handle(): native.NativeMultiVectorIndex {
    if (this.#native === null) throw new VecdexError('ERR_CLOSED', 'the index is closed')
    return this.#native
  }

  /** Documents stored. */
  get size(): number {
    return callNative(() => this.#handle().size)
  }

  /** Native bytes held, as reported to V8. */
  get memoryBytes(): number {
    return callNative(() => this.#handle().memoryBytes)
  }

  get closed(): boolean {
    return this.#native === null
  }

  #batch(keys: KeysInput | Key, documents: PointCloudsInput) {
    const keyArray = keyArrayOf(keys)
    const csr = toCsr(documents, this.dimensions, 'documents')
    if (csr.count !== keyArray.length) {
      throw invalidArgument(`${keyArray.length} keys for ${csr.count} documents: give one key per document`)
    }
    return { keyArray, ...csr }
  }

  /**
   * Adds documents under keys (one key per document), replacing the documents of keys already
   * present. Documents are encoded and linked in parallel off the event loop; searches go on
   * meanwhile. The batch is validated whole first: on any error or abort nothing is added.
   */
  async add(keys: KeysInput | Key, documents: PointCloudsInput, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { keyArray, tokens, offsets } = this.#batch(keys, documents)
    using link = abortHandle(checkSignal(options.signal))
    await awaitNative(callNative(() => this.#handle().add(keyArray, tokens, offsets, link.native)), link.signal)
  }

  /** Blocking twin of {@link add}. */
  addSync(keys: KeysInput | Key, documents: PointCloudsInput): void {
    const { keyArray, tokens, offsets } = this.#batch(keys, documents)
    // Validated memory must not change under the native call: copy what other threads share.
    const stable = <T extends Float32Array | Uint32Array | BigUint64Array>(a: T): T => (isShared(a) ? (a.slice() as T) : a)
    callNative(() => this.#handle().addSync(stable(keyArray), stable(tokens), stable(offsets)))
  }

  /**
   * Adds every `{ key, tokens }` an (async) iterable yields, in native batches of `batchSize`
   * documents; the next item is not pulled until the previous batch is stored. A key seen
   * twice keeps its last document. Returns the number of documents added.
   */
  async addStream(
    source: AsyncIterable<DocumentItem> | Iterable<DocumentItem>,
    options: { batchSize?: number; signal?: AbortSignal; onProgress?: (progress: { added: number; batches: number }) => void } = {},
  ): Promise<number> {
    this.#handle()
    if (source == null || (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function' && typeof (source as Iterable<unknown>)[Symbol.iterator] !== 'function')) {
      throw invalidArgument(`source must be an iterable or async iterable, got ${describe(source)}`)
    }
    const batchSize = optionalInteger(options.batchSize, 'batchSize', 1, 1 << 24) ?? 1024
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalidArgument('onProgress must be a function')
    const signal = checkSignal(options.signal)
    let pending = new Map<bigint, Float32Array>()
    let added = 0
    let batches = 0
    const flush = async () => {
      if (pending.size === 0) return
      const batch = pending
      pending = new Map()
      await this.add([...batch.keys()], [...batch.values()], { signal })
      added += batch.size
      batches += 1
      options.onProgress?.({ added, batches })
    }
    let index = 0
    for await (const item of source as AsyncIterable<DocumentItem>) {
      if (signal?.aborted) throw abortError(signal)
      const where = `stream item ${index++}`
      if (item === null || typeof item !== 'object' || !('tokens' in item)) {
        throw invalidArgument(`${where} must be { key, tokens }, got ${describe(item)}`)
      }
      const key = checkKey(item.key, `${where} key`)
      pending.delete(key)
      pending.set(key, toCloud(item.tokens, this.dimensions, `${where} tokens`).slice())
      if (pending.size >= batchSize) await flush()
    }
    await flush()
    return added
  }

  /** Removes documents (unknown keys are ignored); resolves to how many were removed. */
  async remove(keys: KeysInput | Key): Promise<number> {
    const keyArray = keyArrayOf(keys)
    return awaitNative(callNative(() => this.#handle().remove(keyArray)))
  }

  /** Blocking twin of {@link remove}. */
  removeSync(keys: KeysInput | Key): number {
    const keyArray = keyArrayOf(keys)
    return callNative(() => this.#handle().removeSync(keyArray))
  }

  /** The stored tokens of `key` (flat, row-major; normalised under cosine), or undefined. */
  get(key: Key): Float32Array | undefined {
    const k = checkKey(key)
    return callNative(() => this.#handle().get(k)) ?? undefined
  }

  contains(key: Key): boolean {
    const k = checkKey(key)
    return callNative(() => this.#handle().contains(k))
  }

  /** Every key. */
  keys(): BigUint64Array {
    return callNative(() => this.#handle().keys())
  }

  stats(): MultiVectorStats {
    return callNative(() => this.#handle().stats())
  }

  #searchArgs(options: MultiVectorSearchOptions) {
    checkObject(options, 'options')
    return {
      k: checkK(options.k),
      candidates: optionalInteger(options.candidates, 'candidates', 1, MAX_EF) ?? 0,
      ef: optionalInteger(options.efSearch, 'efSearch', 1, MAX_EF) ?? 0,
      ballCarving: optionalThreshold(options.ballCarving),
      strategy: optionalStrategy(options.strategy),
      tokenNeighbours: optionalInteger(options.tokenNeighbours, 'tokenNeighbours', 1, 4096) ?? 0,
      filter: filterArgs(options.filter),
    }
  }

  /**
   * The `k` best documents of a query (one {@link PointCloud}) or of each query of a
   * {@link PointCloudBatch}, by Chamfer similarity: FDE candidates from the graph, reranked
   * exactly. Queries of a batch run in parallel; inputs are copied first.
   */
  async search(queries: PointCloud | PointCloudBatch, options: MultiVectorSearchOptions): Promise<SearchResults> {
    const { k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter } = this.#searchArgs(options)
    const { tokens, offsets } = queriesToCsr(queries, this.dimensions)
    using link = abortHandle(checkSignal(options.signal))
    const r = await awaitNative(callNative(() => this.#handle().search(tokens, offsets, k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter[0], filter[1], link.native)), link.signal)
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /** Blocking twin of {@link search}. */
  searchSync(queries: PointCloud | PointCloudBatch, options: Omit<MultiVectorSearchOptions, 'signal'>): SearchResults {
    const { k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter } = this.#searchArgs(options)
    const { tokens, offsets } = queriesToCsr(queries, this.dimensions)
    const r = callNative(() => this.#handle().searchSync(tokens, offsets, k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter[0], filter[1]))
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /** Exact search: every document scored by Chamfer similarity (a SIMD scan in
   * parallel). Ground truth for {@link search}; its cost grows with the total token count. */
  async searchExact(queries: PointCloud | PointCloudBatch, options: ExactSearchOptions): Promise<SearchResults> {
    checkObject(options, 'options')
    const k = checkK(options.k)
    const filter = filterArgs(options.filter)
    const { tokens, offsets } = queriesToCsr(queries, this.dimensions)
    using link = abortHandle(checkSignal(options.signal))
    const r = await awaitNative(callNative(() => this.#handle().searchExact(tokens, offsets, k, filter[0], filter[1], link.native)), link.signal)
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /** Blocking twin of {@link searchExact}. */
  searchExactSync(queries: PointCloud | PointCloudBatch, options: Omit<ExactSearchOptions, 'signal'>): SearchResults {
    checkObject(options, 'options')
    const k = checkK(options.k)
    const filter = filterArgs(options.filter)
    const { tokens, offsets } = queriesToCsr(queries, this.dimensions)
    const r = callNative(() => this.#handle().searchExactSync(tokens, offsets, k, filter[0], filter[1]))
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /** Whether searches can run: always without compression; with it, once trained. */
  get isTrained(): boolean {
    return callNative(() => this.#handle().isTrained)
  }

  /** Trains the compressed FDE form on sample documents and re-encodes the stored FDEs. */
  async train(sample: PointCloudsInput): Promise<void> {
    const { tokens, offsets } = toCsr(sample, this.dimensions, 'sample')
    await awaitNative(callNative(() => this.#handle().train(tokens, offsets)))
  }

  /** Blocking twin of {@link train}. */
  trainSync(sample: PointCloudsInput): void {
    const { tokens, offsets } = toCsr(sample, this.dimensions, 'sample')
    callNative(() => this.#handle().trainSync(tokens, offsets))
  }

  /** Sizes of the compressed FDE form and of the full FDEs. */
  compressionStats(): CompressionStats {
    return callNative(() => this.#handle().compressionStats()) as CompressionStats
  }

  /** Relinks the FDE graph around removed documents; returns the slots freed. */
  compactSync(): number {
    return callNative(() => this.#handle().compactSync())
  }

  /** Frees the native index now. Idempotent; later calls throw ERR_CLOSED. */
  close(): void {
    const handle = this.#native
    this.#native = null
    handle?.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
