// The adapters share one interface, so every suite treats vecdex and its peers alike.
//
// @typedef {object} Adapter
// @property {string} name
// @property {string | null} version          installed package version
// @property {string} batchNote              how a batch is searched (for the report)
// @property {string} [singleNote]           how one query is searched, if it can
// @property {() => Promise<true | string>} init  true, or the reason to skip this peer
// @property {(dataset: import('../datasets.mjs').Dataset, opts: { threads: number }) => Promise<void>} build
// @property {(queries: Float32Array, q: number, k: number) => Promise<number[][] | { keys: ArrayLike<number | bigint>, k: number, counts?: ArrayLike<number> }>} searchBatch
//   keys are base row numbers, best first
// @property {(query: Float32Array, k: number) => ArrayLike<number | bigint>} [searchOne] one query, blocking
// @property {() => number | undefined} [memoryBytes]
// @property {() => void} close

import { createVecdexAdapter } from './vecdex.mjs'
import { createUsearchAdapter } from './usearch.mjs'
import { createHnswlibAdapter } from './hnswlib.mjs'
import { createFaissAdapter } from './faiss.mjs'

export const PEERS = ['vecdex', 'usearch', 'hnswlib', 'faiss']

const FACTORIES = {
  vecdex: createVecdexAdapter,
  usearch: createUsearchAdapter,
  hnswlib: createHnswlibAdapter,
  faiss: createFaissAdapter,
}

/** Adapters for `--peers all` or a comma-separated list of PEERS. */
export function createAdapters(peers) {
  const names = peers === 'all' ? PEERS : peers.split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of names) {
    if (!FACTORIES[name]) throw new Error(`unknown peer "${name}": choose from all, ${PEERS.join(', ')}`)
  }
  return names.map((name) => FACTORIES[name]())
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
 * The requested adapters that initialise, in order. Each one that does not is logged and
 * recorded in `engines` as `{ name, skipped: reason }`; `accept` filters adapters first.
 */
export async function* readyAdapters(peers, engines, log, accept = () => true) {
  for (const adapter of createAdapters(peers)) {
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
