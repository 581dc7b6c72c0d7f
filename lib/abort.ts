import native = require('./native')
import { VecdexError } from './errors'

/** A native stop flag tied to an AbortSignal for the life of one call (`using`). */
export interface AbortLink extends Disposable {
  readonly native: native.NativeAbortHandle | undefined
}

/** Throws ERR_ABORTED at once if `signal` already fired; otherwise links it to a native flag. */
export function abortHandle(signal: AbortSignal | undefined): AbortLink {
  if (signal === undefined) return { native: undefined, [Symbol.dispose]() {} }
  if (!(signal instanceof AbortSignal)) {
    throw new VecdexError('ERR_INVALID_ARGUMENT', 'signal must be an AbortSignal')
  }
  if (signal.aborted) throw new VecdexError('ERR_ABORTED', 'the operation was aborted')
  const handle = new native.NativeAbortHandle()
  const onAbort = () => handle.abort()
  signal.addEventListener('abort', onAbort, { once: true })
  return {
    native: handle,
    [Symbol.dispose]() {
      signal.removeEventListener('abort', onAbort)
    },
  }
}
