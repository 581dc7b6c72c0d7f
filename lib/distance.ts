import native = require('./native')
import { awaitNative, callNative, invalidArgument } from './errors'
import { abortHandle } from './abort'
import { checkOptions } from './options'
import { checkMetric, describe, type Metric, numbersToF32, toMatrix } from './validate'

/** Element type of a pair of vectors given to `distance`. */
export type DType = 'f32' | 'f16' | 'bf16' | 'i8' | 'binary'

export interface DistanceOptions {
  /** Needed for Uint16Array inputs, which may hold f16 or bf16 bits. Other types are inferred:
   * Float32Array → f32, Int8Array → i8, Uint8Array → binary (packed bits, hamming only). */
  dtype?: DType
}

/**
 * Distance between two vectors under `metric` (lower is closer), computed by the SIMD kernel
 * this CPU supports. Cosine of a zero vector is an ERR_ZERO_VECTOR error. Float vectors follow
 * the indexes' rule: a pair an index would refuse (a non-finite value, or under 'dot' and
 * 'l2sq' a squared norm above f32's maximum / 4, where distances overflow) is an
 * ERR_INVALID_ARGUMENT error, and a cosine is the one an index computes, whatever the scale.
 */
export function distance(
  a: Float32Array | Int8Array | Uint8Array | Uint16Array | readonly number[],
  b: Float32Array | Int8Array | Uint8Array | Uint16Array | readonly number[],
  metric: Metric,
  options: DistanceOptions = {},
): number {
  checkMetric(metric)
  // Checked element by element: Float32Array.from would turn a hole into NaN and '1' into 1.
  const left = Array.isArray(a) ? numbersToF32(a, 'a') : a
  const right = Array.isArray(b) ? numbersToF32(b, 'b') : b
  if (left.constructor !== right.constructor) {
    throw invalidArgument(`both vectors must have the same type, got ${describe(left)} and ${describe(right)}`)
  }
  const dtype = checkOptions<DistanceOptions>(options, 'DistanceOptions').dtype ?? inferDType(left)
  return callNative(() => {
    switch (dtype) {
      case 'f32':
        return native.distanceF32(expect(left, Float32Array, dtype), expect(right, Float32Array, dtype), metric)
      case 'i8':
        return native.distanceI8(expect(left, Int8Array, dtype), expect(right, Int8Array, dtype), metric)
      case 'f16':
        return native.distanceF16(expect(left, Uint16Array, dtype), expect(right, Uint16Array, dtype), metric)
      case 'bf16':
        return native.distanceBf16(expect(left, Uint16Array, dtype), expect(right, Uint16Array, dtype), metric)
      case 'binary':
        return native.distanceBinary(expect(left, Uint8Array, dtype), expect(right, Uint8Array, dtype), metric)
      default:
        throw invalidArgument(`dtype must be f32, f16, bf16, i8 or binary, got ${describe(dtype)}`)
    }
  })
}

function inferDType(v: unknown): DType {
  if (v instanceof Float32Array) return 'f32'
  if (v instanceof Int8Array) return 'i8'
  if (v instanceof Uint8Array) return 'binary'
  if (v instanceof Uint16Array) throw invalidArgument('Uint16Array holds f16 or bf16 bits: pass { dtype: "f16" } or { dtype: "bf16" }')
  throw invalidArgument(`vectors must be Float32Array, Int8Array, Uint8Array, Uint16Array or number[], got ${describe(v)}`)
}

function expect<T>(value: unknown, type: new (...args: never[]) => T, dtype: DType): T {
  if (!(value instanceof type)) throw invalidArgument(`dtype ${dtype} needs ${type.name} vectors, got ${describe(value)}`)
  return value
}

export interface DistanceMatrixOptions {
  /** Dimensions of every row of both matrices. */
  dimensions: number
  /** cosine, dot or l2sq. */
  metric: Exclude<Metric, 'hamming'>
  /** Stops the computation between rows (rejects with ERR_ABORTED). */
  signal?: AbortSignal
}

function matrixArgs(queries: unknown, vectors: unknown, options: DistanceMatrixOptions) {
  const { dimensions, metric } = checkOptions<DistanceMatrixOptions>(options, 'DistanceMatrixOptions')
  return { q: toMatrix(queries, dimensions, 'queries'), v: toMatrix(vectors, dimensions, 'vectors'), dimensions, metric }
}

