import type native = require('./native')
import type { CompressionStats } from './compression'
import { abortError, awaitNative, callNative, invalidArgument, VecdexError } from './errors'
import { checkKey, type Key, type KeysInput, toKeyArray } from './keys'
import type { SearchResults } from './results'

/** What every native index class offers for lifecycle, reads and persistence (see index.d.ts):
 * the JS face of the core's `Index` contract. */
export interface NativeIndexBase {
  readonly size: number
  readonly memoryBytes: number
  readonly isTrained: boolean
  remove(keys: BigUint64Array): Promise<number>
  removeSync(keys: BigUint64Array): number
  get(key: bigint): Float32Array | null
  contains(key: bigint): boolean
  keys(): BigUint64Array
  compressionStats(): native.NativeCompressionStats
  save(path: string): Promise<void>
  saveSync(path: string): void
  toBuffer(): Promise<Buffer>
  toBufferSync(): Buffer
  close(): void
}

/** The static loaders every native index class has. */
export interface NativeLoaders<N> {
  loadSync(path: string): N
  fromBufferSync(buffer: Uint8Array): N
  loadLoaded(path: string): Promise<unknown>
  fromBufferLoaded(buffer: Uint8Array): Promise<unknown>
  adoptLoaded(loaded: never): N
}

/** One key or many, as the BigUint64Array the native layer takes. */
export function keyArrayOf(keys: KeysInput | Key): BigUint64Array {
  return typeof keys === 'number' || typeof keys === 'bigint' ? BigUint64Array.of(checkKey(keys)) : toKeyArray(keys)
}

/** Checks a file path argument. */
export function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw invalidArgument(`path must be a non-empty string, got ${typeof path === 'string' ? JSON.stringify(path) : typeof path}`)
  }
  return path
}

/** Checks a buffer argument (any Uint8Array, Buffer included). */
export function checkBuffer(buffer: unknown): Uint8Array {
  if (!(buffer instanceof Uint8Array)) {
    throw invalidArgument(`buffer must be a Uint8Array or Buffer, got ${buffer === null ? 'null' : typeof buffer}`)
  }
  return buffer
}

/** The static loaders of a class over native class `loaders`, `wrap` making the instance: one
 * implementation for every index kind. */
export const loaders = {
  async load<N, T>(from: NativeLoaders<N>, path: string, wrap: (index: N) => T): Promise<T> {
    const file = checkPath(path)
    const loaded = await awaitNative(callNative(() => from.loadLoaded(file)))
    return wrap(callNative(() => from.adoptLoaded(loaded as never)))
  },
  loadSync<N, T>(from: NativeLoaders<N>, path: string, wrap: (index: N) => T): T {
    const file = checkPath(path)
    return wrap(callNative(() => from.loadSync(file)))
  },
  async fromBuffer<N, T>(from: NativeLoaders<N>, buffer: Uint8Array, wrap: (index: N) => T): Promise<T> {
    const bytes = checkBuffer(buffer)
    const loaded = await awaitNative(callNative(() => from.fromBufferLoaded(bytes)))
    return wrap(callNative(() => from.adoptLoaded(loaded as never)))
  },
  fromBufferSync<N, T>(from: NativeLoaders<N>, buffer: Uint8Array, wrap: (index: N) => T): T {
    const bytes = checkBuffer(buffer)
    return wrap(callNative(() => from.fromBufferSync(bytes)))
  },
}

/**
 * What every index class shares, whatever it stores: the native handle's lifecycle (an
 * idempotent `close`, `using`), keyed reads and removals, compression state, and persistence.
 */
export abstract class IndexBase<N extends NativeIndexBase> implements Disposable {
  #native: N | null

  protected constructor(index: N) {
    this.#native = index
  }

