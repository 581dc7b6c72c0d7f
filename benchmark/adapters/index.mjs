// The adapters share one interface, so every suite treats vecdex and its peers alike.

/**
 * @typedef {object} Adapter
 * @property {string} name
 * @property {string | null} version          installed package version
 * @property {string} batchNote              how a batch is searched (for the report)
 * @property {string} [singleNote]           how one query is searched, if it can
 * @property {() => Promise<true | string>} init  true, or the reason to skip this peer
 * @property {(dataset: import('../datasets.mjs').Dataset, opts: { threads: number, mode?: 'batch' | 'single' }) => Promise<void>} build
 *   mode 'single' (the single suite) builds only what searchOne needs
 * @property {(queries: Float32Array, q: number) => Promise<any>} [prepareQueries]
 *   converts a batch into the engine's own input form (e.g. number[] rows, normalised rows)
 *   before the timer starts; searchBatch then gets its result (the Float32Array without it)
 * @property {(queries: any, q: number, k: number) => Promise<number[][] | { keys: ArrayLike<number | bigint>, k: number, counts?: ArrayLike<number> }>} searchBatch
 *   keys are base row numbers, best first
 * @property {(query: Float32Array, k: number) => ArrayLike<number | bigint>} [searchOne] one query, blocking
 * @property {() => number | undefined} [memoryBytes]
 * @property {() => void} close
 */

import { createVecdexAdapter } from './vecdex.mjs'
import { createUsearchAdapter } from './usearch.mjs'
import { createHnswlibAdapter } from './hnswlib.mjs'
import { createFaissAdapter } from './faiss.mjs'

/** Exact-search peers, in run order (`--peers all`). */
export const PEERS = ['vecdex', 'usearch', 'hnswlib', 'faiss']

/**
 * Every peer name any suite knows (exact: PEERS; ann: ANN_PEERS in ann/index.mjs); a suite
 * skips, and reports, the ones it has no adapter for.
 */
export const ALL_PEERS = ['vecdex', 'usearch', 'hnswlib', 'lancedb', 'faiss']

const FACTORIES = {
  vecdex: createVecdexAdapter,
  usearch: createUsearchAdapter,
  hnswlib: createHnswlibAdapter,
  faiss: createFaissAdapter,
}

/**
 * Names for `--peers all` (= `order`) or a comma-separated list. Throws on a name no suite knows.
 * @param {string} peers
 * @param {string[]} order
 */
export function peerNames(peers, order) {
  const names = peers === 'all' ? order : peers.split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of names) {
    if (!ALL_PEERS.includes(name)) throw new Error(`unknown peer "${name}": choose from all, ${ALL_PEERS.join(', ')}`)
  }
  return names
}

/**
 * Initialises an adapter, turning a thrown error into a skip reason (a peer never crashes a run).
 * @returns {Promise<true | string>}
 */
export async function initAdapter(adapter) {
  try {
    return await adapter.init()
  } catch (error) {
    return `init failed: ${error?.message ?? error}`
  }
}

/**
 * The requested adapters made by `factories` that initialise, in order. A requested peer with
 * no factory here, and each adapter that does not initialise, is logged and recorded in
 * `engines` as `{ name, skipped: reason }`; `accept` filters adapters before they initialise.
 * @template {{ name: string, init: () => Promise<true | string> }} A
 * @param {{ peers: string, order: string[], factories: Record<string, () => A>, suite: string }} spec
 * @param {object[]} engines
 * @param {(msg: string) => void} log
 * @param {(adapter: A) => boolean} [accept]
 * @returns {AsyncGenerator<A>}
 */
export async function* readyFrom({ peers, order, factories, suite }, engines, log, accept = () => true) {
  for (const name of peerNames(peers, order)) {
    if (!factories[name]) {
      const reason = `no ${suite} adapter for this peer`
      log(`${name}: skipped — ${reason}`)
      engines.push({ name, skipped: reason })
      continue
    }
    const adapter = factories[name]()
    if (!accept(adapter)) continue
    const status = await initAdapter(adapter)
    if (status !== true) {
      log(`${adapter.name}: skipped — ${status}`)
      engines.push({ name: adapter.name, skipped: status })
      continue
    }
    yield adapter
  }
}

/**
 * The requested exact-search adapters that initialise, in order (see `readyFrom`).
 * @returns {AsyncGenerator<Adapter>}
 */
export function readyAdapters(peers, engines, log, accept = () => true) {
  return readyFrom({ peers, order: PEERS, factories: FACTORIES, suite: 'exact-search' }, engines, log, accept)
}
