import { invalidArgument } from './errors'
import { describe } from './validate'

/** A key: an unsigned integer. Numbers up to 2^53 − 1; bigint for the 64-bit range. The
 * largest, 2^64 − 1, is reserved: it marks the empty cells of search results, so adding
 * it is ERR_INVALID_ARGUMENT (looking it up, removing it or filtering by it finds nothing). */
export type Key = number | bigint

/** Many keys: any of these forms. Negative, fractional, NaN or too-large keys are errors. */
export type KeysInput =
  | BigUint64Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | Int32Array
  | Float64Array
  | readonly Key[]
  | ReadonlySet<Key>

/** The largest value a key can hold: 2^64 − 1 (reserved as {@link NO_KEY}). */
export const MAX_KEY = 0xffff_ffff_ffff_ffffn
/** The key of an empty search-result cell, 2^64 − 1: no index accepts it as a key (the core
 * refuses it on every add, `vecdex::validate::NO_KEY`). */
export const NO_KEY = MAX_KEY
const TWO_32 = 2 ** 32
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

export function checkKey(key: unknown, what = 'key'): bigint {
  if (typeof key === 'number') {
    if (!Number.isSafeInteger(key) || key < 0) {
      throw invalidArgument(`${what} must be an unsigned integer (up to 2^53 − 1 as a number; use bigint above), got ${key}`)
    }
    return BigInt(key)
  }
  if (typeof key === 'bigint') {
    if (key < 0n || key > MAX_KEY) throw invalidArgument(`${what} must fit in an unsigned 64-bit integer, got ${key}n`)
    return key
  }
  throw invalidArgument(`${what} must be a number or bigint, got ${describe(key)}`)
}

/** Converts keys to the BigUint64Array the native layer takes (passed through if it is one). */
export function toKeyArray(input: unknown, what = 'keys'): BigUint64Array {
  if (input instanceof BigUint64Array) return input
  if (input instanceof Uint32Array || input instanceof Uint16Array || input instanceof Uint8Array) {
    return widen(input)
  }
  if (input instanceof Int32Array || input instanceof Float64Array) {
    const out = new BigUint64Array(input.length)
    for (let i = 0; i < input.length; i++) out[i] = checkKey(input[i], `${what}[${i}]`)
    return out
  }
  if (input instanceof Set) return toKeyArray([...input], what)
  if (!Array.isArray(input)) {
    throw invalidArgument(`${what} must be an array, Set or typed array of unsigned integers, got ${describe(input)}`)
  }
  const out = new BigUint64Array(input.length)
  if (LITTLE_ENDIAN) {
    // Numbers go in as two 32-bit halves: far cheaper than one BigInt per key.
    const halves = new Uint32Array(out.buffer)
    for (let i = 0; i < input.length; i++) {
      const key: unknown = input[i]
      if (typeof key === 'number' && Number.isSafeInteger(key) && key >= 0) {
        halves[2 * i] = key % TWO_32
        halves[2 * i + 1] = Math.floor(key / TWO_32)
      } else {
        out[i] = checkKey(key, `${what}[${i}]`)
      }
    }
  } else {
    for (let i = 0; i < input.length; i++) out[i] = checkKey(input[i], `${what}[${i}]`)
  }
  return out
}

function widen(input: Uint32Array | Uint16Array | Uint8Array): BigUint64Array {
  const out = new BigUint64Array(input.length)
  if (LITTLE_ENDIAN) {
    const halves = new Uint32Array(out.buffer)
    for (let i = 0; i < input.length; i++) halves[2 * i] = input[i]
  } else {
    for (let i = 0; i < input.length; i++) out[i] = BigInt(input[i])
  }
  return out
}
