// faiss-node's compressed flat indexes from index_factory strings: 'SQ8' (8-bit scalar
// quantizer) and 'PQ<d/4>x8' (product quantizer, m = d/4), scanned exhaustively on their codes
// (one sweep point). faiss-node is loaded, or installed once on demand, as in the other suites
// (../faiss.mjs); a build without Index.fromFactory cannot take part.

import { loadFaiss } from '../faiss.mjs'
import { normalisedRows } from '../common.mjs'
import { packageVersion } from '../../machine.mjs'

export const FAISS_CODECS = ['sq8', 'pq']

/** @returns {import('./index.mjs').QuantAdapter} */
export function createFaissQuantAdapter({ token, threads, log }) {
  if (!FAISS_CODECS.includes(token)) throw new Error(`unknown faiss codec "${token}"`)
  /** @type {any} */
  let faiss = null
  /** @type {any} */
  let index = null
  let dim = 0
  let cosine = false
  let factory = ''
  const ompThreads = () => Number(process.env.OMP_NUM_THREADS) || threads
  return {
    name: `faiss ${token}`,
    family: 'faiss',
    codec: token,
    version: null,
    sweepParam: 'scan',
    notes: {
      build: 'Index.fromFactory(dim, factory, metric), train(number[] sample), add(number[] of all vectors)',
      single: 'search(number[] of one query, k) per query: exhaustive scan of the codes',
      batch: 'search(number[] of all queries, k): OpenMP threads over queries',
      other: 'no rescoring (flat code scan)',
    },
    setup: undefined,
    rescoreSetting: 'none',
    batchThreads: undefined,
    sweepValues: () => [0],
    async init() {
      const loaded = await loadFaiss(log)
      if (!loaded.module) return loaded.error
      if (typeof loaded.module.Index?.fromFactory !== 'function') return `faiss-node ${packageVersion('faiss-node')} has no Index.fromFactory: it cannot build SQ/PQ indexes`
      faiss = loaded.module
      this.version = packageVersion('faiss-node')
      return true
    },
    async train(dataset, params) {
      dim = dataset.dim
      cosine = dataset.metric === 'cosine'
      factory = token === 'sq8' ? 'SQ8' : `PQ${Math.max(1, Math.floor(dim / 4))}x8`
      this.setup = `index_factory '${factory}'`
      const metric = dataset.metric === 'l2sq' ? faiss.MetricType.METRIC_L2 : faiss.MetricType.METRIC_INNER_PRODUCT
      index = faiss.Index.fromFactory(dim, factory, metric)
      index.train(Array.from(cosine ? normalisedRows(params.sample, dim) : params.sample))
      return { needed: true, sampleRows: params.sample.length / dim }
    },
    async build(dataset) {
      index.add(Array.from(cosine ? normalisedRows(dataset.base, dim) : dataset.base))
      this.batchThreads = ompThreads()
      return { threads: ompThreads(), threadsNote: `OpenMP (OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? 'unset'})` }
    },
    async memory() {
      return undefined
    },
    compression() {
      return { codeBytes: token === 'sq8' ? dim : Math.max(1, Math.floor(dim / 4)), rescoreBytes: 0, searchDimensions: dim, source: `index_factory '${factory}'` }
    },
    setEf() {},
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
