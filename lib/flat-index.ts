import native = require('./native')
import { abortHandle } from './abort'
import { type CompressionOptions, nativeCompression } from './compression'
import { awaitNative, callNative } from './errors'
import { SearchResults } from './results'
import { checkDimensions, checkMetric, checkObject, checkSignal, type Metric, type VectorsInput } from './validate'
import { checkBuffer, checkPath, LoadedNative, loadedParts, type NativeParts, type QueryArgs, type SearchOptions, VectorIndex } from './vector-index'

export type { AddOptions, SearchOptions } from './vector-index'

/** Options of a {@link FlatIndex}; with compression options it scans compact codes and rescores
 * the best candidates exactly (see {@link CompressionOptions}). */
export interface FlatIndexOptions extends CompressionOptions {
  /** Dimensions of every vector (1 to 65,536). */
  dimensions: number
  /** Distance metric: 'cosine' (default; vectors are normalised when added), 'dot' or 'l2sq'. */
  metric?: Exclude<Metric, 'hamming'>
}

type FlatSearchHandle = ReturnType<native.NativeFlatIndex['searchHandle']>

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
function flatParts(options: FlatIndexOptions | LoadedNative<native.NativeFlatIndex>): NativeParts<native.NativeFlatIndex> {
  if (options instanceof LoadedNative) return loadedParts(options)
  checkObject(options, 'options')
  const dimensions = checkDimensions(options.dimensions)
  const metric = checkMetric(options.metric ?? 'cosine', ['cosine', 'dot', 'l2sq']) as Exclude<Metric, 'hamming'>
  const compression = nativeCompression(options)
  return { dimensions, metric, create: () => new native.NativeFlatIndex(dimensions, metric, compression) }
}

export class FlatIndex extends VectorIndex<native.NativeFlatIndex, FlatSearchHandle, SearchOptions> {
  constructor(options: FlatIndexOptions) {
    super(flatParts(options), (index) => index.searchHandle())
  }

  /** Loads an index saved by {@link save}, off the event loop. The whole file is checked
   * first: a damaged or crafted file rejects with ERR_CORRUPT_FILE (ERR_UNSUPPORTED_FORMAT for
   * a newer format, ERR_IO when it cannot be read). */
  static async load(path: string): Promise<FlatIndex> {
    const file = checkPath(path)
    const loaded = await awaitNative(callNative(() => native.NativeFlatIndex.loadLoaded(file)))
    return FlatIndex.#wrap(() => native.NativeFlatIndex.adoptLoaded(loaded))
  }

  /** Blocking twin of {@link load}. */
  static loadSync(path: string): FlatIndex {
    const file = checkPath(path)
    return FlatIndex.#wrap(() => native.NativeFlatIndex.loadSync(file))
  }

  /** Rebuilds an index from a {@link toBuffer} image (copied first), off the event loop;
   * checked like a file. */
  static async fromBuffer(buffer: Uint8Array): Promise<FlatIndex> {
    const bytes = checkBuffer(buffer)
    const loaded = await awaitNative(callNative(() => native.NativeFlatIndex.fromBufferLoaded(bytes)))
    return FlatIndex.#wrap(() => native.NativeFlatIndex.adoptLoaded(loaded))
  }

  /** Blocking twin of {@link fromBuffer}. */
  static fromBufferSync(buffer: Uint8Array): FlatIndex {
    const bytes = checkBuffer(buffer)
    return FlatIndex.#wrap(() => native.NativeFlatIndex.fromBufferSync(bytes))
  }

  static #wrap(make: () => native.NativeFlatIndex): FlatIndex {
    return new FlatIndex(new LoadedNative(callNative(make)) as unknown as FlatIndexOptions)
  }

  /**
   * The `k` nearest vectors of each query (one vector, or a flat n × dimensions batch), exact.
   * Runs on the thread pool; the query data is copied first, so the caller may reuse it.
   */
  async search(queries: VectorsInput, options: SearchOptions): Promise<SearchResults> {
    const { k, matrix, filter, prepared, oversample, rescore } = this.queryArgs(queries, options)
    using link = abortHandle(checkSignal(options.signal))
    const r = await awaitNative(callNative(() => this.handle().search(matrix, k, oversample, rescore, filter, prepared, link.native)), link.signal)
    return new SearchResults(r.k, r.keys, r.distances, r.counts)
  }

  protected searchInto(handle: FlatSearchHandle, args: QueryArgs, _options: SearchOptions, query: Float32Array, out: Uint8Array, offset: number, cells: number): number {
    return native.searchIntoSyncFast(handle, query, args.k, args.oversample, args.rescore, args.filter, args.prepared, out, offset, cells)
  }
}
