import native = require('./native')
import { abortHandle } from './abort'
import { type CompressionOptions, type MemoryParts, nativeCompression } from './compression'
import { awaitNative, callNative } from './errors'
import { SearchResults } from './results'
import { checkOptions, defaultOf } from './options'
import { type Metric, type VectorInput, type VectorsInput } from './validate'
import { loaders } from './index-base'
import { checkPath, LoadedNative, loadedParts, type NativeParts, type QueryArgs, type SearchOptions, VectorIndex } from './vector-index'

/** Order in which a batch is linked into the graph (see {@link HnswIndexOptions.insertionOrder}). */
export type InsertionOrder = 'given' | 'random' | 'lid'

/** Options of an {@link HnswIndex}. Names follow the HNSW paper (Malkov & Yashunin). */
export interface HnswIndexOptions extends CompressionOptions {
  /** Dimensions of every vector (1 to 65,536). */
  dimensions: number
  /** Distance metric: 'cosine' (default; vectors are normalised when added), 'dot' or 'l2sq'. */
  metric?: Exclude<Metric, 'hamming'>
  /** Links per node on the upper layers; layer 0 keeps up to 2m. 2 to 256, default 16. More
   * links raise recall and memory and slow the build. */
  m?: number
  /** Candidates considered when linking a new vector (1 to 65,536, default 128). Higher builds
   * a better graph, more slowly. */
  efConstruction?: number
  /** Candidates a search keeps unless the call gives its own `efSearch` (default 64). Higher
   * raises recall and lowers speed; it is always at least `k`. */
  efSearch?: number
  /** Seed of node levels and of the 'random' insertion order. With one thread
   * (VECDEX_THREADS=1), a seeded build is deterministic. Default fixed. */
  seed?: number
  /**
   * Order in which each added batch is linked: 'given' (default), 'random' (seeded shuffle) or
   * 'lid' (highest estimated local intrinsic dimensionality first, after Elliott & Clark 2024).
   * The README gives the measured effect on GloVe.
   */
  insertionOrder?: InsertionOrder
  /**
   * Where the full f32 vectors are kept (a compressed index reads them only to rescore its
   * candidates): 'memory' (default), or `{ path }`: in a file of their own that the index
   * owns, memory-mapped read-only, so only the candidates' rows are read (the page cache
   * holds them, not the process's heap). Needs a `quantization` or a reduction.
   *
   * The file is appended to and never changed in place: adds append rows, and a save makes
   * them durable before the index file that refers to them is written, so a crash leaves the
   * last saved index valid. The index file records the file's absolute path, its length and a
   * checksum per MiB; opening the index reads the file once to check them (damage is
   * ERR_CORRUPT_FILE, a missing file ERR_IO). Rows of removed or replaced vectors stay in the
   * file: it grows with every vector ever added. A path that holds another file is refused;
   * an existing vector file of the same row size is appended to.
   */
  fullVectors?: 'memory' | FullVectorsOptions
}

/** Full vectors in a file (see {@link HnswIndexOptions.fullVectors}). */
export interface FullVectorsOptions {
  /** The file's path (created when missing). */
  path: string
}

/** Options of an HNSW search. */
export interface HnswSearchOptions extends SearchOptions {
  /** Candidates kept by this search (1 to 65,536; default: the index's `efSearch`). */
  efSearch?: number
}

/** Shape and size of an {@link HnswIndex}. */
export interface HnswStats {
  /** Live vectors. */
  size: number
  /** Removed vectors not yet compacted: their nodes remain in the graph as waypoints. */
  tombstones: number
  /** Compacted slots that later adds reuse before taking new ones. */
  freeSlots: number
  /** Layers of the graph (highest level + 1). */
  levels: number
  /** Slots (live, tombstones and free) on each layer, layer 0 first. */
  nodesPerLevel: number[]
  /** Mean links per node on layer 0. */
  meanDegree: number
  /**
   * Graph health: live vectors that no walk from the entry point reaches on layer 0, so no
   * search could return them. Every write repairs the graph, so this is 0; it is counted anew
   * by each `stats()` call (a walk over every link: tens of milliseconds per 100,000 vectors).
   */
  unreachable: number
  /**
   * Graph health: live vectors from which no walk on layer 0 leads back to the entry point (a
   * search that descends there would miss the rest of the graph). Kept at 0 like `unreachable`.
   */
  deadEnds: number
  /** Bytes of the whole index in memory: vectors, codes, graph, keys and slots. */
  memoryBytes: number
  /** `memoryBytes` by part. */
  memory: MemoryParts
}

