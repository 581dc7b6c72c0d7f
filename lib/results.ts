import { invalidArgument } from './errors'
import { NO_KEY } from './keys'

/** The hits of one query, best (lowest distance) first. Views into the batch's arrays. */
export interface QueryResult {
  /** Keys of the hits. */
  readonly keys: BigUint64Array
  /** Distances of the hits (lower is closer), aligned with `keys`. */
  readonly distances: Float32Array
  /** The keys as plain numbers; throws ERR_INVALID_ARGUMENT if one exceeds 2^53 − 1. */
  numberKeys(): number[]
}

/**
 * Results of a batch of queries. Row-major typed arrays: row `i` (query `i`) occupies
 * `[i * k, i * k + counts[i])` of `keys` and `distances`; the rest of the row (when a filter
 * admits fewer vectors than k, or a search finds fewer) is padding: key
 * {@link SearchResults.NO_KEY} (2^64 − 1, which no index accepts as a key, so padding is never
 * mistaken for a hit) and distance +Infinity. `get(i)` returns just the valid hits.
 */
export class SearchResults implements Iterable<QueryResult> {
  /** The key of a padding cell: 2^64 − 1, reserved (adding it is ERR_INVALID_ARGUMENT). */
  static readonly NO_KEY: bigint = NO_KEY

  /** Row stride: min(requested k, index size at search time). */
  readonly k: number
  readonly keys: BigUint64Array
  readonly distances: Float32Array
  /** Valid hits per query: k, or fewer when a filter admits fewer vectors (the rest of the row
   * is padding). */
  readonly counts: Uint32Array

  constructor(k: number, keys: BigUint64Array, distances: Float32Array, counts: Uint32Array) {
    this.k = k
    this.keys = keys
    this.distances = distances
    this.counts = counts
  }

  /** Number of queries. */
  get length(): number {
    return this.counts.length
  }

  /** The hits of query `i`. */
  get(i: number): QueryResult {
    if (!Number.isInteger(i) || i < 0 || i >= this.counts.length) {
      throw invalidArgument(`query index ${i} is out of range 0..${this.counts.length - 1}`)
    }
    const start = i * this.k
    const end = start + this.counts[i]
    const keys = this.keys.subarray(start, end)
    return { keys, distances: this.distances.subarray(start, end), numberKeys: () => numberKeys(keys) }
  }

  *[Symbol.iterator](): Iterator<QueryResult> {
    for (let i = 0; i < this.length; i++) yield this.get(i)
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

function numberKeys(keys: BigUint64Array): number[] {
  const out = new Array<number>(keys.length)
  for (let i = 0; i < keys.length; i++) {
    if (keys[i] > MAX_SAFE) throw invalidArgument(`key ${keys[i]}n does not fit in a number; read it from .keys`)
    out[i] = Number(keys[i])
  }
  return out
}

/**
 * Memory for sync search results, handed out in 8-byte-aligned regions of shared 64 KiB
 * buffers, as Node's Buffer pool does for small Buffers. Creating an ArrayBuffer or a
 * BigUint64Array costs about a microsecond in V8 (more than a search of a small index), while a
 * view of an existing buffer costs tens of nanoseconds, and native code writes into a buffer
 * it has already seen without V8 moving it off-heap again. Results are views of their region;
 * a buffer is dropped by the pool once full and freed when no result views it any more. So
 * `results.keys.buffer` may hold other results too: copy (`slice()`) a result before
 * transferring its buffer to another thread.
 */
class ResultPool {
  static readonly SIZE = 64 * 1024
  /** The buffer the last `reserve` placed its region in. */
  bytes = new Uint8Array(ResultPool.SIZE)
  #offset = 0

  /** Reserves at least `size` bytes and returns where they start in `this.bytes`. */
  reserve(size: number): number {
    const aligned = Math.ceil(size / 8) * 8
    if (aligned > ResultPool.SIZE / 4) {
      this.bytes = allocate(aligned)
      this.#offset = ResultPool.SIZE // the next small request starts a fresh buffer
      return 0
    }
    // A caller may have transferred a result's buffer (postMessage), which detaches it.
    if (this.#offset + aligned > ResultPool.SIZE || this.bytes.byteLength === 0) {
      this.bytes = new Uint8Array(ResultPool.SIZE)
      this.#offset = 0
    }
    const offset = this.#offset
    this.#offset += aligned
    return offset
  }
}

/** A large result buffer; memory the system refuses is a typed error, as in the async twin. */
function allocate(bytes: number): Uint8Array<ArrayBuffer> {
  try {
    return new Uint8Array(bytes)
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    throw invalidArgument(`search results: ${bytes} bytes do not fit in memory; ask for fewer results or fewer queries per call`)
  }
}

export const resultPool = new ResultPool()
