import { invalidArgument, VecdexError } from './errors'
import { describe, toMatrix } from './validate'

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
      offsets = new Uint32Array(input.offsets.length)
      input.offsets.forEach((o: unknown, i: number) => {
        if (typeof o !== 'number' || !Number.isInteger(o) || o < 0 || o > 0xffff_ffff) {
          throw invalidArgument(`${what}.offsets[${i}] must be an unsigned 32-bit integer, got ${describe(o)}`)
        }
        offsets[i] = o
      })
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
  const clouds = input.map((cloud: unknown, i: number) => toCloud(cloud, dimensions, `${what}[${i}]`))
  const total = clouds.reduce((sum, c) => sum + c.length, 0)
  const tokens = new Float32Array(total)
  const offsets = new Uint32Array(clouds.length + 1)
  let at = 0
  clouds.forEach((cloud, i) => {
    tokens.set(cloud, at)
    at += cloud.length
    offsets[i + 1] = at / dimensions
  })
  return { tokens, offsets, count: clouds.length }
}

/** One cloud, or a batch, as CSR: a {@link PointCloudBatch} is a batch, anything else one cloud. */
export function queriesToCsr(input: unknown, dimensions: number): Csr {
  if (isBatch(input)) return toCsr(input, dimensions, 'queries')
  const tokens = toCloud(input, dimensions, 'query')
  return { tokens, offsets: Uint32Array.of(0, tokens.length / dimensions), count: 1 }
}