type HnswSearchHandle = ReturnType<native.NativeHnswIndex['searchHandle']>


function hnswParts(options: HnswIndexOptions | LoadedNative<native.NativeHnswIndex>): NativeParts<native.NativeHnswIndex> {
  if (options instanceof LoadedNative) return loadedParts(options)
  const { dimensions, metric = defaultOf<Exclude<Metric, 'hamming'>>('HnswIndexOptions', 'metric'), m, efConstruction, efSearch, seed, insertionOrder, fullVectors } = checkOptions<HnswIndexOptions>(options, 'HnswIndexOptions')
  const fullVectorsPath = typeof fullVectors === 'object' ? fullVectors.path : undefined
  const settings = { m, efConstruction, efSearch, seed, insertionOrder, compression: nativeCompression(options), fullVectorsPath }
  return { dimensions, metric, create: () => new native.NativeHnswIndex(dimensions, metric, settings) }
}

/**
 * Approximate nearest-neighbour index: a Hierarchical Navigable Small World graph (Malkov &
 * Yashunin, arXiv 1603.09320) over f32 vectors under unsigned integer keys.
 *
 * Batches are linked in parallel on vecdex's thread pool, and searches (async or sync) keep
 * running while a batch is added. Adding an existing key replaces its vector; removed keys
 * leave tombstones that searches skip. Compaction relinks the graph around them and frees
 * their slots for later adds: an add runs it first once tombstones reach a tenth of the
 * slots, or call {@link HnswIndex.compact}. A filter
 * (allow-list of keys) is applied inside the graph walk; when it admits few vectors the search
 * scans those exactly, so recall stays high at any selectivity.
 *
 * ```ts
 * using index = new HnswIndex({ dimensions: 100, metric: 'cosine' })
 * await index.add(keys, vectors)
 * const hits = index.searchSync(query, { k: 10, efSearch: 128 }).get(0)
 * ```
 */
export class HnswIndex extends VectorIndex<native.NativeHnswIndex, HnswSearchHandle, HnswSearchOptions> {
  readonly m: number
  readonly efConstruction: number
  readonly efSearch: number

  constructor(options: HnswIndexOptions) {
    super(hnswParts(options), (index) => index.searchHandle())
    const created = this.handle()
    this.m = created.m
    this.efConstruction = created.efConstruction
    this.efSearch = created.efSearch
  }

