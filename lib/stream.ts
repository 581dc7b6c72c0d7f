import { abortError, invalidArgument, VecdexError } from './errors'
import { checkKey, type Key, type KeysInput, MAX_KEY, toKeyArray } from './keys'
import { describe, float32Array, toMatrix, type VectorsInput } from './validate'

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

function checkBatchSize(size: unknown, fallback: number): number {
  const value = size ?? fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1 << 24) {
    throw invalidArgument(`batchSize must be an integer from 1 to 16777216, got ${describe(value)}`)
  }
  return value
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
  const batchSize = checkBatchSize(options.batchSize, 4096)
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalidArgument('onProgress must be a function')
  }
  const signal = options.signal
  let nextKey = checkKey(options.startKey ?? 0, 'startKey')
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
      const matrix = toMatrix(item.vectors, dimensions, where)
      if (matrix.length / dimensions !== batchKeys.length) {
        throw invalidArgument(`${where}: ${batchKeys.length} keys for ${matrix.length / dimensions} vectors`)
      }
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

/** Regroups query vectors (single rows or flat batches) from any iterable into flat batches. */
export async function* batchRows(
  source: AsyncIterable<Float32Array | readonly number[]> | Iterable<Float32Array | readonly number[]>,
  dimensions: number,
  batchSize: number,
): AsyncGenerator<Float32Array, void, undefined> {
  const size = checkBatchSize(batchSize, 256)
  // Grows with the queries that come, up to `size` rows (as in `ingest`).
  let capacity = initialRows(size, dimensions)
  let buffer = float32Array(capacity * dimensions, 'searchStream batch')
  let filled = 0
  let index = 0
  for await (const item of source as AsyncIterable<Float32Array | readonly number[]>) {
    const rows = toMatrix(item, dimensions, `query batch ${index++}`)
    for (let offset = 0; offset < rows.length; offset += dimensions) {
      if (filled === capacity) {
        capacity = Math.min(size, capacity * 2)
        const grown = float32Array(capacity * dimensions, 'searchStream batch')
        grown.set(buffer)
        buffer = grown
      }
      buffer.set(rows.subarray(offset, offset + dimensions), filled * dimensions)
      filled += 1
      if (filled === size) {
        yield buffer
        buffer = float32Array(capacity * dimensions, 'searchStream batch')
        filled = 0
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled * dimensions)
}
