// vecdex FlatIndex: exact search, batch on its own Rayon pool (size VECDEX_THREADS, set by run.mjs).

import { loadVecdex, rowKeys } from './common.mjs'

/** @returns {import('./index.mjs').Adapter} */
export function createVecdexAdapter() {
  /** @type {any} */
  let vecdex = null
  /** @type {any} */
  let index = null
  return {
    name: 'vecdex',
    version: null,
    batchNote: 'FlatIndex.searchBatch (async batch: tiled matrix product with fused top-k on its pool)',
    singleNote: 'FlatIndex.searchSync (one query, blocking)',
    async init() {
      const loaded = await loadVecdex()
      if (loaded.error) return loaded.error
      vecdex = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset) {
      index = new vecdex.FlatIndex({ dimensions: dataset.dim, metric: dataset.metric })
      await index.add(rowKeys(dataset.n), dataset.base)
    },
    async searchBatch(queries, q, k) {
      const r = await index.searchBatch(queries, { k })
      return { keys: r.keys, k: r.k, counts: r.counts }
    },
    searchOne(query, k) {
      return index.searchSync(query, { k }).keys
    },
    memoryBytes() {
      return index?.memoryBytes
    },
    /** The FlatIndex itself, for suites that measure vecdex alone. */
    get index() {
      return index
    },
    close() {
      index?.close()
      index = null
    },
  }
}
