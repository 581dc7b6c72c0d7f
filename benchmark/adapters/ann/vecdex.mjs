// vecdex HnswIndex: parallel build and batch search on vecdex's own pool (VECDEX_THREADS threads,
// set by run.mjs before vecdex loads), blocking searchSync for one query on the JS thread.

import { loadVecdex, rowKeys, rowViews } from '../common.mjs'

/** @returns {import('./index.mjs').AnnAdapter} */
export function createVecdexAnnAdapter({ insertionOrder } = {}) {
  /** @type {any} */
  let vecdex = null
  /** @type {any} */
  let index = null
  let dim = 0
  let ef = 64
  return {
    name: insertionOrder ? `vecdex[${insertionOrder}]` : 'vecdex',
    version: null,
    notes: {
      build: `await HnswIndex.add(keys, vectors): parallel insert on its pool${insertionOrder ? `, insertionOrder '${insertionOrder}'` : ''}`,
      single: 'HnswIndex.searchSync(query, { k, efSearch }) per query, blocking on the JS thread',
      batch: 'await HnswIndex.searchBatch(all queries, { k, efSearch }): parallel over queries on its pool',
    },
    batchThreads: undefined,
    async init() {
      const loaded = await loadVecdex()
      if (loaded.error) return loaded.error
      if (typeof loaded.module.HnswIndex !== 'function') return `vecdex ${loaded.version} has no HnswIndex export (not implemented or not built yet)`
      vecdex = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, { m, efConstruction, threads }) {
      dim = dataset.dim
      index = new vecdex.HnswIndex({ dimensions: dim, metric: dataset.metric, m, efConstruction, efSearch: ef, insertionOrder })
      await index.add(rowKeys(dataset.n), dataset.base)
      let pool
      try {
        pool = vecdex.capabilities?.().threads
      } catch {
        pool = undefined
      }
      const used = Number.isInteger(pool) && pool > 0 ? pool : threads
      this.batchThreads = used
      return { threads: used, threadsNote: `its pool (VECDEX_THREADS=${process.env.VECDEX_THREADS ?? 'unset'})` }
    },
    async memory() {
      const bytes = index?.memoryBytes
      return typeof bytes === 'number' ? { bytes, source: 'HnswIndex.memoryBytes' } : undefined
    },
    stats() {
      return index?.stats?.()
    },
    setEf(value) {
      ef = value
    },
    prepare(queries, q) {
      return { all: queries.subarray(0, q * dim), rows: rowViews(queries.subarray(0, q * dim), dim) }
    },
    async searchSequential(prepared, k, from, to) {
      const { rows } = prepared
      const out = new Array(to - from)
      const options = { k, efSearch: ef }
      for (let i = from; i < to; i++) out[i - from] = index.searchSync(rows[i], options)
      return out
    },
    async searchBatch(prepared, k) {
      const r = await index.searchBatch(prepared.all, { k, efSearch: ef })
      return { keys: r.keys, k: r.k, counts: r.counts }
    },
    close() {
      index?.close()
      index = null
    },
  }
}
