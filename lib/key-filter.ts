import native = require('./native')
import { callNative } from './errors'
import { type KeysInput, toKeyArray } from './keys'

/**
 * An allow-list of keys prepared once, for many searches (`{ filter: keyFilter }`).
 *
 * Any search turns its allow-list into the set of slots it admits, a hash lookup per key. With
 * a plain array that happens on every call, which for a list of thousands of keys can cost more
 * than the search. A `KeyFilter` keeps the slot set it built for each index and reuses it for
 * as long as that index's keys do not change (an add or remove rebuilds it on the next search).
 *
 * ```ts
 * const inStock = new KeyFilter(inStockIds)
 * for (const q of queries) index.searchSync(q, { k: 10, filter: inStock })
 * ```
 */
export class KeyFilter {
  /** The native allow-list (for vecdex's own classes). */
  readonly native: native.NativeKeyFilter

  constructor(keys: KeysInput) {
    const keyArray = toKeyArray(keys, 'filter')
    this.native = callNative(() => new native.NativeKeyFilter(keyArray))
  }

  /** Keys in the list, as given (duplicates included). */
  get size(): number {
    return this.native.size
  }
}
