import native = require('./native')
import { callNative, VecdexError } from './errors'
import { type KeysInput, toKeyArray } from './keys'

/**
 * An allow-list of keys prepared once, for many searches (`{ filter: keyFilter }`).
 *
 * Any search turns its allow-list into the set of slots it admits, a hash lookup per key. With
 * a plain array that happens on every call, which for a list of thousands of keys can cost more
 * than the search. A `KeyFilter` keeps the slot set it built for each index and reuses it for
 * as long as that index's keys do not change (an add or remove rebuilds it on the next search).
 *
 * It holds native memory (the keys and those slot sets): `close()` (or `using`) frees it at
 * once; a search given a closed filter throws ERR_CLOSED, and searches already running finish.
 *
 * ```ts
 * using inStock = new KeyFilter(inStockIds)
 * for (const q of queries) index.searchSync(q, { k: 10, filter: inStock })
 * ```
 */
export class KeyFilter implements Disposable {
  #native: native.NativeKeyFilter | null

  constructor(keys: KeysInput) {
    const keyArray = toKeyArray(keys, 'filter')
    this.#native = callNative(() => new native.NativeKeyFilter(keyArray))
  }

  /** The native allow-list, for vecdex's own classes; ERR_CLOSED once closed. */
  get native(): native.NativeKeyFilter {
    if (this.#native === null) throw new VecdexError('ERR_CLOSED', 'the key filter is closed')
    return this.#native
  }

  /** Keys in the list, as given (duplicates included). */
  get size(): number {
    const filter = this.native
    return callNative(() => filter.size)
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#native === null
  }

  /** Frees the list now. Idempotent. */
  close(): void {
    const filter = this.#native
    this.#native = null
    filter?.close()
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
