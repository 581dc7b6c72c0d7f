import { invalidArgument, VecdexError } from './errors'
// A cycle (options.ts uses `describe`), safe: neither module calls the other while loading.
import { checkValue } from './options'

/** Metrics accepted by the indexes and kernels. Lower distance is always closer:
 * `cosine` = 1 − cos(a, b); `dot` = 1 − ⟨a, b⟩; `l2sq` = Σ (aᵢ − bᵢ)²; `hamming` = differing bits. */
export type Metric = 'cosine' | 'dot' | 'l2sq' | 'hamming'

/** A metric given outside an options object (`distance`'s), checked against the core's table. */
export function checkMetric(metric: unknown): Metric {
  return checkValue<Metric>('DistanceArguments', 'metric', metric)
}

/** A dimension count given outside an options object, checked against the core's table. */
export function checkDimensions(dimensions: unknown): number {
  return checkValue<number>('FlatIndexOptions', 'dimensions', dimensions)
}

export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) throw invalidArgument('signal must be an AbortSignal')
  return signal
}

export function checkObject<T extends object>(value: unknown, what: string): T {
  if (value === null || typeof value !== 'object') {
    throw invalidArgument(`${what} must be an object, got ${describe(value)}`)
  }
  return value as T
}

/** One vector: exactly `dimensions` numbers. */
export type VectorInput = Float32Array | Float64Array | readonly number[]

/** Many vectors: an array of rows (each a {@link VectorInput} of `dimensions` numbers), or a flat
 * row-major array of n × dimensions values. */
export type VectorsInput = Float32Array | Float64Array | readonly number[] | readonly (Float32Array | Float64Array | readonly number[])[]

/**
 * One query: exactly `dimensions` numbers, as a Float32Array (passed through without copying),
 * a Float64Array or a number[]. Anything else is an error that names both lengths: values are
 * never read as several vectors, since a wrong-length vector (a 768-d embedding sent to a 384-d
 * index) would otherwise pass as a batch of meaningless rows. `batchHint` says where a batch
 * goes ("call searchBatch for a batch"), for the message.
 */
export function toVector(input: unknown, dimensions: number, what: string, batchHint: string): Float32Array {
  // First, as the hot path of single-query search: one check, no copy.
  if (input instanceof Float32Array && input.length === dimensions) return input
  if (input instanceof Float32Array || input instanceof Float64Array || (Array.isArray(input) && (input.length === 0 || typeof input[0] === 'number'))) {
    const length = (input as ArrayLike<unknown>).length
    if (length !== dimensions) {
      const rows = length / dimensions
      const hint = length > dimensions && Number.isInteger(rows) ? `; if these are ${rows} queries of ${dimensions} values, ${batchHint}` : ''
      throw new VecdexError('ERR_DIMENSION_MISMATCH', `${what} has ${length} values but the index has ${dimensions} dimensions${hint}`)
    }
    return input instanceof Float32Array ? input : input instanceof Float64Array ? Float32Array.from(input) : numbersToF32(input as unknown[], what)
  }
  if (Array.isArray(input) && 0 in input && (Array.isArray(input[0]) || ArrayBuffer.isView(input[0]))) {
    throw invalidArgument(`${what} must be one vector of ${dimensions} numbers, got an array of ${input.length === 1 ? 'one vector' : `${input.length} vectors`}: ${batchHint}`)
  }
  throw invalidArgument(`${what} must be a Float32Array, Float64Array or number[] of ${dimensions} numbers, got ${Array.isArray(input) ? `an array whose element 0 is ${holeOr(input, 0)}` : describe(input)}`)
}

/**
 * Exactly `count` vectors, one per key, packed as by {@link toMatrix}: a flat array must hold
 * count × dimensions values and an array of rows must have `count` rows, else
 * ERR_DIMENSION_MISMATCH naming both. The count comes from the keys, never from the values, so a
 * wrong-length vector cannot pass as several.
 */
