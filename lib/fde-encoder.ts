import native = require('./native')
import { abortHandle } from './abort'
import { awaitNative, callNative, VecdexError } from './errors'
import { checkOptions } from './options'
import { type PointCloud, type PointCloudsInput, toCloud, toCsr } from './point-clouds'
import { checkDimensions } from './validate'

/**
 * Parameters of a MUVERA fixed-dimensional encoding (Dhulipala et al., NeurIPS 2024, arXiv
 * 2405.19504), named as in the paper's reference implementation.
 *
 * The encoding has `numRepetitions × 2^numSimhashProjections × projectionDimension` values
 * (the token dimension instead of `projectionDimension` with the identity projection), or
 * `finalProjectionDimension` when set. Defaults: 20 repetitions, 5 SimHash bits, AMS sketch to
 * 16 values, empty partitions filled: 10,240 values, the paper's recommended trade-off.
 */
export interface FdeOptions {
  /** Independent repetitions, concatenated (1 or more; default 20). More raise accuracy, size
   * and encoding time linearly. */
  numRepetitions?: number
  /** SimHash bits per repetition (0 to 30; default 5): 2^k partitions of token space. */
  numSimhashProjections?: number
  /** Seed of every random draw (integer below 2^53; default 1). Encodings are reproducible
   * from (options, seed) on every machine: vecdex pins its own generator (`config.rngVersion`). */
  seed?: number
  /** 'amsSketch' (default): each token is sketched to `projectionDimension` values; 'identity':
   * tokens are kept whole. */
  projectionType?: 'identity' | 'amsSketch'
  /** Values per partition with 'amsSketch' (default 16). */
  projectionDimension?: number
  /** Document encodings: an empty partition takes the token whose SimHash signs are nearest to
   * the partition's (default true). */
  fillEmptyPartitions?: boolean
  /** Count-Sketch the whole encoding to this many values (default: none). */
  finalProjectionDimension?: number
}

/** The resolved configuration of an encoder. */
export type FdeConfig = native.NativeFdeConfig

/** FDE options as the native layer takes them (already checked against the core's table). */
export function nativeFde(options: FdeOptions | undefined): native.NativeFdeOptions | undefined {
  if (options === undefined) return undefined
  const { numRepetitions, numSimhashProjections, seed, projectionType, projectionDimension, fillEmptyPartitions, finalProjectionDimension } = options
  return { numRepetitions, numSimhashProjections, seed, projectionType, projectionDimension, fillEmptyPartitions, finalProjectionDimension }
}

/**
 * Turns point clouds (sets of token vectors, as late-interaction models like ColBERT give) into
 * single vectors whose inner product approximates Chamfer similarity:
 * `⟨encodeQuery(Q), encodeDocument(P)⟩ / numRepetitions ≈ Σ_{q∈Q} max_{p∈P} ⟨q, p⟩`.
 * Queries and documents are encoded differently (sums versus means per partition).
 *
 * Tokens: finite, with a Euclidean norm of at most 2^30 (≈ 1.07e9; squared norm 2^60), the rule
 * of every entry point that takes tokens (ERR_INVALID_ARGUMENT otherwise), so every encoding is
 * finite. Encodings that do not fit in memory (clouds × `outputDimension` values, or one cloud's
 * tokens × the block size) are ERR_OUT_OF_MEMORY, never a crash.
 *
 * ```ts
 * using fde = new FdeEncoder({ dimensions: 128 })
 * const docs = await fde.encodeDocuments(documentTokenSets)   // n × fde.outputDimension
 * const q = fde.encodeQuery(queryTokens)
 * ```
 *
 * The encoder holds native memory (its projections): `close()` (or `using`) frees it at once;
 * later calls throw ERR_CLOSED, and encodings already running finish.
 */
export class FdeEncoder implements Disposable {
  #native: native.NativeFdeEncoder | null
  /** The resolved configuration, with `dimensions`, `outputDimension` and `rngVersion`. */
  readonly config: FdeConfig

