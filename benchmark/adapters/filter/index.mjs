// The engines of the filter suite (suites/filter.mjs): vecdex's Collection and its peers, each
// given the same vectors, the same labels and the same filter in its own form.

/**
 * Per-row labels, the metadata every engine stores.
 * @typedef {object} Labels
 * @property {number} n
 * @property {Record<string, { type: 'string' | 'number', values: ArrayLike<string | number> }>} columns
 * @property {string} source   where the labels come from, for the report
 */

/**
 * One filter in every engine's form, and which rows it admits.
 * @typedef {object} FilterSpec
 * @property {string} name      short label for the tables
 * @property {Record<string, unknown>} filter   vecdex's filter object
 * @property {string} where     the same filter as SQL (LanceDB)
 * @property {(row: number) => boolean} admits  the same filter in plain JS over the labels
 * @property {Uint8Array} [admitted]  1 for each admitted row (filled by the suite)
 */

/**
 * @typedef {object} FilterEngine
 * @property {string} name
 * @property {'vecdex' | 'lancedb' | 'hnswlib'} family
 * @property {boolean} [async]            search returns a Promise
 * @property {string | null} version
 * @property {string} sweepName           what the sweep value is ('–': nothing to sweep)
 * @property {string} setup               configuration, for the report (after build)
 * @property {string} notes               how it was driven, for the report (after build)
 * @property {() => Promise<true | string>} init
 * @property {(dataset: import('../../datasets.mjs').Dataset, labels: Labels, opts: { m: number, efConstruction: number, threads: number }) => Promise<{ threads: number, seconds?: number, details?: object }>} build
 * @property {(efs: number[]) => number[]} sweep
 * @property {(queries: Float32Array, q: number) => any[]} prepareQueries
 * @property {(spec: FilterSpec | null) => any} compileFilter   null: no filter
 * @property {(compiled: any) => number | Promise<number>} [count]
 * @property {(value: number) => void} setSweep
 * @property {(query: any, k: number, compiled: any) => ArrayLike<number> | Promise<ArrayLike<number>>} search
 * @property {(queries: any[], k: number, compiled: any) => Promise<ArrayLike<number>[]>} [searchBatch]
 * @property {() => void | Promise<void>} close
 */

import { createVecdexFilterEngine } from './vecdex.mjs'
import { createLancedbFilterEngine, LANCEDB_VARIANTS } from './lancedb.mjs'
import { createHnswlibFilterEngine } from './hnswlib.mjs'

/** Peer names of --peers this suite knows, in run order. */
export const FILTER_PEERS = ['vecdex', 'lancedb', 'hnswlib']

/**
 * The engines for `--peers` (all, or a comma-separated list of FILTER_PEERS; other known peer
 * names are skipped by the suite): vecdex is its hnsw and flat Collections, LanceDB one engine
 * per vector set-up.
 * @param {string[]} peers
 * @param {{ threads: number }} options
 * @returns {FilterEngine[]}
 */
export function filterEngines(peers, { threads }) {
  const engines = []
  if (peers.includes('vecdex')) engines.push(createVecdexFilterEngine({ index: 'hnsw' }), createVecdexFilterEngine({ index: 'flat' }))
  if (peers.includes('lancedb')) for (const variant of LANCEDB_VARIANTS) engines.push(createLancedbFilterEngine({ threads, variant }))
  if (peers.includes('hnswlib')) engines.push(createHnswlibFilterEngine())
  return engines
}
