import type native = require('./native')

/** Codecs of the compressed search form. */
export type QuantizationType = 'none' | 'f16' | 'bf16' | 'sq8' | 'sq4' | 'binary' | 'pq' | 'rabitq'

/**
 * How stored vectors are encoded for search, by name or with settings. The sizes below are of
 * the codes, which an index holds in addition to the full f32 vectors (see
 * {@link CompressionOptions}): a compressed index takes more memory than an uncompressed one.
 * - 'f16' / 'bf16': codes of 2 bytes per dimension.
 * - 'sq8' / 'sq4': codes of 8 or 4 bits per dimension, each dimension's range learnt from data
 *   (`clipQuantile` trims outliers). SQ8 quantizes the query too by default (`symmetric`:
 *   integer dot products, faster at the same recall after rescoring); `symmetric: false`
 *   keeps the query f32.
 * - 'binary': codes of 1 bit per dimension (sign after centring on the data mean), scored
 *   against the float query: its distance to the mean ± each dimension's mean absolute
 *   deviation (GloVe 100k, flat, oversample 10: recall@10 0.66, where comparing binarised
 *   queries by Hamming distance reached 0.50).
 * - 'pq': product quantization, codes of `subspaces` bytes per vector (default a quarter of the
 *   searched dimensions), 256 k-means centroids per subspace (`iterations` Lloyd rounds,
 *   default 25).
 * - 'rabitq': RaBitQ (Gao & Long, SIGMOD 2024), codes of 1 bit per dimension of the randomly
 *   rotated residual (vector minus the data's centroid) plus 12 bytes of per-vector factors,
 *   scored with an unbiased estimate of the inner product: AND-popcounts of the bits against
 *   the rotated query quantized to 4 bits per dimension (the POPCNT instruction where the CPU
 *   has it). On GloVe 100k (flat, oversample 10) its candidates are better than 'binary' ones
 *   (recall@10 0.78 against 0.66) at a similar scan speed; on strongly clustered data its one
 *   global centroid can leave it no better. At most 2,048 searched dimensions (its rotation is
 *   a dense matrix; `pcaDimensions` reduces them).
 *   `{ type: 'rabitq', bits: 4 }`: extended RaBitQ (Gao et al., SIGMOD 2025), 4 bits per
 *   dimension on the grid point closest in angle to the rotated residual, plus 16 bytes of
 *   factors, scored against the f32 query by the 4-bit code kernel; default oversample 4.
 *   Its estimates are about ten times tighter than 1-bit ones (SIFT 5k: recall@10 of the ten
 *   best codes 0.94 without rescoring). 1 and 4 are the widths built.
 */
export type Quantization =
  | QuantizationType
  | { type: 'sq8' | 'sq4'; clipQuantile?: number; symmetric?: boolean }
  | { type: 'pq'; subspaces?: number; iterations?: number }
  | { type: 'rabitq'; bits?: 1 | 4 }
  | { type: 'none' | 'f16' | 'bf16' | 'binary' | 'rabitq' }

/**
 * Compression options shared by {@link FlatIndex} and {@link HnswIndex}: the index keeps its
 * full f32 vectors, searches a compact form of them, and rescores the best
 * `k × oversample` candidates with the full vectors. By default the full vectors stay in memory
 * beside the codes, so compression makes search faster but the index larger, by the codes'
 * size: `memoryBytes` counts both, {@link CompressionStats} gives each (`codeBytes`,
 * `vectorBytes`). An index can keep them in a file instead (`fullVectors`, see
 * {@link HnswIndexOptions.fullVectors}), which makes it smaller than an f32 index. Codecs that learn from data train once:
 * with {@link VectorIndex.train}, or by themselves when the index first holds `trainingSize`
 * vectors. Until then searching throws ERR_NOT_TRAINED. Either way the model is learnt without
 * holding up searches (see {@link VectorIndex.train}).
 */
