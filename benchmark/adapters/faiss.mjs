// faiss-node IndexFlatL2 / IndexFlatIP (cosine: normalised vectors under IndexFlatIP).
// faiss-node is not one of the pinned peers (benchmark/peers): if it is missing, one
// `npm install --no-save faiss-node@latest` is tried (120 s limit) in the workspace's on-demand
// peer folder (workspace.mjs; never the package's own folder). Its install step downloads faiss
// from GitHub, so it usually fails offline; the outcome is remembered in the cache folder's
// faiss-install.json (delete it to retry).

import fs from 'node:fs'
import path from 'node:path'
import { cacheDir } from '../datasets.mjs'
import { loadPeer, onDemandPeerDir, runNpm } from '../workspace.mjs'
import { normalisedRows } from './common.mjs'

const MARKER = path.join(cacheDir, 'faiss-install.json')

/** Loads faiss-node, installing it once on demand; returns the module and version or a skip reason. */
export async function loadFaiss(log) {
  const first = loadPeer('faiss-node')
  if (first.module) return first
  if (fs.existsSync(MARKER)) {
    const previous = JSON.parse(fs.readFileSync(MARKER, 'utf8'))
    return { error: `faiss-node is not installed; the install tried on ${previous.date} failed: ${previous.reason} (delete ${MARKER} to try again)` }
  }
  const dir = onDemandPeerDir()
  log(`faiss-node missing: trying \`npm install --no-save faiss-node@latest\` once in ${dir} (120 s limit)…`)
  const r = await runNpm(['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', 'faiss-node@latest'], { cwd: dir, timeoutMs: 120_000 })
  const second = r.code === 0 ? loadPeer('faiss-node') : null
  if (second?.module) return second
  const lastLines = r.output.trim().split('\n').filter((l) => l.trim() && !/complete log of this run/.test(l)).slice(-2).join(' | ')
  const reason = r.code !== 0 ? `npm install failed (exit ${r.code}): ${lastLines.slice(0, 300)}` : `installed but cannot load: ${second?.error}`
  fs.mkdirSync(cacheDir, { recursive: true })
  fs.writeFileSync(MARKER, JSON.stringify({ date: new Date().toISOString(), reason }, null, 2))
  return { error: `faiss-node unavailable: ${reason}` }
}

/** @returns {import('./index.mjs').Adapter} */
export function createFaissAdapter() {
  /** @type {any} */
  let faiss = null
  /** @type {any} */
  let index = null
  let dim = 0
  let cosine = false
  return {
    name: 'faiss',
    version: null,
    batchNote: 'IndexFlatL2 / IndexFlatIP search(number[] of all queries, k) (threads: OMP_NUM_THREADS; queries converted to number[], and normalised for cosine, before the timer)',
    singleNote: 'IndexFlat search with one query',
    log: (/** @type {string} */ s) => console.error(s),
    async init() {
      const loaded = await loadFaiss(this.log)
      if (!loaded.module) return loaded.error
      faiss = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset) {
      dim = dataset.dim
      cosine = dataset.metric === 'cosine'
      index = dataset.metric === 'l2sq' ? new faiss.IndexFlatL2(dim) : new faiss.IndexFlatIP(dim)
      index.add(Array.from(cosine ? normalisedRows(dataset.base, dim) : dataset.base))
    },
    async prepareQueries(queries) {
      // faiss-node takes number[]: converted (and normalised for cosine) before the timer.
      return Array.from(cosine ? normalisedRows(queries, dim) : queries)
    },
    async searchBatch(queries, q, k) {
      const r = index.search(queries, k)
      return { keys: r.labels, k }
    },
    searchOne(query, k) {
      return index.search(Array.from(cosine ? normalisedRows(query, dim) : query), k).labels
    },
    close() {
      index = null
    },
  }
}
