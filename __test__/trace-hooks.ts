// The native test hooks that let tests measure work instead of time (exported by the generated
// loader, index.js, but not by the package's API in dist/).
import native from '../index.js'

export const hooks = native as unknown as {
  /** While on, abort handles made for calls given a signal count each check of their flag in one
   * process-wide count (reset to 0), and read as aborted from check `stopAtCheck` on. */
  debugTraceAborts(on: boolean, stopAtCheck?: number): void
  /** Checks counted since debugTraceAborts. */
  debugAbortChecks(): number
  /** Counts, per query, which way HNSW searches went (reset to 0 when turned on). */
  debugCountSearchPaths(on: boolean): void
  debugSearchPaths(): { walks: number; scans: number; rescans: number }
}

/** Threads that may each finish the piece of work they are in after an abort: the compute pool
 * and the calling task thread. */
export const WORKERS = native.capabilities().threads + 1

/** Resolves once `condition` holds, looking every millisecond. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1))
}

/**
 * Aborts `controller` from the JS thread once `underWay` holds (the traced work has started),
 * then expects `pending` to reject with ERR_ABORTED; resolves to the checks made after the
 * abort (each thread should stop at its next one). Tracing must be on.
 */
export async function checksAfterAbort(pending: Promise<unknown>, controller: AbortController, underWay: () => boolean): Promise<number> {
  await until(underWay)
  controller.abort()
  const atAbort = hooks.debugAbortChecks()
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e,
  )
  if ((error as { code?: string } | undefined)?.code !== 'ERR_ABORTED') throw new Error(`expected ERR_ABORTED, got ${String(error)}`)
  return hooks.debugAbortChecks() - atAbort
}