  /** Loads an index saved by {@link save}, off the event loop. The whole file is checked
   * first (every checksum, every link, level and count): a damaged or crafted file rejects with
   * ERR_CORRUPT_FILE (ERR_UNSUPPORTED_FORMAT for a newer format, ERR_IO when it cannot be
   * read). */
  static async load(path: string): Promise<HnswIndex> {
    return loaders.load(native.NativeHnswIndex, path, HnswIndex.#wrap)
  }

  /** Blocking twin of {@link load}. */
  static loadSync(path: string): HnswIndex {
    return loaders.loadSync(native.NativeHnswIndex, path, HnswIndex.#wrap)
  }

  /**
   * A read-only view of a saved index: the file is memory-mapped and searched in place, so it
   * opens in a fraction of a load's time and its vectors and links live in the operating
   * system's page cache (shared between processes viewing the same file), not in this
   * process's heap. The file is checked like a load first. Writes (add, remove, train,
   * compact) throw ERR_READ_ONLY. Views suit files only vecdex writes: vecdex's saves replace a
   * file (the view keeps reading the old one), but another program rewriting it in place would
   * pull it from under the view.
   */
  static async view(path: string): Promise<HnswIndex> {
    const file = checkPath(path)
    const loaded = await awaitNative(callNative(() => native.NativeHnswIndex.viewLoaded(file)))
    return HnswIndex.#wrap(callNative(() => native.NativeHnswIndex.adoptLoaded(loaded)))
  }

  /** Blocking twin of {@link view}. */
  static viewSync(path: string): HnswIndex {
    const file = checkPath(path)
    return HnswIndex.#wrap(callNative(() => native.NativeHnswIndex.viewSync(file)))
  }

  /** Whether this index is a read-only view of a file (see {@link view}). */
  get readOnly(): boolean {
    return callNative(() => this.handle().readOnly)
  }

  /** Rebuilds an index from a {@link toBuffer} image (copied first), off the event loop;
   * checked like a file. */
  static async fromBuffer(buffer: Uint8Array): Promise<HnswIndex> {
    return loaders.fromBuffer(native.NativeHnswIndex, buffer, HnswIndex.#wrap)
  }

  /** Blocking twin of {@link fromBuffer}. */
  static fromBufferSync(buffer: Uint8Array): HnswIndex {
    return loaders.fromBufferSync(native.NativeHnswIndex, buffer, HnswIndex.#wrap)
  }

  static #wrap(index: native.NativeHnswIndex): HnswIndex {
    return new HnswIndex(new LoadedNative(index) as unknown as HnswIndexOptions)
  }

  protected get searchOptionSet() {
    return 'HnswSearchOptions' as const
  }

  /** efSearch of a search, already checked against the table; 0: the index's own. */
  #ef(options: HnswSearchOptions): number {
    return options.efSearch ?? 0
  }

  /**
   * The `k` nearest vectors of one query, approximately: a result with one row (`.get(0)`).
   * The query is exactly `dimensions` numbers; any other length is ERR_DIMENSION_MISMATCH (a
   * batch goes to {@link searchBatch}). Runs on the thread pool; the query is copied first, so
   * the caller may reuse it.
   */
  async search(query: VectorInput, options: HnswSearchOptions): Promise<SearchResults> {
    return this.#search(this.queryArgs(query, options, 'searchBatch'), options)
  }

  /**
   * The `k` nearest vectors of each query of a batch, approximately: an array of rows, or a
   * flat Float32Array of n × dimensions values (another length is ERR_DIMENSION_MISMATCH).
   * Row `i` of the result answers query `i`. The queries run in parallel on the thread pool;
   * they are copied first, so the caller may reuse them.
   */
  async searchBatch(queries: VectorsInput, options: HnswSearchOptions): Promise<SearchResults> {
    return this.#search(this.queryArgs(queries, options), options)
  }

  async #search({ k, matrix, filter, prepared, oversample, rescore }: QueryArgs, options: HnswSearchOptions): Promise<SearchResults> {
    const ef = this.#ef(options)
    // The signal was checked with the other options (queryArgs).
    using link = abortHandle(options.signal)
    const r = await awaitNative(callNative(() => this.handle().search(matrix, k, ef, oversample, rescore, filter, prepared, link.native)), link.signal)
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  protected searchInto(handle: HnswSearchHandle, args: QueryArgs, options: HnswSearchOptions, query: Float32Array, out: Uint8Array, offset: number, cells: number): number {
    return native.hnswSearchIntoSyncFast(handle, query, args.k, this.#ef(options), args.oversample, args.rescore, args.filter, args.prepared, out, offset, cells)
  }

  /**
   * Relinks the graph around every removed vector, so no link leads to one (recall recovers
   * after many removals), and frees their slots for later adds. Searches keep running
   * meanwhile. Resolves to the number of slots freed.
   */
  async compact(options: { signal?: AbortSignal } = {}): Promise<number> {
    using link = abortHandle(checkOptions<{ signal?: AbortSignal }>(options, 'SignalOptions').signal)
    // Awaited here, not returned: `using` unlinks the signal when this method returns.
    return await awaitNative(callNative(() => this.handle().compact(link.native)), link.signal)
  }

  /** Blocking twin of {@link compact}. */
  compactSync(): number {
    return callNative(() => this.handle().compactSync())
  }

  /** Shape and size of the graph. */
  stats(): HnswStats {
    return callNative(() => this.handle().stats())
  }
}