  /** The native index; throws ERR_CLOSED once closed. */
  protected handle(): N {
    if (this.#native === null) throw new VecdexError('ERR_CLOSED', 'the index is closed')
    return this.#native
  }

  /** Entries stored (vectors; documents for a multi-vector index). */
  get size(): number {
    return callNative(() => this.handle().size)
  }

  /** Native bytes held by the whole index, as reported to V8. */
  get memoryBytes(): number {
    return callNative(() => this.handle().memoryBytes)
  }

  get closed(): boolean {
    return this.#native === null
  }

  /** Removes keys (unknown keys are ignored); resolves to how many were removed. */
  async remove(keys: KeysInput | Key): Promise<number> {
    const keyArray = keyArrayOf(keys)
    return awaitNative(callNative(() => this.handle().remove(keyArray)))
  }

  /** Blocking twin of {@link remove}. */
  removeSync(keys: KeysInput | Key): number {
    const keyArray = keyArrayOf(keys)
    return callNative(() => this.handle().removeSync(keyArray))
  }

  /** The stored vector of `key` (normalised to unit length under cosine; for a multi-vector
   * index, the document's tokens, row-major), or undefined. */
  get(key: Key): Float32Array | undefined {
    const k = checkKey(key)
    return callNative(() => this.handle().get(k)) ?? undefined
  }

  contains(key: Key): boolean {
    const k = checkKey(key)
    return callNative(() => this.handle().contains(k))
  }

  /** Every key, in storage order. */
  keys(): BigUint64Array {
    return callNative(() => this.handle().keys())
  }

  /** Whether searches can run: always for an uncompressed index; a compressed one once its
   * codec is trained (see {@link CompressionOptions}). */
  get isTrained(): boolean {
    return callNative(() => this.handle().isTrained)
  }

  /** Sizes of the compressed form, and of the full vectors kept for rescoring. */
  compressionStats(): CompressionStats {
    return callNative(() => this.handle().compressionStats()) as CompressionStats
  }

  /**
   * Saves the index to `path` atomically: it writes a temporary file in the same folder, fsyncs
   * it, renames it over `path` and fsyncs the folder, so a save that fails or is killed leaves
   * the previous file intact. Saves what every write called before it left; the file is
   * checksummed (CRC-32C per section) and loads with the class's static `load`.
   */
  async save(path: string): Promise<void> {
    const file = checkPath(path)
    return awaitNative(callNative(() => this.handle().save(file)))
  }

  /** Blocking twin of {@link save}. */
  saveSync(path: string): void {
    const file = checkPath(path)
    callNative(() => this.handle().saveSync(file))
  }

  /** The index as one file image (what {@link save} writes), for storing elsewhere; the
   * class's static `fromBuffer` reads it back. */
  async toBuffer(): Promise<Buffer> {
    return awaitNative(callNative(() => this.handle().toBuffer()))
  }

  /** Blocking twin of {@link toBuffer}. */
  toBufferSync(): Buffer {
    return callNative(() => this.handle().toBufferSync())
  }

  /** Frees the native index now. Idempotent; later calls throw ERR_CLOSED; searches already
   * running finish normally. */
  close(): void {
    const handle = this.#native
    this.#native = null
    this.released()
    handle?.close()
  }

  /** Drops what a subclass keeps of the native index, when it is closed. */
  protected released(): void {}

  [Symbol.dispose](): void {
    this.close()
  }

  /**
   * Searches batch after batch from `batches`, one batch ahead of the consumer, yielding each
   * batch's results in order. Breaking out early (or `signal` firing) aborts the batch in
   * flight and waits for its native state to be released.
   */
  protected async *searchAhead<B>(batches: AsyncIterable<B>, search: (batch: B, signal: AbortSignal) => Promise<SearchResults>, signal: AbortSignal | undefined): AsyncGenerator<SearchResults, void, undefined> {
    this.handle()
    const ahead = new AbortController()
    if (signal?.aborted) throw abortError(signal)
    // The batch in flight stops with the outer signal's reason, which its error carries.
    const forward = () => ahead.abort(signal?.reason)
    signal?.addEventListener('abort', forward, { once: true })
    // A batch that finished before the abort is not yielded after it: the stream stops.
    const unlessAborted = (results: SearchResults) => {
      if (signal?.aborted) throw abortError(signal)
      return results
    }
    let pending: Promise<SearchResults> | null = null
    try {
      for await (const batch of batches) {
        const next = search(batch, ahead.signal)
        next.catch(() => {}) // observed below; avoids an unhandled rejection if abandoned
        const previous = pending
        pending = next
        if (previous) yield unlessAborted(await previous)
      }
      if (pending) {
        const last = pending
        pending = null
        yield unlessAborted(await last)
      }
    } finally {
      signal?.removeEventListener('abort', forward)
      if (pending) {
        ahead.abort()
        await pending.catch(() => {})
      }
    }
  }
}
