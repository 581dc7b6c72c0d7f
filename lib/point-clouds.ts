import { invalidArgument, VecdexError } from './errors'
import { describe, float32Array, holeOr, toMatrix } from './validate'

/**
 * One point cloud (a document's or a query's token vectors): a flat row-major Float32Array of
 * `tokens × dimensions` values, or an array of token vectors.
 */
export type PointCloud = Float32Array | readonly (Float32Array | readonly number[])[]

/**
 * Many point clouds in CSR form: cloud `i` is tokens `offsets[i]` to `offsets[i + 1]` (exclusive)
 * of `tokens`, a flat row-major Float32Array. `offsets` has one entry more than there are
 * clouds, starts at 0 and ends at the token count. The compact form for large batches.
 */
export interface PointCloudBatch {
  tokens: Float32Array
  offsets: Uint32Array | readonly number[]
}

/** Many point clouds: a {@link PointCloudBatch}, or an array of {@link PointCloud}s. */
export type PointCloudsInput = PointCloudBatch | readonly PointCloud[]

/** Point clouds as the native layer takes them. */
export interface Csr {
  tokens: Float32Array
  offsets: Uint32Array
  /** Number of clouds. */
  count: number
}

export function isBatch(input: unknown): input is PointCloudBatch {
  return input !== null && typeof input === 'object' && !Array.isArray(input) && !ArrayBuffer.isView(input) && 'tokens' in input
}

/** One cloud as a flat Float32Array of whole tokens (a Float32Array passes through). */
export function toCloud(input: unknown, dimensions: number, what: string): Float32Array {
  if (Array.isArray(input) && input.length > 0 && typeof input[0] === 'number') {
    throw invalidArgument(`${what} must be a flat Float32Array of tokens or an array of token vectors, got an array of numbers`)
  }
  return toMatrix(input, dimensions, what)
}

/** Packs clouds into CSR; offsets are checked here too (the native layer checks again). */
export function toCsr(input: unknown, dimensions: number, what: string): Csr {
  if (isBatch(input)) {
    const { tokens } = input
    if (!(tokens instanceof Float32Array)) throw invalidArgument(`${what}.tokens must be a Float32Array, got ${describe(tokens)}`)
    let offsets: Uint32Array
    if (input.offsets instanceof Uint32Array) offsets = input.offsets
    else if (Array.isArray(input.offsets)) {
      const given: readonly unknown[] = input.offsets
      offsets = new Uint32Array(given.length)
      // Indexed, not forEach: a hole of a sparse array must be an error, not an offset of 0.
      for (let i = 0; i < given.length; i++) {
        const o = given[i]
        if (typeof o !== 'number' || !Number.isInteger(o) || o < 0 || o > 0xffff_ffff) {
          throw invalidArgument(`${what}.offsets[${i}] must be an unsigned 32-bit integer, got ${holeOr(given, i)}`)
        }
        offsets[i] = o
      }
    } else throw invalidArgument(`${what}.offsets must be a Uint32Array or number[], got ${describe(input.offsets)}`)
    if (tokens.length % dimensions !== 0) {
      throw new VecdexError('ERR_DIMENSION_MISMATCH', `${what}: ${tokens.length} token values are not a whole number of ${dimensions}-dimensional tokens`)
    }
    if (offsets.length < 2) throw invalidArgument(`${what}: offsets need at least two entries (one cloud)`)
    return { tokens, offsets, count: offsets.length - 1 }
  }
  if (!Array.isArray(input)) {
    throw invalidArgument(`${what} must be { tokens, offsets } or an array of point clouds, got ${describe(input)}`)
  }
  if (input.length === 0) throw invalidArgument(`${what}: empty input, give at least one point cloud`)
  // Indexed loops, not map/forEach, which skip the holes of a sparse array: a missing cloud
  // must be an error, not an empty one.
  const clouds: Float32Array[] = []
  let total = 0
  for (let i = 0; i < input.length; i++) {
    if (!(i in input)) throw invalidArgument(`${what}[${i}] must be a point cloud, got ${holeOr(input, i)}`)
    const cloud = toCloud(input[i], dimensions, `${what}[${i}]`)
    clouds.push(cloud)
    total += cloud.length
  }
  const tokens = float32Array(total, what)
  const offsets = new Uint32Array(clouds.length + 1)
  let at = 0
  for (let i = 0; i < clouds.length; i++) {
    tokens.set(clouds[i], at)
    at += clouds[i].length
    offsets[i + 1] = at / dimensions
  }
  return { tokens, offsets, count: clouds.length }
}

/** Whether `input` is an array of point clouds given as rows (its element 0 is itself an array
 * of token vectors), not one cloud. */
function isCloudList(input: unknown): boolean {
  if (!Array.isArray(input) || !(0 in input) || !Array.isArray(input[0])) return false
  const first: readonly unknown[] = input[0]
  return 0 in first && (Array.isArray(first[0]) || ArrayBuffer.isView(first[0]))
}

/**
 * Exactly one cloud, as CSR of one. A batch ({@link PointCloudBatch} or an array of clouds) is
 * an error ending with `hint` (where a batch goes): a cloud has any number of tokens, so a batch
 * must never pass as one cloud or the reverse.
 */
export function oneCloudToCsr(input: unknown, dimensions: number, what: string, hint: string): Csr {
  if (isBatch(input) || isCloudList(input)) {
    throw invalidArgument(
      `${what} must be one point cloud (a Float32Array of tokens × ${dimensions} values, or an array of token vectors), got ${isBatch(input) ? '{ tokens, offsets }' : 'an array of point clouds'}; ${hint}`,
    )
  }
  const tokens = toCloud(input, dimensions, what)
  return { tokens, offsets: Uint32Array.of(0, tokens.length / dimensions), count: 1 }
}
