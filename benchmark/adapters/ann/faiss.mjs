// faiss-node IndexHNSW (HNSW over flat f32 vectors; cosine = inner product on normalised vectors).
// faiss-node is not a dependency: it is loaded, or installed once on demand, as in the exact
// suite (../faiss.mjs). Only builds that expose IndexHNSW with efConstruction and efSearch can
// take part, since every engine must build and search with the same parameters.

import { loadFaiss } from '../faiss.mjs'
import { normalisedRows } from '../common.mjs'
import { packageVersion } from '../../machine.mjs'

/** @returns {import('./index.mjs').AnnAdapter} */
export function createFaissAnnAdapter({ threads, log }) {
  /** @type {any} */
  let faiss = null
  /** @type {any} */
  let index = null
  let dim = 0
  let cosine = false
  const ompThreads = () => Number(process.env.OMP_NUM_THREADS) || threads
  return {
    name: 'faiss',
    version: null,
    notes: {
      build: 'new IndexHNSW(dim, m, metric), efConstruction set, add(number[] of all vectors): OpenMP threads (OMP_NUM_THREADS)',
      single: 'efSearch set, search(number[] of one query, k) per query',
      batch: 'search(number[] of all queries, k): OpenMP threads over queries',
    },
    batchThreads: undefined,
    async init() {
      const loaded = await loadFaiss(log)
      if (!loaded.module) return loaded.error
      const proto = loaded.module.IndexHNSW?.prototype
      const version = packageVersion('faiss-node')
      if (!proto || !('efSearch' in proto) || !('efConstruction' in proto)) {
        return `faiss-node ${version} has no IndexHNSW with efConstruction/efSearch setters: it cannot build and search with the suite's parameters`
      }
      faiss = loaded.module
      this.version = version
      return true
    },
    async build(dataset, { m, efConstruction }) {
      dim = dataset.dim
      cosine = dataset.metric === 'cosine'
      const metric = dataset.metric === 'l2sq' ? faiss.MetricType.METRIC_L2 : faiss.MetricType.METRIC_INNER_PRODUCT
      index = new faiss.IndexHNSW(dim, m, metric)
      index.efConstruction = efConstruction
      index.add(Array.from(cosine ? normalisedRows(dataset.base, dim) : dataset.base))
      this.batchThreads = ompThreads()
      return { threads: ompThreads(), threadsNote: `OpenMP (OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? 'unset'})` }
    },
    async memory() {
      return undefined
    },
    setEf(ef) {
      index.efSearch = ef
    },
    prepare(queries, q) {
      const all = cosine ? normalisedRows(queries.subarray(0, q * dim), dim) : queries.subarray(0, q * dim)
      const rows = new Array(q)
      for (let i = 0; i < q; i++) rows[i] = Array.from(all.subarray(i * dim, (i + 1) * dim))
      return { all: Array.from(all), rows, q }
    },
    async searchSequential(prepared, k, from, to) {
      const out = new Array(to - from)
      for (let i = from; i < to; i++) out[i - from] = index.search(prepared.rows[i], k).labels
      return out
    },
    async searchBatch(prepared, k) {
      return { keys: index.search(prepared.all, k).labels, k }
    },
    close() {
      index?.dispose?.()
      index = null
    },
  }
}
