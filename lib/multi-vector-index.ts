import native = require('./native')
import { abortHandle } from './abort'
import { type CompressionOptions, nativeCompression } from './compression'
import { abortError, awaitNative, callNative, invalidArgument, VecdexError } from './errors'
import { type FdeConfig, type FdeOptions, nativeFde } from './fde-encoder'
import { KeyFilter } from './key-filter'
import { checkKey, type Key, type KeysInput, toKeyArray } from './keys'
import { type Csr, oneCloudToCsr, type PointCloud, type PointCloudsInput, toCloud, toCsr } from './point-clouds'
import { checkOptions, checkValue, defaultOf } from './options'
import { SearchResults } from './results'
import { checkObject, describe } from './validate'
import { IndexBase, keyArrayOf, loaders } from './index-base'
import { isShared } from './vector-index'

/** Options of a {@link MultiVectorIndex}. */
export interface MultiVectorIndexOptions extends CompressionOptions {
  /** Dimensions of every token vector (1 to 65,536). */
  dimensions: number
  /** Token similarity: 'cosine' (default; tokens are normalised when added and in queries) or
   * 'dot' (tokens as given). Chamfer sums, over query tokens, the best similarity to a
   * document token. */
  metric?: 'cosine' | 'dot'
  /** The fixed-dimensional encoding (see {@link FdeOptions}). An index's defaults differ from
   * the encoder's: one repetition, no SimHash bit, the identity projection, i.e. the token mean
   * of a document (as many values as a token). On contextual MiniLM token vectors of 116,697
   * WordNet definitions it found more of the exact Chamfer top 10 at every speed than MUVERA's
   * SimHash-partitioned encodings, the paper's 10,240-value one included (README, "Multi-vector
   * retrieval"). Setting `numSimhashProjections` or `numRepetitions` gives the partitioned
   * family; with `projectionType: 'amsSketch'` each block has `projectionDimension` values. */
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

/** The items of `source` in arrays of `size` (the last may be shorter). */
async function* groups<T>(source: AsyncIterable<T> | Iterable<T>, size: number): AsyncGenerator<T[], void, undefined> {
  let group: T[] = []
  for await (const item of source) {
    group.push(item)
    if (group.length === size) {
      yield group
      group = []
    }
  }
  if (group.length > 0) yield group
}

function filterArgs(filter: unknown): [BigUint64Array | undefined, native.NativeKeyFilter | undefined] {
  if (filter instanceof KeyFilter) return [undefined, filter.native]
  return [filter === undefined ? undefined : toKeyArray(filter, 'filter'), undefined]
}

/** A native index made by a static loader, handed to the constructor in place of options. */
class LoadedMultiVector {
  constructor(readonly native: native.NativeMultiVectorIndex) {}
}

function createNative(options: MultiVectorIndexOptions): native.NativeMultiVectorIndex {
  const { dimensions, metric = defaultOf<'cosine' | 'dot'>('MultiVectorIndexOptions', 'metric'), fde, m, efConstruction, efSearch, seed, candidates, ballCarving, strategy, fdeMetric } =
    checkOptions<MultiVectorIndexOptions>(options, 'MultiVectorIndexOptions')
  const settings: native.NativeMultiVectorOptions = {
    fde: nativeFde(fde),
    m,
    efConstruction,
    efSearch,
    seed,
    candidates,
    ballCarving,
    strategy,
    fdeMetric,
    compression: nativeCompression(options),
  }
  return callNative(() => new native.NativeMultiVectorIndex(dimensions, metric, settings))
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
export class MultiVectorIndex extends IndexBase<native.NativeMultiVectorIndex> {
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
    super(created)
    this.dimensions = created.dim
    this.metric = created.metric as 'cosine' | 'dot'
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
    return loaders.load(native.NativeMultiVectorIndex, path, MultiVectorIndex.#wrap)
  }

  /** Blocking twin of {@link load}. */
  static loadSync(path: string): MultiVectorIndex {
    return loaders.loadSync(native.NativeMultiVectorIndex, path, MultiVectorIndex.#wrap)
  }

  /** Rebuilds an index from a {@link toBuffer} image (copied first), off the event loop. */
  static async fromBuffer(buffer: Uint8Array): Promise<MultiVectorIndex> {
    return loaders.fromBuffer(native.NativeMultiVectorIndex, buffer, MultiVectorIndex.#wrap)
  }

  /** Blocking twin of {@link fromBuffer}. */
  static fromBufferSync(buffer: Uint8Array): MultiVectorIndex {
    return loaders.fromBufferSync(native.NativeMultiVectorIndex, buffer, MultiVectorIndex.#wrap)
  }

  static #wrap(index: native.NativeMultiVectorIndex): MultiVectorIndex {
    return new MultiVectorIndex(new LoadedMultiVector(index) as unknown as MultiVectorIndexOptions)
  }

  /** The keys, and exactly one document per key: one key takes one cloud, an array of keys as
   * many clouds as it has keys. */
  #batch(keys: KeysInput | Key, documents: PointCloud | PointCloudsInput) {
    if (typeof keys === 'number' || typeof keys === 'bigint') {
      const keyArray = keyArrayOf(keys)
      return { keyArray, ...oneCloudToCsr(documents, this.dimensions, 'document', 'one key takes one document; give an array of keys for many') }
    }
    const keyArray = keyArrayOf(keys)
    const csr = toCsr(documents, this.dimensions, 'documents')
    if (csr.count !== keyArray.length) {
      throw new VecdexError('ERR_DIMENSION_MISMATCH', `documents: ${keyArray.length} ${keyArray.length === 1 ? 'key needs' : 'keys need'} ${keyArray.length} ${keyArray.length === 1 ? 'document' : 'documents'}, got ${csr.count}`)
    }
    return { keyArray, ...csr }
  }

  /**
   * Adds one document under one key (`add(key, document)`, a {@link PointCloud}), or n documents
   * under n keys (`add(keys, documents)`: n clouds, or a {@link PointCloudBatch} of n). The keys
   * give the count: another number of documents is ERR_DIMENSION_MISMATCH naming both. Documents
   * of keys already present are replaced. Documents are encoded and linked in parallel off the
   * event loop; searches go on meanwhile. The batch is validated whole first: on any error or
   * abort nothing is added.
   */
  async add(key: Key, document: PointCloud, options?: { signal?: AbortSignal }): Promise<void>
  async add(keys: KeysInput, documents: PointCloudsInput, options?: { signal?: AbortSignal }): Promise<void>
  async add(keys: KeysInput | Key, documents: PointCloud | PointCloudsInput, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = checkOptions<{ signal?: AbortSignal }>(options, 'SignalOptions')
    const { keyArray, tokens, offsets } = this.#batch(keys, documents)
    using link = abortHandle(signal)
    await awaitNative(callNative(() => this.handle().add(keyArray, tokens, offsets, link.native)), link.signal)
  }

  /** Blocking twin of {@link add}. */
  addSync(key: Key, document: PointCloud): void
  addSync(keys: KeysInput, documents: PointCloudsInput): void
  addSync(keys: KeysInput | Key, documents: PointCloud | PointCloudsInput): void {
    const { keyArray, tokens, offsets } = this.#batch(keys, documents)
    // Validated memory must not change under the native call: copy what other threads share.
    const stable = <T extends Float32Array | Uint32Array | BigUint64Array>(a: T): T => (isShared(a) ? (a.slice() as T) : a)
    callNative(() => this.handle().addSync(stable(keyArray), stable(tokens), stable(offsets)))
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
    this.handle()
    if (source == null || (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function' && typeof (source as Iterable<unknown>)[Symbol.iterator] !== 'function')) {
      throw invalidArgument(`source must be an iterable or async iterable, got ${describe(source)}`)
    }
    checkOptions(options, 'DocumentStreamOptions')
    const batchSize = options.batchSize ?? defaultOf<number>('DocumentStreamOptions', 'batchSize')
    const signal = options.signal
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

  stats(): MultiVectorStats {
    return callNative(() => this.handle().stats())
  }

  /** A search's options, checked against the core's table; 0 means the index's own. */
  #searchArgs(options: MultiVectorSearchOptions) {
    const { k, candidates = 0, efSearch: ef = 0, ballCarving, strategy, tokenNeighbours = 0, filter } = checkOptions<MultiVectorSearchOptions>(options, 'MultiVectorSearchOptions')
    return { k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter: filterArgs(filter) }
  }

  /** One query cloud as CSR; a batch is an error pointing at `batchMethod`. */
  #query(query: unknown, batchMethod: string): Csr {
    return oneCloudToCsr(query, this.dimensions, 'query', `call ${batchMethod} for a batch`)
  }

  /**
   * The `k` best documents of one query (one {@link PointCloud}: its tokens) by Chamfer
   * similarity, with the index's strategy (FDE candidates from the graph, reranked exactly, by
   * default): a result with one row (`.get(0)`). A batch of queries goes to
   * {@link searchBatch}. The query is copied first.
   */
  async search(query: PointCloud, options: MultiVectorSearchOptions): Promise<SearchResults> {
    return this.#search(this.#query(query, 'searchBatch'), options)
  }

  /**
   * The `k` best documents of each query of a batch (an array of {@link PointCloud}s, or a
   * {@link PointCloudBatch}), as {@link search}: row `i` of the result answers query `i`. The
   * queries run in parallel; they are copied first.
   */
  async searchBatch(queries: PointCloudsInput, options: MultiVectorSearchOptions): Promise<SearchResults> {
    return this.#search(toCsr(queries, this.dimensions, 'queries'), options)
  }

  async #search({ tokens, offsets }: Csr, options: MultiVectorSearchOptions): Promise<SearchResults> {
    const { k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter } = this.#searchArgs(options)
    using link = abortHandle(options.signal)
    const r = await awaitNative(callNative(() => this.handle().search(tokens, offsets, k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter[0], filter[1], link.native)), link.signal)
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /** Blocking twin of {@link search}. */
  searchSync(query: PointCloud, options: Omit<MultiVectorSearchOptions, 'signal'>): SearchResults {
    return this.#searchSync(this.#query(query, 'searchBatchSync'), options)
  }

  /** Blocking twin of {@link searchBatch}. */
  searchBatchSync(queries: PointCloudsInput, options: Omit<MultiVectorSearchOptions, 'signal'>): SearchResults {
    return this.#searchSync(toCsr(queries, this.dimensions, 'queries'), options)
  }

  #searchSync({ tokens, offsets }: Csr, options: Omit<MultiVectorSearchOptions, 'signal'>): SearchResults {
    const { k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter } = this.#searchArgs(options)
    const r = callNative(() => this.handle().searchSync(tokens, offsets, k, candidates, ef, ballCarving, strategy, tokenNeighbours, filter[0], filter[1]))
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /**
   * Searches every query an (async) iterable yields (each item one query cloud, as for
   * {@link search}), in batches of `batchSize` queries, yielding one {@link SearchResults} per
   * batch, its rows in item order. One batch is searched ahead while the consumer works on the
   * previous one; breaking out early aborts it and releases its native state.
   */
  async *searchStream(
    queries: AsyncIterable<PointCloud> | Iterable<PointCloud>,
    options: MultiVectorSearchOptions & { batchSize?: number },
  ): AsyncGenerator<SearchResults, void, undefined> {
    const { batchSize, ...searchOptions } = checkObject<typeof options>(options, 'options')
    checkOptions(searchOptions, 'MultiVectorSearchOptions')
    const size = batchSize === undefined ? defaultOf<number>('SearchStreamOptions', 'batchSize') : checkValue<number>('SearchStreamOptions', 'batchSize', batchSize)
    const search = (batch: PointCloud[], signal: AbortSignal) => this.searchBatch(batch, { ...searchOptions, signal })
    yield* this.searchAhead(groups(queries, size), search, options.signal)
  }

  /**
   * Exact search of one query (one {@link PointCloud}): every document scored by Chamfer
   * similarity (a SIMD scan in parallel); a result with one row. Ground truth for
   * {@link search}; its cost grows with the total token count. A batch goes to
   * {@link searchExactBatch}.
   */
  async searchExact(query: PointCloud, options: ExactSearchOptions): Promise<SearchResults> {
    return this.#searchExact(this.#query(query, 'searchExactBatch'), options)
  }

  /** Exact search of each query of a batch (an array of {@link PointCloud}s, or a
   * {@link PointCloudBatch}), as {@link searchExact}: row `i` answers query `i`. */
  async searchExactBatch(queries: PointCloudsInput, options: ExactSearchOptions): Promise<SearchResults> {
    return this.#searchExact(toCsr(queries, this.dimensions, 'queries'), options)
  }

  async #searchExact({ tokens, offsets }: Csr, options: ExactSearchOptions): Promise<SearchResults> {
    checkOptions(options, 'ExactSearchOptions')
    const k = options.k
    const filter = filterArgs(options.filter)
    using link = abortHandle(options.signal)
    const r = await awaitNative(callNative(() => this.handle().searchExact(tokens, offsets, k, filter[0], filter[1], link.native)), link.signal)
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /** Blocking twin of {@link searchExact}. */
  searchExactSync(query: PointCloud, options: Omit<ExactSearchOptions, 'signal'>): SearchResults {
    return this.#searchExactSync(this.#query(query, 'searchExactBatchSync'), options)
  }

  /** Blocking twin of {@link searchExactBatch}. */
  searchExactBatchSync(queries: PointCloudsInput, options: Omit<ExactSearchOptions, 'signal'>): SearchResults {
    return this.#searchExactSync(toCsr(queries, this.dimensions, 'queries'), options)
  }

  #searchExactSync({ tokens, offsets }: Csr, options: Omit<ExactSearchOptions, 'signal'>): SearchResults {
    checkOptions(options, 'ExactSearchOptions')
    const k = options.k
    const filter = filterArgs(options.filter)
    const r = callNative(() => this.handle().searchExactSync(tokens, offsets, k, filter[0], filter[1]))
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  /**
   * Trains the compressed FDE form on sample documents and re-encodes the stored FDEs. The
   * model is learnt beside searches (they go on with the old one) and swapped in at the end;
   * an abort before the swap rejects with ERR_ABORTED and leaves the index as it was.
   */
  async train(sample: PointCloudsInput, options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = checkOptions<{ signal?: AbortSignal }>(options, 'SignalOptions')
    const { tokens, offsets } = toCsr(sample, this.dimensions, 'sample')
    using link = abortHandle(signal)
    await awaitNative(callNative(() => this.handle().train(tokens, offsets, link.native)), link.signal)
  }

  /** Blocking twin of {@link train}. */
  trainSync(sample: PointCloudsInput): void {
    const { tokens, offsets } = toCsr(sample, this.dimensions, 'sample')
    callNative(() => this.handle().trainSync(tokens, offsets))
  }

  /**
   * Relinks the FDE graph around removed documents, so no link leads to one, and frees their
   * slots for later adds. Searches keep running meanwhile. Resolves to the slots freed.
   */
  async compact(options: { signal?: AbortSignal } = {}): Promise<number> {
    const { signal } = checkOptions<{ signal?: AbortSignal }>(options, 'SignalOptions')
    using link = abortHandle(signal)
    // Awaited here, not returned: `using` unlinks the signal when this method returns.
    return await awaitNative(callNative(() => this.handle().compact(link.native)), link.signal)
  }

  /** Blocking twin of {@link compact}. */
  compactSync(): number {
    return callNative(() => this.handle().compactSync())
  }
}
