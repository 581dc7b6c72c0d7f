// Graph-index (approximate) adapters for the `ann` suite: one interface for vecdex and its peers.
// Every engine builds with the same m, efConstruction and metric; the suite then sets efSearch
// and times two search modes, with queries prepared once (untimed) in each engine's own form.

import { readyFrom } from '../index.mjs'
import { createVecdexAnnAdapter } from './vecdex.mjs'
import { createUsearchAnnAdapter } from './usearch.mjs'
import { createHnswlibAnnAdapter } from './hnswlib.mjs'
import { createLancedbAnnAdapter } from './lancedb.mjs'
import { createFaissAnnAdapter } from './faiss.mjs'

/**
 * @typedef {object} AnnBuildParams
 * @property {number} m               max neighbours per node on the upper layers (layer 0: 2m)
 * @property {number} efConstruction  candidate list size while inserting
 * @property {number} threads         --threads: the most threads an engine may build with
 * @property {(msg: string) => void} log
 */
/**
 * @typedef {object} AnnBuildInfo
 * @property {number} threads         threads the build actually used
 * @property {string} [threadsNote]   how that count was set, or why it is 1
 * @property {Record<string, number>} [phases]  seconds of the build's parts, when it has several
 * @property {object} [details]       anything else worth keeping in the JSON
 */
/**
 * @typedef {object} AnnMemory
 * @property {number} bytes
 * @property {string} source          what the figure is (engine API, serialised size, files on disk)
 */
/**
 * Keys per query, best first, as base row numbers: a list with one entry per query (an
 * array-like of keys, or `{ keys, counts }` of one query), or one flat `{ keys, k, counts? }`.
 * @typedef {Array<ArrayLike<number | bigint> | { keys: ArrayLike<number | bigint>, counts?: ArrayLike<number | bigint> }> | { keys: ArrayLike<number | bigint>, k: number, counts?: ArrayLike<number | bigint> }} AnnResults
 */
/**
 * @typedef {object} AnnAdapter
 * @property {string} name
 * @property {string | null} version          installed package version
 * @property {{ build: string, single: string, batch: string, other?: string }} notes  how each step calls the engine (for the report)
 * @property {() => Promise<true | string>} init  true, or the reason to skip this peer
 * @property {(dataset: import('../../datasets.mjs').Dataset, params: AnnBuildParams) => Promise<AnnBuildInfo>} build
 *   index every base row under its row number; the suite times this call
 * @property {() => Promise<AnnMemory | undefined>} memory  the index's own size, after build
 * @property {() => object | undefined} [stats]  engine statistics (levels, degrees, …), after build
 * @property {(ef: number) => void | Promise<void>} setEf  efSearch for the searches that follow (untimed)
 * @property {(queries: Float32Array, q: number) => any} prepare  queries in the engine's input form (untimed)
 * @property {(prepared: any, k: number, from: number, to: number) => Promise<AnnResults>} searchSequential
 *   queries from … to − 1 (of the prepared ones), one at a time, each finished before the next
 *   (a blocking call on the JS thread where the engine has one); results as a list per query
 * @property {((prepared: any, k: number) => Promise<AnnResults>) | undefined} searchBatch
 *   all queries at once on the engine's threads; undefined when the engine has no parallel search
 * @property {number | undefined} batchThreads  threads a batch search uses (set by build)
 * @property {() => void | Promise<void>} close  frees the index and removes temporary files
 */

/** ANN peers, in build order (`--peers all`). */
export const ANN_PEERS = ['vecdex', 'usearch', 'hnswlib', 'lancedb', 'faiss']

/** @type {Record<string, (opts: { threads: number, log: (msg: string) => void }) => AnnAdapter>} */
const FACTORIES = {
  vecdex: createVecdexAnnAdapter,
  usearch: createUsearchAnnAdapter,
  hnswlib: createHnswlibAnnAdapter,
  lancedb: createLancedbAnnAdapter,
  faiss: createFaissAnnAdapter,
}

/**
 * The requested ANN adapters that initialise, in order. A peer that fails to load is logged and
 * recorded in `engines` as `{ name, skipped: reason }`, never thrown.
 * @param {string} peers  `all` or a comma-separated list
 * @param {object[]} engines
 * @param {(msg: string) => void} log
 * @param {{ threads: number, orders?: string[] }} opts  `orders`: extra vecdex insertion orders
 * @returns {AsyncGenerator<AnnAdapter>}
 */
export async function* readyAnnAdapters(peers, engines, log, { threads, orders = [] }) {
  const factories = Object.fromEntries(Object.entries(FACTORIES).map(([name, make]) => [name, () => make({ threads, log })]))
  for await (const adapter of readyFrom({ peers, order: ANN_PEERS, factories, suite: 'ANN' }, engines, log)) {
    yield adapter
    // The same engine with other insertion orders, measured in the same run (see --orders).
    if (adapter.name !== 'vecdex') continue
    for (const insertionOrder of orders) {
      const variant = createVecdexAnnAdapter({ threads, log, insertionOrder })
      const status = await variant.init()
      if (status === true) yield variant
      else engines.push({ name: variant.name, skipped: status })
    }
  }
}
