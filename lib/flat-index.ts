import native = require('./native')
import { abortHandle } from './abort'
import { type CompressionOptions, type MemoryParts, nativeCompression } from './compression'
import { awaitNative, callNative } from './errors'
import { SearchResults } from './results'
import type { FullVectorsOptions, HnswIndexOptions } from './hnsw-index'
import { checkOptions, defaultOf } from './options'
import { type Metric, type VectorInput, type VectorsInput } from './validate'
import { loaders } from './index-base'
import { LoadedNative, loadedParts, type NativeParts, type QueryArgs, type SearchOptions, VectorIndex } from './vector-index'

export type { AddOptions, SearchOptions, TrainOptions } from './vector-index'

/** Options of a {@link FlatIndex}; with compression options it scans compact codes and rescores
 * the best candidates exactly (see {@link CompressionOptions}). */
export interface FlatIndexOptions extends CompressionOptions {
  /** Dimensions of every vector (1 to 65,536). */
  dimensions: number
  /** Distance metric: 'cosine' (default; vectors are normalised when added), 'dot' or 'l2sq'. */
  metric?: Exclude<Metric, 'hamming'>
  /** Where the full f32 vectors are kept: 'memory' (default) or `{ path }`, a file of their
   * own read only to rescore candidates (see {@link HnswIndexOptions.fullVectors}: the same
   * file and rules). Needs a `quantization` or a reduction. */
  fullVectors?: 'memory' | FullVectorsOptions
}

/** Shape and size of a {@link FlatIndex} (see {@link FlatIndex.stats}). */
export interface FlatStats {
  /** Live vectors. */
  size: number
  /** Bytes of the whole index in memory: vectors, codes, keys and slots. */
  memoryBytes: number
  /** Bytes of the full-precision vectors (kept also when compressed, for rescoring: in memory,
   * or in their file with `fullVectors: { path }`). */
  vectorBytes: number
  /** Bytes of the compressed codes (0 without compression or before training). */
  codeBytes: number
  /** `memoryBytes` by part. */
  memory: MemoryParts
}

type FlatMetric = Exclude<Metric, 'hamming'>

type FlatSearchHandle = ReturnType<native.NativeFlatIndex['searchHandle']>

function flatParts(options: FlatIndexOptions | LoadedNative<native.NativeFlatIndex>): NativeParts<native.NativeFlatIndex> {
  if (options instanceof LoadedNative) return loadedParts(options)
  const { dimensions, metric = defaultOf<FlatMetric>('FlatIndexOptions', 'metric'), fullVectors } = checkOptions<FlatIndexOptions>(options, 'FlatIndexOptions')
  const compression = nativeCompression(options)
  const fullVectorsPath = typeof fullVectors === 'object' ? fullVectors.path : undefined
  return { dimensions, metric, create: () => new native.NativeFlatIndex(dimensions, metric, compression, fullVectorsPath) }
}

/**
 * Exact (brute-force) nearest-neighbour index of f32 vectors under unsigned integer keys.
 *
 * Batch search runs as a tiled matrix product on vecdex's thread pool with top-k selection
 * fused in, so it is exact and fast. Async methods return Promises and never block the event
 * loop; `…Sync` twins block. Close it (or `using`) to free native memory at once.
 *
 * ```ts
 * using index = new FlatIndex({ dimensions: 3, metric: 'cosine' })
 * await index.add([1, 2], [[1, 0, 0], [0, 1, 0]])
 * const hits = (await index.search([0.9, 0.1, 0], { k: 1 })).get(0)
 * ```
 */
export class FlatIndex extends VectorIndex<native.NativeFlatIndex, FlatSearchHandle, SearchOptions> {
  constructor(options: FlatIndexOptions) {
    super(flatParts(options), (index) => index.searchHandle())
  }

  /** Loads an index saved by {@link save}, off the event loop. The whole file is checked
   * first: a damaged or crafted file rejects with ERR_CORRUPT_FILE (ERR_UNSUPPORTED_FORMAT for
   * a newer format, ERR_IO when it cannot be read). */
  static async load(path: string): Promise<FlatIndex> {
    return loaders.load(native.NativeFlatIndex, path, FlatIndex.#wrap)
  }

  /** Blocking twin of {@link load}. */
  static loadSync(path: string): FlatIndex {
    return loaders.loadSync(native.NativeFlatIndex, path, FlatIndex.#wrap)
  }

  protected get searchOptionSet() {
    return 'SearchOptions' as const
  }

  /** Shape and size of the index, read in one call. */
  stats(): FlatStats {
    const handle = this.handle()
    // One native read: the parts come with the code and vector figures, so `memoryBytes` is
    // their sum and agrees with them even while a write lands.
    const compression = callNative(() => handle.compressionStats())
    const memory = compression.memory
    const memoryBytes = memory.vectors + memory.codes + memory.graph + memory.ids
    return { size: handle.size, memoryBytes, vectorBytes: compression.vectorBytes, codeBytes: compression.codeBytes, memory }
  }

  /** Rebuilds an index from a {@link toBuffer} image (copied first), off the event loop;
   * checked like a file. */
  static async fromBuffer(buffer: Uint8Array): Promise<FlatIndex> {
    return loaders.fromBuffer(native.NativeFlatIndex, buffer, FlatIndex.#wrap)
  }

  /** Blocking twin of {@link fromBuffer}. */
  static fromBufferSync(buffer: Uint8Array): FlatIndex {
    return loaders.fromBufferSync(native.NativeFlatIndex, buffer, FlatIndex.#wrap)
  }

  static #wrap(index: native.NativeFlatIndex): FlatIndex {
    return new FlatIndex(new LoadedNative(index) as unknown as FlatIndexOptions)
  }

  /**
   * The `k` nearest vectors of one query, exact: a result with one row (`.get(0)`). The query
   * is exactly `dimensions` numbers; any other length is ERR_DIMENSION_MISMATCH (a batch goes to
   * {@link searchBatch}). Runs on the thread pool; the query is copied first, so the caller may
   * reuse it.
   */
  async search(query: VectorInput, options: SearchOptions): Promise<SearchResults> {
    return this.#search(this.queryArgs(query, options, 'searchBatch'), options)
  }

  /**
   * The `k` nearest vectors of each query of a batch, exact: an array of rows, or a flat
   * Float32Array of n × dimensions values (another length is ERR_DIMENSION_MISMATCH). Row `i`
   * of the result answers query `i`. The batch runs as one tiled scan on the thread pool; the
   * queries are copied first, so the caller may reuse them.
   */
  async searchBatch(queries: VectorsInput, options: SearchOptions): Promise<SearchResults> {
    return this.#search(this.queryArgs(queries, options), options)
  }

  async #search({ k, matrix, filter, prepared, oversample, rescore }: QueryArgs, options: SearchOptions): Promise<SearchResults> {
    // The signal was checked with the other options (queryArgs).
    using link = abortHandle(options.signal)
    const r = await awaitNative(callNative(() => this.handle().search(matrix, k, oversample, rescore, filter, prepared, link.native)), link.signal)
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  protected searchInto(handle: FlatSearchHandle, args: QueryArgs, _options: SearchOptions, query: Float32Array, out: Uint8Array, offset: number, cells: number): number {
    return native.searchIntoSyncFast(handle, query, args.k, args.oversample, args.rescore, args.filter, args.prepared, out, offset, cells)
  }
}