export function toRows(input: unknown, count: number, dimensions: number, what: string): Float32Array {
  const flat = input instanceof Float32Array || input instanceof Float64Array || (Array.isArray(input) && 0 in input && typeof input[0] === 'number')
  if (flat) {
    const length = (input as ArrayLike<number>).length
    if (length !== count * dimensions) {
      throw new VecdexError('ERR_DIMENSION_MISMATCH', `${what}: ${count} ${count === 1 ? 'key needs' : 'keys need'} ${count * dimensions} values (${count} × ${dimensions} dimensions), got ${length}`)
    }
  } else if (Array.isArray(input) && input.length !== count && (input.length === 0 || 0 in input)) {
    // (A hole at 0 leaves the form unknown: toMatrix refuses it below.)
    throw new VecdexError('ERR_DIMENSION_MISMATCH', `${what}: ${count} ${count === 1 ? 'key needs' : 'keys need'} ${count} ${count === 1 ? 'vector' : 'vectors'}, got ${input.length}`)
  }
  return toMatrix(input, dimensions, what)
}

/**
 * Packs vectors into one flat Float32Array of whole rows. A Float32Array is passed through
 * without copying (the native layer copies before async work).
 */
export function toMatrix(input: unknown, dimensions: number, what: string): Float32Array {
  if (input instanceof Float32Array) return checkLength(input, dimensions, what)
  if (input instanceof Float64Array) return checkLength(Float32Array.from(input), dimensions, what)
  if (!Array.isArray(input)) {
    throw invalidArgument(`${what} must be a Float32Array, a number[] or an array of vectors, got ${describe(input)}`)
  }
  if (input.length === 0) throw invalidArgument(`${what}: empty input, give at least one vector`)
  // Indexed loops, never forEach/map: those skip the holes of a sparse array (`[a, , b]`,
  // `new Array(n)`, `delete rows[i]`), whose rows would stay zero vectors. A hole is an error.
  if (!(0 in input)) throw invalidArgument(`${what}: element 0 is ${HOLE}`)
  if (typeof input[0] === 'number') return checkLength(numbersToF32(input, what), dimensions, what)
  const out = float32Array(input.length * dimensions, what)
  for (let i = 0; i < input.length; i++) {
    const row: unknown = input[i]
    const values = row instanceof Float32Array || row instanceof Float64Array ? row : Array.isArray(row) ? numbersToF32(row, `${what}[${i}]`) : null
    if (values === null) throw invalidArgument(`${what}[${i}] must be a Float32Array or number[], got ${holeOr(input, i)}`)
    if (values.length !== dimensions) {
      throw new VecdexError('ERR_DIMENSION_MISMATCH', `${what}[${i}]: expected ${dimensions} dimensions, got ${values.length}`)
    }
    out.set(values, i * dimensions)
  }
  return out
}

/** Numbers as float32; anything else (a hole included) is an error, never a silent 0 or NaN. */
export function numbersToF32(values: readonly unknown[], what: string): Float32Array {
  const out = float32Array(values.length, what)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (typeof v !== 'number') throw invalidArgument(`${what}: element ${i} is not a number (${holeOr(values, i)})`)
    out[i] = v
  }
  return out
}

const HOLE = 'a hole (a missing element of a sparse array)'

/** A zeroed Float32Array of `length` values; more than memory or V8 allows is a typed error. */
export function float32Array(length: number, what: string): Float32Array {
  try {
    return new Float32Array(length)
  } catch (error) {
    if (error instanceof RangeError) throw invalidArgument(`${what}: ${length} values do not fit in memory`)
    throw error
  }
}

/** How to name element `i` in an error: "a hole" for a missing element of a sparse array. */
export function holeOr(values: readonly unknown[], i: number): string {
  return i in values ? describe(values[i]) : HOLE
}

function checkLength(data: Float32Array, dimensions: number, what: string): Float32Array {
  if (data.length === 0) throw invalidArgument(`${what}: empty input, give at least one vector`)
  if (data.length % dimensions !== 0) {
    throw new VecdexError(
      'ERR_DIMENSION_MISMATCH',
      `${what}: length ${data.length} is not a whole number of ${dimensions}-dimensional vectors`,
    )
  }
  return data
}

export function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  if (ArrayBuffer.isView(value)) return value.constructor.name
  if (Array.isArray(value)) return 'an array'
  return typeof value
}
