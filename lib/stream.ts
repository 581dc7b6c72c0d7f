import { abortError, invalidArgument, VecdexError } from './errors'
import { checkKey, type Key, type KeysInput, MAX_KEY, toKeyArray } from './keys'
import { checkOptions, checkValue, defaultOf } from './options'
import { describe, float32Array, toMatrix, toRows, toVector, type VectorInput, type VectorsInput } from './validate'

/** What `addStream` accepts from its source: a keyed vector, a keyed batch, or a bare vector
 * (keyed `startKey`, `startKey + 1`, ... in arrival order). A key that comes again replaces
 * the vector it had, as with `add`. */
export type StreamItem =
  | { key: Key; vector: Float32Array | readonly number[] }
  | { keys: KeysInput; vectors: VectorsInput }
  | Float32Array
  | readonly number[]

export interface AddStreamOptions {
  /** Vectors per native add (default 4096). */
  batchSize?: number
  /** Key of the first bare vector (default 0). */
  startKey?: Key
  /** Stops ingestion between batches (rejects with ERR_ABORTED; earlier batches stay added). */
  signal?: AbortSignal
  /** Called on the JS thread after each stored batch with the running total. */
  onProgress?: (progress: { added: number; batches: number }) => void
}

export interface SearchStreamOptions {
  /** Query rows per native search (default 256). */
  batchSize?: number
}

/** Rows a stream's batch buffer starts with (about 64 Ki values); it doubles up to the batch
 * size as rows come. */
function initialRows(batchSize: number, dimensions: number): number {
  return Math.min(batchSize, Math.max(1, Math.floor(65_536 / dimensions)))
}

/** A stream's batch size: the option if given, else the set's default (core's table). */
function checkBatchSize(size: unknown, set: 'AddStreamOptions' | 'SearchStreamOptions'): number {
  return size === undefined ? defaultOf<number>(set, 'batchSize') : checkValue<number>(set, 'batchSize', size)
}

/**
 * Pulls items from `source` into fixed-size batches and hands each to `add`, awaiting it before
 * pulling more. Returns the number of vectors added.
 */
export async function ingest(
  source: AsyncIterable<StreamItem> | Iterable<StreamItem>,
  dimensions: number,
  options: AddStreamOptions,
  add: (keys: BigUint64Array, vectors: Float32Array, signal?: AbortSignal) => Promise<void>,
): Promise<number> {
  if (source == null || (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function' && typeof (source as Iterable<unknown>)[Symbol.iterator] !== 'function')) {
    throw invalidArgument(`source must be an iterable or async iterable, got ${describe(source)}`)
  }
  checkOptions(options, 'AddStreamOptions')
  const batchSize = checkBatchSize(options.batchSize, 'AddStreamOptions')
  const signal = options.signal
  let nextKey = checkKey(options.startKey ?? defaultOf<number>('AddStreamOptions', 'startKey'), 'startKey')
  // Buffers grow with what the source yields, up to batchSize rows: a large batchSize costs
  // memory only for vectors that actually come.
  let capacity = initialRows(batchSize, dimensions)
  let keys = new BigUint64Array(capacity)
  let vectors = float32Array(capacity * dimensions, 'addStream batch')
  let filled = 0
  let added = 0
  let batches = 0
  // A key seen twice in one batch keeps its last vector, as two separate adds would.
  const rowOfKey = new Map<bigint, number>()

  const flush = async () => {
    if (filled === 0) return
    await add(keys.subarray(0, filled), vectors.subarray(0, filled * dimensions), signal)
    added += filled
    batches += 1
    filled = 0
    rowOfKey.clear()
    // Fresh buffers: the native add copied the old ones, but a caller may keep views of them.
    keys = new BigUint64Array(capacity)
    vectors = float32Array(capacity * dimensions, 'addStream batch')
    options.onProgress?.({ added, batches })
  }
  const push = async (key: bigint, vector: Float32Array | readonly number[], where: string) => {
    if (vector.length !== dimensions) {
      throw new VecdexError('ERR_DIMENSION_MISMATCH', `${where}: expected ${dimensions} dimensions, got ${vector.length}`)
    }
    const existing = rowOfKey.get(key)
    if (existing !== undefined) {
      vectors.set(vector, existing * dimensions)
      return
    }
    if (filled === capacity) {
      capacity = Math.min(batchSize, capacity * 2)
      const grownKeys = new BigUint64Array(capacity)
      grownKeys.set(keys)
      const grown = float32Array(capacity * dimensions, 'addStream batch')
      grown.set(vectors)
      keys = grownKeys
      vectors = grown
    }
    rowOfKey.set(key, filled)
    keys[filled] = key
    vectors.set(vector, filled * dimensions)
    filled += 1
    if (filled === batchSize) await flush()
  }

  let index = 0
  for await (const item of source as AsyncIterable<StreamItem>) {
    if (signal?.aborted) throw abortError(signal)
    const where = `stream item ${index++}`
    if (item instanceof Float32Array || Array.isArray(item)) {
      if (nextKey > MAX_KEY) throw invalidArgument(`${where}: the next key would pass 2^64 − 1 (startKey too large)`)
      await push(nextKey, toMatrix(item, dimensions, where), where)
      nextKey += 1n
    } else if (item !== null && typeof item === 'object' && 'vector' in item) {
      await push(checkKey(item.key, `${where} key`), toMatrix(item.vector, dimensions, `${where} vector`), where)
    } else if (item !== null && typeof item === 'object' && 'vectors' in item) {
      const batchKeys = toKeyArray(item.keys, `${where} keys`)
      const matrix = toRows(item.vectors, batchKeys.length, dimensions, where)
      for (let i = 0; i < batchKeys.length; i++) {
        await push(batchKeys[i], matrix.subarray(i * dimensions, (i + 1) * dimensions), where)
      }
    } else {
      throw invalidArgument(`${where} must be { key, vector }, { keys, vectors } or a vector, got ${describe(item)}`)
    }
  }
  await flush()
  return added
}

/**
 * Regroups queries from any iterable into flat batches. Each item is exactly one query of
 * `dimensions` numbers, so result row i always answers item i: an item of another length is
 * ERR_DIMENSION_MISMATCH, never read as several queries.
 */
export async function* batchRows(
  source: AsyncIterable<VectorInput> | Iterable<VectorInput>,
  dimensions: number,
  batchSize: number | undefined,
): AsyncGenerator<Float32Array, void, undefined> {
  const size = checkBatchSize(batchSize, 'SearchStreamOptions')
  // Grows with the queries that come, up to `size` rows (as in `ingest`).
  let capacity = initialRows(size, dimensions)
  let buffer = float32Array(capacity * dimensions, 'searchStream batch')
  let filled = 0
  let index = 0
  for await (const item of source as AsyncIterable<VectorInput>) {
    const query = toVector(item, dimensions, `query ${index++}`, 'yield one query per item')
    if (filled === capacity) {
      capacity = Math.min(size, capacity * 2)
      const grown = float32Array(capacity * dimensions, 'searchStream batch')
      grown.set(buffer)
      buffer = grown
    }
    buffer.set(query, filled * dimensions)
    filled += 1
    if (filled === size) {
      yield buffer
      buffer = float32Array(capacity * dimensions, 'searchStream batch')
      filled = 0
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled * dimensions)
}
