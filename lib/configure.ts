import native = require('./native')
import { callNative, invalidArgument } from './errors'
import { checkObject, describe } from './validate'

/** Process-wide settings of vecdex, for {@link configure}. */
export interface ConfigureOptions {
  /**
   * Threads in each of vecdex's pools (the compute pool that runs searches in parallel, and the
   * lower-priority pool that trains compression models): a whole number from 1 to vecdex's
   * thread limit. Takes the place of the `VECDEX_THREADS` environment variable; default, with
   * neither: one per core.
   */
  threads?: number
}

const KNOWN: readonly string[] = ['threads']

/**
 * Sets process-wide options before vecdex first uses them. The thread pools start with the
 * first async call or parallel search and cannot be resized: call `configure({ threads })`
 * before that (for instance at start-up). Afterwards, asking for a different thread count is
 * ERR_INVALID_ARGUMENT (the count in force is accepted); so is an unknown option.
 *
 * ```ts
 * import { configure } from 'vecdex'
 * configure({ threads: 4 })
 * ```
 */
export function configure(options: ConfigureOptions): void {
  checkObject(options, 'options')
  for (const key of Object.keys(options)) {
    if (!KNOWN.includes(key)) throw invalidArgument(`unknown option '${key}' of configure: the options are ${KNOWN.join(', ')}`)
  }
  const { threads } = options
  if (threads !== undefined) {
    if (typeof threads !== 'number') throw invalidArgument(`threads must be a number, got ${describe(threads)}`)
    callNative(() => native.configureThreads(threads))
  }
}