export interface CompressionOptions {
  /** Codec of the searched form (default 'none': full f32). */
  quantization?: Quantization
  /** Candidates rescored per result (1 to 1,000; default 10 for 'pq', 'binary' and 1-bit 'rabitq', 4 otherwise). */
  oversample?: number
  /** Vectors held when the index trains by itself (default 10,000 for 'pq', 1,000 otherwise;
   * with `pcaDimensions` at least 10 × dimensions, up to 32,768, so the covariance settles). */
  trainingSize?: number
  /** Matryoshka funnel: search on the first n dimensions (renormalised for cosine), rescore
   * on all. For embeddings trained with Matryoshka Representation Learning. */
  prefixDimensions?: number
  /** Search on a PCA projection to n dimensions learnt from the training sample (centred for
   * l2sq, uncentred for dot and cosine), optionally quantized; rescore on all. Trained with
   * `train(sample, { queries })` (dot and cosine), it learns LeanVec-OOD's separate query and
   * data projections instead, for queries unlike the stored vectors. */
  pcaDimensions?: number
}

/**
 * Bytes an index holds in memory, by part: allocated capacity, the figures `memoryBytes` adds
 * up. Unlike {@link CompressionStats} (`vectorBytes`, `codeBytes`: what the held vectors need),
 * these include room reserved for growth. A view's rows, mapped from its file, are not counted:
 * the page cache holds them.
 */
export interface MemoryParts {
  /** Full-precision vectors (kept beside the codes for rescoring when compressed). */
  vectors: number
  /** Compressed codes (0 without compression or before training). */
  codes: number
  /** Graph links, levels and their locks (0 for a flat index). */
  graph: number
  /** Keys, the key-to-slot map and slot bookkeeping. */
  ids: number
}

/** Sizes of an index's compressed form (see {@link VectorIndex.compressionStats}). */
export interface CompressionStats {
  quantization: QuantizationType
  trained: boolean
  /** Dimensions searched (after a prefix or PCA reduction). */
  searchDimensions: number
  /** Bytes per vector of the searched form (0 when untrained or uncompressed). */
  codeSize: number
  /** Code bytes of the vectors held (in addition to `vectorBytes`). */
  codeBytes: number
  /** Bytes of the full-precision vectors kept for rescoring, whatever the codec: in memory,
   * or in their file when `fullVectors` is 'disk'. */
  vectorBytes: number
  /** Where the full vectors are: 'memory', or 'disk' (an index created with
   * `fullVectors: { path }`: a file read only to rescore). */
  fullVectors: 'memory' | 'disk'

  /** Seconds the last training took. */
  trainingSeconds: number
  /** The whole index's allocated memory by part, read together with the figures above (a
   * multi-vector index: its FDE index's, without the token vectors). `codeBytes` and
   * `vectorBytes` are what the held vectors need; `memory.codes` and `memory.vectors` what is
   * allocated for them, room for growth and row padding included. */
  memory: MemoryParts
}

/** The native form of the compression options (undefined when none is set). The options were
 * checked against the core's table with the index's own options (see options.ts). */
export function nativeCompression(options: CompressionOptions): native.NativeCompressionOptions | undefined {
  const q = options.quantization
  const spec: {
    type?: QuantizationType
    clipQuantile?: number
    symmetric?: boolean
    subspaces?: number
    iterations?: number
    bits?: number
  } =
    typeof q === 'string' || q === undefined ? { type: q } : q
  const result: native.NativeCompressionOptions = {
    quantization: spec.type ?? 'none',
    clipQuantile: spec.clipQuantile,
    symmetric: spec.symmetric,
    subspaces: spec.subspaces,
    iterations: spec.iterations,
    bits: spec.bits,
    oversample: options.oversample,
    trainingSize: options.trainingSize,
    prefixDimensions: options.prefixDimensions,
    pcaDimensions: options.pcaDimensions,
  }
  const unset = Object.values(result).every((v) => v === undefined || v === 'none')
  return unset ? undefined : result
}
