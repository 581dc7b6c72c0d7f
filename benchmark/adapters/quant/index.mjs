// Compressed-index adapters for the `quant` suite: one engine per (engine, codec) pair, each an
// AnnAdapter (../ann/index.mjs) with a few more members. The suite trains (timed apart), builds,
// reads the compressed sizes, then sweeps each engine's own parameter (efSearch or nprobes).

import { initAdapter, peerNames } from '../index.mjs'
import { VECDEX_CODECS, createVecdexQuantAdapter, parseVecdexCodec } from './vecdex.mjs'
import { USEARCH_CODECS, createUsearchQuantAdapter } from './usearch.mjs'
import { LANCEDB_CODECS, LANCEDB_DEFAULT_CODECS, createLancedbQuantAdapter } from './lancedb.mjs'
import { FAISS_CODECS, createFaissQuantAdapter } from './faiss.mjs'

export { efSweepFrom } from './sweep-values.mjs'

/**
 * @typedef {object} QuantCompression
 * @property {number} codeBytes      bytes per vector of the searched form (codes)
 * @property {number} rescoreBytes   bytes per vector kept for rescoring (0: none)
 * @property {number} [searchDimensions]
 * @property {string} source         where the figures come from
 * @property {object} [raw]          the engine's own report
 */
/**
 * @typedef {import('../ann/index.mjs').AnnAdapter & {
 *   family: string,
 *   codec: string,
 *   sweepParam: string,
 *   setup?: string,
 *   rescoreSetting?: string,
 *   train?: (dataset: import('../../datasets.mjs').Dataset, params: object) => Promise<object>,
 *   compression: () => QuantCompression,
 *   configure?: (dataset: import('../../datasets.mjs').Dataset) => void,
 *   sweepValues?: (efs: number[], explicitEf: boolean, k: number) => number[],
 *   budgetSeconds?: number,
 * }} QuantAdapter
 *   train: learns the codec from `params.sample` (the first base rows); the suite times it apart
 *   from build. sweepValues: the engine's sweep (default: the efSearch list). budgetSeconds: the
 *   engine's own search-time budget, for slow engines.
 */

/** Engines of the quant suite, in build order (`--peers all`). */
export const QUANT_PEERS = ['vecdex', 'usearch', 'lancedb', 'faiss']

/** Codecs run by default, per engine (`--codecs` picks others, e.g. `pq@10`, `sq8@raw`, `bf16`, `pca`). */
export const DEFAULT_CODECS = {
  vecdex: ['f32', 'f16', 'sq8', 'sq8-asym', 'sq4', 'binary', 'rabitq', 'rabitq4', 'pq', 'pq@4', 'pca-sq8'],
  usearch: USEARCH_CODECS,
  lancedb: LANCEDB_DEFAULT_CODECS,
  faiss: FAISS_CODECS,
}

const KNOWN = {
  vecdex: (token) => parseVecdexCodec(token) !== undefined,
  usearch: (token) => USEARCH_CODECS.includes(token),
  lancedb: (token) => LANCEDB_CODECS.includes(token),
  faiss: (token) => FAISS_CODECS.includes(token),
}

const FACTORIES = {
  vecdex: createVecdexQuantAdapter,
  usearch: createUsearchQuantAdapter,
  lancedb: createLancedbQuantAdapter,
  faiss: createFaissQuantAdapter,
}

export const CODEC_HELP = Object.entries({ vecdex: Object.keys(VECDEX_CODECS), usearch: USEARCH_CODECS, lancedb: LANCEDB_CODECS, faiss: FAISS_CODECS })
  .map(([engine, all]) => `${engine}: ${[...new Set([...all, ...DEFAULT_CODECS[engine]])].map((c) => (DEFAULT_CODECS[engine].includes(c) ? c : `(${c})`)).join(', ')}`)
  .join('; ')
  .concat(' — in parentheses: not run by default; vecdex names take @<n> (oversample n) or @raw (no rescoring)')

/**
 * Codecs per engine: the defaults, or the `--codecs` names each engine knows. Throws on a name
 * no engine knows.
 * @param {string[] | undefined} codecs
 * @returns {Record<string, string[]>}
 */
export function codecsPerEngine(codecs) {
  if (!codecs) return DEFAULT_CODECS
  for (const token of codecs) {
    if (!Object.values(KNOWN).some((known) => known(token))) throw new Error(`unknown codec "${token}": ${CODEC_HELP}`)
  }
  return Object.fromEntries(Object.entries(KNOWN).map(([engine, known]) => [engine, codecs.filter(known)]))
}

/**
 * The requested (engine, codec) adapters that initialise, in order. An engine whose first
 * adapter does not initialise (package missing, API absent) is logged and recorded once in
 * `engines` as `{ name, skipped }`, and its other codecs are not tried.
 * @param {string} peers  `all` or a comma-separated list of engines
 * @param {Record<string, string[]>} codecs  from codecsPerEngine
 * @param {object[]} engines
 * @param {(msg: string) => void} log
 * @param {{ threads: number }} opts
 * @returns {AsyncGenerator<QuantAdapter>}
 */
export async function* readyQuantAdapters(peers, codecs, engines, log, { threads }) {
  for (const family of peerNames(peers, QUANT_PEERS)) {
    const tokens = codecs[family] ?? []
    if (!FACTORIES[family] || tokens.length === 0) {
      const reason = FACTORIES[family] ? 'no codec of this engine in --codecs' : 'no quant adapter for this peer'
      log(`${family}: skipped — ${reason}`)
      engines.push({ name: family, family, skipped: reason })
      continue
    }
    for (const token of tokens) {
      const adapter = FACTORIES[family]({ token, threads, log })
      const status = await initAdapter(adapter)
      if (status !== true) {
        log(`${family}: skipped — ${status}`)
        engines.push({ name: family, family, skipped: status })
        break
      }
      yield adapter
    }
  }
}
