import { invalidArgument, VecdexError } from './errors'
// A cycle (options.ts uses `describe`), safe: neither module calls the other while loading.
import { checkValue } from './options'

/** Metrics accepted by the indexes and kernels. Lower distance is always closer:
 * `cosine` = 1 − cos(a, b); `dot` = 1 − ⟨a, b⟩; `l2sq` = Σ (aᵢ − bᵢ)²; `hamming` = differing bits. */
export type Metric = 'cosine' | 'dot' | 'l2sq' | 'hamming'

const METRICS: readonly string[] = ['cosine', 'dot', 'l2sq', 'hamming']

export function checkMetric(metric: unknown, allowed: readonly string[] = METRICS): Metric {
  if (typeof metric !== 'string' || !allowed.includes(metric)) {
    throw invalidArgument(`metric must be one of ${allowed.join(', ')}, got ${describe(metric)}`)
  }
  return metric as Metric
}

/** A dimension count given outside an options object, checked against the core's table. */
export function checkDimensions(dimensions: unknown): number {
  return checkValue<number>('FlatIndexOptions', 'dimensions', dimensions)
}

/** k: a positive integer (limits from the core's table). Values above the index size return
 * what there is. */
export function checkK(k: unknown): number {
  return checkValue<number>('SearchOptions', 'k', k)
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

/** Vectors as accepted from users: a flat row-major Float32Array (n × dimensions), one vector
 * as a Float32Array or number[], or an array of rows. */
export type VectorsInput = Float32Array | Float64Array | readonly number[] | readonly (Float32Array | readonly number[])[]

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
