// hnswlib-node BruteforceSearch: exact, single-threaded, one query per call (number[] arguments).

import { loadPeer } from './common.mjs'

/** @returns {import('./index.mjs').Adapter} */
export function createHnswlibAdapter() {
  /** @type {any} */
  let hnswlib = null
  /** @type {any} */
  let index = null
  let dim = 0
  return {
    name: 'hnswlib',
    version: null,
    batchNote: 'BruteforceSearch.searchKnn called once per query (no batch API; single-threaded)',
    singleNote: 'BruteforceSearch.searchKnn',
    async init() {
      const loaded = loadPeer('hnswlib-node')
      if (loaded.error) return loaded.error
      hnswlib = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset) {
      const spaces = { cosine: 'cosine', l2sq: 'l2', dot: 'ip' }
      dim = dataset.dim
      index = new hnswlib.BruteforceSearch(spaces[dataset.metric], dim)
      index.initIndex(dataset.n)
      for (let i = 0; i < dataset.n; i++) index.addPoint(Array.from(dataset.base.subarray(i * dim, (i + 1) * dim)), i)
    },
    async searchBatch(queries, q, k) {
      const out = new Array(q)
      for (let i = 0; i < q; i++) out[i] = index.searchKnn(Array.from(queries.subarray(i * dim, (i + 1) * dim)), k).neighbors
      return out
    },
    searchOne(query, k) {
      return index.searchKnn(Array.from(query), k).neighbors
    },
    close() {
      index = null
    },
  }
}
