// USearch's exactSearch: a brute-force scan over a flat Float32Array, multi-threaded, no index.
// At its best here: for cosine, the base rows are normalised once at build and the queries
// before the timer (`prepareQueries`), and the scan uses MetricKind.IP, an inner product per
// pair, instead of MetricKind.Cos, which also computes both norms for every pair; `threads` is
// every thread of the run (--threads).

import { loadPeer, normalisedRows } from './common.mjs'

/** @returns {import('./index.mjs').Adapter} */
export function createUsearchAdapter() {
  /** @type {any} */
  let usearch = null
  let data = null
  let metric = null
  let cosine = false
  let threads = 1
  return {
    name: 'usearch',
    version: null,
    batchNote: '',
    singleNote: 'exactSearch with one query',
    async init() {
      const loaded = loadPeer('usearch')
      if (loaded.error) return loaded.error
      usearch = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, opts) {
      const kinds = { cosine: usearch.MetricKind.IP, l2sq: usearch.MetricKind.L2sq, dot: usearch.MetricKind.IP }
      cosine = dataset.metric === 'cosine'
      metric = kinds[dataset.metric]
      data = { base: cosine ? normalisedRows(dataset.base, dataset.dim) : dataset.base, dim: dataset.dim, n: dataset.n }
      threads = opts.threads
      this.batchNote =
        `exactSearch(base, queries, …, ${metric === usearch.MetricKind.IP ? 'MetricKind.IP' : 'MetricKind.L2sq'}, threads ${threads}): brute force, whole batch in one call` +
        (cosine ? '; rows normalised at build and queries before the timer (IP on unit rows = cosine)' : '')
    },
    async prepareQueries(queries) {
      return cosine ? normalisedRows(queries, data.dim) : queries
    },
    async searchBatch(queries, q, k) {
      const r = usearch.exactSearch(data.base, queries, data.dim, Math.min(k, data.n), metric, threads)
      if (q === 1) return [Array.from(r.keys, Number)]
      return { keys: r.keys, k: r.k, counts: r.counts }
    },
    searchOne(query, k) {
      const q = cosine ? normalisedRows(query, data.dim) : query
      return usearch.exactSearch(data.base, q, data.dim, Math.min(k, data.n), metric, threads).keys
    },
    close() {
      data = null
    },
  }
}