/**
 * All distances between `queries` (rows) and `vectors` (columns): a row-major Float32Array of
 * `queries × vectors` values, computed on vecdex's thread pool.
 */
export async function distanceMatrix(
  queries: Float32Array | readonly (Float32Array | readonly number[])[],
  vectors: Float32Array | readonly (Float32Array | readonly number[])[],
  options: DistanceMatrixOptions,
): Promise<Float32Array> {
  const { q, v, dimensions, metric } = matrixArgs(queries, vectors, options)
  using handle = abortHandle(options.signal)
  // Awaited here, not returned: `using` unlinks the signal when this function returns.
  return await awaitNative(callNative(() => native.distanceMatrix(q, v, dimensions, metric, handle.native)), handle.signal)
}

/** Blocking twin of {@link distanceMatrix}. */
export function distanceMatrixSync(
  queries: Float32Array | readonly (Float32Array | readonly number[])[],
  vectors: Float32Array | readonly (Float32Array | readonly number[])[],
  options: Omit<DistanceMatrixOptions, 'signal'>,
): Float32Array {
  const { q, v, dimensions, metric } = matrixArgs(queries, vectors, options)
  return callNative(() => native.distanceMatrixSync(q, v, dimensions, metric))
}

/**
 * The code path of one family of vecdex's own kernels on this machine: an x86-64 SIMD path
 * chosen at run time from the CPU's features ('avx512vnni', 'avx512bw', 'avx512', 'avx2-fma',
 * 'avx2', 'popcnt'), or 'portable': plain loops, the only path off x86-64 (arm64 included),
 * where the compiler vectorises them as far as the target's baseline allows.
 */
export type KernelPath = 'avx512vnni' | 'avx512bw' | 'avx512' | 'avx2-fma' | 'avx2' | 'popcnt' | 'portable'

/** The path each family of vecdex's own kernels takes, read from the decisions they dispatch on. */
export interface KernelPaths {
  /** FlatIndex exact search: the blocked scan with fused top-k ('avx512', 'avx2-fma', 'portable'). */
  blockedScan: KernelPath
  /** The HNSW walk over f32 rows, and every rescoring ('avx512', 'avx2-fma', 'portable'). */
  paddedRows: KernelPath
  /** SQ8 asymmetric and SQ4 codes ('avx512bw', 'avx2-fma' or 'portable'). */
  sqCodes: KernelPath
  /** Symmetric SQ8, the default ('avx512vnni', 'avx512bw', 'avx2' or 'portable'). */
  sq8Symmetric: KernelPath
  /** f16 and bf16 codes ('avx512bw', 'avx2-fma' with F16C, or 'portable'). */
  halfCodes: KernelPath
  /** Binary codes: AND-popcounts with the query's 4-bit weight planes ('popcnt': the POPCNT
   * instruction, chosen at run time on x86-64 at the AVX2 level; 'portable': the baseline's
   * shift-and-mask bit count). */
  binaryCodes: KernelPath
  /** PQ lookup-table sums ('portable' everywhere). */
  pqCodes: KernelPath
  /** 1-bit RaBitQ codes: AND-popcounts of the bits with the 4-bit query's planes ('popcnt' or
   * 'portable', as for binary codes). 4-bit codes run on `sqCodes`' kernel. */
  rabitqCodes: KernelPath
  /** Exact Chamfer of multi-vector search ('avx512', 'avx2-fma', 'portable'). */
  chamfer: KernelPath
  /** PCA training ('avx512', 'avx2', 'portable'). */
  pca: KernelPath
}

/** What runs on this machine: kernel levels and paths, simsimd backends, threads. */
export interface Capabilities {
  /** The level chosen for vecdex's own kernels: 'avx512', 'avx2' or 'scalar' (see `kernels`
   * for what each family runs at it). */
  scanKernel: string
  /** The code path of each family of vecdex's own kernels. */
  kernels: KernelPaths
  /** simsimd backends enabled on this CPU (e.g. 'haswell', 'skylake', 'sapphire', 'neon'). */
  simsimdBackends: string[]
  simsimdDynamicDispatch: boolean
  /** Threads in vecdex's pool (VECDEX_THREADS, or the number of cores). */
  threads: number
  arch: string
  os: string
}

export function capabilities(): Capabilities {
  const caps = native.capabilities()
  return { ...caps, kernels: caps.kernels as KernelPaths }
}
