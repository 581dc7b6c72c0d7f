// USearch's exactSearch: a brute-force scan over a flat Float32Array, multi-threaded, no index.

import { loadPeer } from './common.mjs'

/** @returns {import('./index.mjs').Adapter} */
export function createUsearchAdapter() {
  /** @type {any} */
  let usearch = null
  let data = null
  let metric = null
  let threads = 1
  return {
    name: 'usearch',
    version: null,
    batchNote: 'exactSearch(dataset, queries, …, threads): brute force, whole batch in one call',
    singleNote: 'exactSearch with one query',
    async init() {
      const loaded = loadPeer('usearch')
      if (loaded.error) return loaded.error
      usearch = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, opts) {
      const kinds = { cosine: usearch.MetricKind.Cos, l2sq: usearch.MetricKind.L2sq, dot: usearch.MetricKind.IP }
      metric = kinds[dataset.metric]
      data = { base: dataset.base, dim: dataset.dim, n: dataset.n }
      threads = opts.threads
    },
    async searchBatch(queries, q, k) {
      const r = usearch.exactSearch(data.base, queries, data.dim, Math.min(k, data.n), metric, threads)
      if (q === 1) return [Array.from(r.keys, Number)]
      return { keys: r.keys, k: r.k, counts: r.counts }
    },
    searchOne(query, k) {
      return usearch.exactSearch(data.base, query, data.dim, Math.min(k, data.n), metric, threads).keys
    },
    close() {
      data = null
    },
  }
}