  constructor(options: FdeOptions & { dimensions: number }) {
    const { dimensions } = checkOptions<FdeOptions & { dimensions: number }>(options, 'FdeEncoderOptions')
    const settings = nativeFde(options)
    const encoder = callNative(() => new native.NativeFdeEncoder(dimensions, settings))
    this.#native = encoder
    this.config = callNative(() => encoder.config)
  }

  #encoder(): native.NativeFdeEncoder {
    if (this.#native === null) throw new VecdexError('ERR_CLOSED', 'the encoder is closed')
    return this.#native
  }

  /** Dimensions of every token. */
  get dimensions(): number {
    return this.config.dimensions
  }

  /** Length of every encoding. */
  get outputDimension(): number {
    return this.config.outputDimension
  }

  /** Query-side encoding of one point cloud. */
  encodeQuery(query: PointCloud): Float32Array {
    return this.#one(query, 'query')
  }

  /** Document-side encoding of one point cloud. */
  encodeDocument(document: PointCloud): Float32Array {
    return this.#one(document, 'document')
  }

  #one(cloud: PointCloud, side: 'query' | 'document'): Float32Array {
    const encoder = this.#encoder()
    const tokens = toCloud(cloud, this.dimensions, side)
    const offsets = Uint32Array.of(0, tokens.length / this.dimensions)
    return callNative(() => encoder.encodeSync(tokens, offsets, side))
  }

  /** Query-side encodings of many clouds, row-major (`count × outputDimension`), in parallel
   * off the event loop. */
  encodeQueries(queries: PointCloudsInput, options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    return this.#many(queries, 'query', options)
  }

  /** Document-side encodings of many clouds, row-major, in parallel off the event loop. */
  encodeDocuments(documents: PointCloudsInput, options: { signal?: AbortSignal } = {}): Promise<Float32Array> {
    return this.#many(documents, 'document', options)
  }

  /** Blocking twin of {@link encodeQueries}. */
  encodeQueriesSync(queries: PointCloudsInput): Float32Array {
    const encoder = this.#encoder()
    const { tokens, offsets } = toCsr(queries, this.dimensions, 'queries')
    return callNative(() => encoder.encodeSync(tokens, offsets, 'query'))
  }

  /** Blocking twin of {@link encodeDocuments}. */
  encodeDocumentsSync(documents: PointCloudsInput): Float32Array {
    const encoder = this.#encoder()
    const { tokens, offsets } = toCsr(documents, this.dimensions, 'documents')
    return callNative(() => encoder.encodeSync(tokens, offsets, 'document'))
  }

  async #many(clouds: PointCloudsInput, side: 'query' | 'document', options: { signal?: AbortSignal }): Promise<Float32Array> {
    const encoder = this.#encoder()
    const { tokens, offsets } = toCsr(clouds, this.dimensions, side === 'query' ? 'queries' : 'documents')
    using link = abortHandle(checkOptions<{ signal?: AbortSignal }>(options, 'SignalOptions').signal)
    // Awaited here, not returned: `using` unlinks the signal when this method returns.
    return await awaitNative(callNative(() => encoder.encode(tokens, offsets, side, link.native)), link.signal)
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#native === null
  }

  /** Frees the encoder's native memory now. Idempotent; later calls throw ERR_CLOSED;
   * encodings already running finish. */
  close(): void {
    const encoder = this.#native
    this.#native = null
    encoder?.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** Exact Chamfer (MaxSim) similarity `Σ_{q∈Q} max_{p∈P} ⟨q, p⟩` of two point clouds. Tokens
 * follow the rule of every multi-vector entry point (norm at most 2^30), so it is finite. */
export function chamfer(query: PointCloud, document: PointCloud, dimensions: number): number {
  checkDimensions(dimensions)
  const q = toCloud(query, dimensions, 'query')
  const d = toCloud(document, dimensions, 'document')
  return callNative(() => native.chamferSimilarity(q, d, dimensions))
}
