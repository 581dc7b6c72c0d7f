import native = require('./native')
import { abortError, VecdexError } from './errors'

/** A native stop flag tied to an AbortSignal for the life of one call (`using`). Pass `signal`
 * to `awaitNative` so an abort rejects with the signal's reason as its cause. */
export interface AbortLink extends Disposable {
  readonly native: native.NativeAbortHandle | undefined
  readonly signal: AbortSignal | undefined
}

/** Throws an AbortError (ERR_ABORTED, see `abortError`) at once if `signal` already fired;
 * otherwise links it to a native flag. */
export function abortHandle(signal: AbortSignal | undefined): AbortLink {
  if (signal === undefined) return { native: undefined, signal: undefined, [Symbol.dispose]() {} }
  if (!(signal instanceof AbortSignal)) {
    throw new VecdexError('ERR_INVALID_ARGUMENT', 'signal must be an AbortSignal')
  }
  if (signal.aborted) throw abortError(signal)
  const handle = new native.NativeAbortHandle()
  const onAbort = () => handle.abort()
  signal.addEventListener('abort', onAbort, { once: true })
  return {
    native: handle,
    signal,
    [Symbol.dispose]() {
      signal.removeEventListener('abort', onAbort)
    },
  }
}
