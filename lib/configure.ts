import native = require('./native')
import { callNative } from './errors'
import { checkOptions } from './options'

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
  const { threads } = checkOptions<ConfigureOptions>(options, 'ConfigureOptions')
  if (threads !== undefined) callNative(() => native.configureThreads(threads))
}
