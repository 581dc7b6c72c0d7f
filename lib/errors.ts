/**
 * Stable error codes. Test `err.code`, never the message.
 * - `ERR_DIMENSION_MISMATCH`: a vector or matrix does not have the index's dimension count.
 * - `ERR_INVALID_ARGUMENT`: a value out of range or of the wrong type (NaN, k = 0, bad key, ...).
 * - `ERR_ZERO_VECTOR`: a zero vector under the cosine metric, which has no direction.
 * - `ERR_CLOSED`: the index was closed.
 * - `ERR_NOT_TRAINED`: a compressed index was searched before its codec was trained.
 * - `ERR_ABORTED`: the operation's AbortSignal fired; it stopped with no partial effect. The
 *   error's `name` is `'AbortError'` and its `cause` is `signal.reason`.
 * - `ERR_CORRUPT_FILE`: a file or buffer is not a valid vecdex index (damaged, truncated or
 *   inconsistent); nothing of it was used.
 * - `ERR_UNSUPPORTED_FORMAT`: a vecdex index of a format version or kind this build cannot read.
 * - `ERR_IO`: the operating system refused to read or write a file.
 * - `ERR_READ_ONLY`: the index is a read-only view of a file.
 * - `ERR_OUT_OF_MEMORY`: a buffer sized by the call (its options, counts or inputs, or a file's
 *   header) could not be allocated; the call had no effect and the process goes on. Ask for
 *   less (smaller batches, fewer results, a smaller encoding).
 * - `ERR_INTERNAL`: a bug inside vecdex (a Rust panic included); the process lives on.
 * - `ERR_NO_BINARY`: (when `vecdex` is first required) this platform's prebuilt binary is missing
 *   or does not load; the message names the platform, the package and the reason.
 */
export type ErrorCode =
  | 'ERR_DIMENSION_MISMATCH'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_ZERO_VECTOR'
  | 'ERR_CLOSED'
  | 'ERR_NOT_TRAINED'
  | 'ERR_ABORTED'
  | 'ERR_CORRUPT_FILE'
  | 'ERR_UNSUPPORTED_FORMAT'
  | 'ERR_IO'
  | 'ERR_READ_ONLY'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_INTERNAL'
  | 'ERR_NO_BINARY'

const CODES = new Set<string>([
  'ERR_DIMENSION_MISMATCH',
  'ERR_INVALID_ARGUMENT',
  'ERR_ZERO_VECTOR',
  'ERR_CLOSED',
  'ERR_NOT_TRAINED',
  'ERR_ABORTED',
  'ERR_CORRUPT_FILE',
  'ERR_UNSUPPORTED_FORMAT',
  'ERR_IO',
  'ERR_READ_ONLY',
  'ERR_OUT_OF_MEMORY',
  'ERR_INTERNAL',
  'ERR_NO_BINARY',
])

/** Every error vecdex throws or rejects with. An abort (`ERR_ABORTED`) is named `'AbortError'`,
 * as the platform's own aborts are, and its `cause` is the signal's `reason` (for
 * `AbortSignal.timeout()`, a `TimeoutError` DOMException); every other error is named
 * `'VecdexError'`. */
export class VecdexError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = code === 'ERR_ABORTED' ? 'AbortError' : 'VecdexError'
    this.code = code
  }
}

/** The error of an operation stopped by `signal`: ERR_ABORTED, named 'AbortError', with the
 * signal's reason as its cause. */
export function abortError(signal: AbortSignal | undefined): VecdexError {
  return new VecdexError('ERR_ABORTED', 'the operation was aborted', signal ? { cause: signal.reason } : undefined)
}

/** Internal code of a sync search whose results outgrew the output it was sized for (an async
 * add grew the index meanwhile): the caller resizes and retries. Never reaches a user. */
export const RESULTS_DID_NOT_FIT = 'ERR_RESULTS_DID_NOT_FIT'

/** napi-rs's own codes for an argument of the wrong type, refused before vecdex code runs. */
const NAPI_ARGUMENT_CODES = new Set<string>([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
  'DateExpected',
  'ArrayBufferExpected',
])

/**
 * Turns an error from the native layer into a VecdexError. The native layer sets the vecdex
 * code as the error's `code` property (the message is the text alone); `signal` is the call's
 * AbortSignal, whose reason becomes the cause of an ERR_ABORTED.
 */
export function fromNative(error: unknown, signal?: AbortSignal): VecdexError {
  if (error instanceof VecdexError) return error
  const message = error instanceof Error ? error.message : String(error)
  const code: unknown = (error as { code?: unknown } | null)?.code
  if (code === 'ERR_ABORTED') return abortError(signal)
  if (typeof code === 'string' && CODES.has(code)) {
    return new VecdexError(code as ErrorCode, message, { cause: error })
  }
  // napi-rs refuses a wrongly typed argument before our code runs: that is the caller's error.
  if (typeof code === 'string' && NAPI_ARGUMENT_CODES.has(code)) {
    return new VecdexError('ERR_INVALID_ARGUMENT', message, { cause: error })
  }
  return new VecdexError('ERR_INTERNAL', message, { cause: error })
}

/** Runs a native call, mapping what it throws. */
export function callNative<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    throw fromNative(error)
  }
}

/** Awaits a native promise, mapping what it rejects with; `signal` is the call's AbortSignal
 * (see {@link fromNative}). */
export async function awaitNative<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await promise
  } catch (error) {
    throw fromNative(error, signal)
  }
}

export function invalidArgument(message: string): VecdexError {
  return new VecdexError('ERR_INVALID_ARGUMENT', message)
}
