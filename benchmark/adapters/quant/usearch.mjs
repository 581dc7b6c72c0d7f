// USearch with compressed storage: 'i8' (1 byte per dimension) and 'b1' (1 bit per dimension,
// Hamming), driven by the ann suite's usearch adapter (same build, same save/load per efSearch).
// usearch searches and ranks on the codes only: it keeps no f32 vectors and has no rescoring
// step. The `+rescore` variants add one here, in JS: usearch returns k × oversample candidates
// and they are re-ranked by their exact distance on f32 rows kept by the adapter (the re-ranking
// is inside the timings, on the JS thread, also in the batch mode).
//
// What works in usearch 2.25.3 (index_plugins.hpp): its f32 → i8 cast scales every vector to
// unit length first (cast_to_i8_gt, also for Int8Array input), so an i8 index ranks by angle
// whatever the metric; its f32 → b1 cast keeps `x > 0`, and b1 takes only the binary metrics
// (hamming, jaccard, tanimoto, …). So: i8 uses metric 'cos'; b1 uses 'hamming'; and the vectors
// are centred on the mean of the training sample first (for b1 always, as vecdex's binary codec
// does; for i8 on l2sq data, where it lifted recall from 0.47 to 0.76 on Fashion-MNIST in a probe).

import { createUsearchAnnAdapter } from '../ann/usearch.mjs'
import { rescoringSweep } from './sweep-values.mjs'

const VARIANTS = {
  i8: { quantization: 'i8', metric: 'cos', rescore: 0 },
  'i8+rescore': { quantization: 'i8', metric: 'cos', rescore: 4 },
  b1: { quantization: 'b1', metric: 'hamming', rescore: 0 },
  'b1+rescore': { quantization: 'b1', metric: 'hamming', rescore: 10 },
}
export const USEARCH_CODECS = Object.keys(VARIANTS)

/** Exact distances of candidate rows to one query; keeps the k best, best first. */
function reranker(dataset) {
  const { dim, metric } = dataset
  // Cosine: unit-length rows, ranked by −dot (the query's norm does not change the order).
  let rows = dataset.base
  if (metric === 'cosine') {
    rows = new Float32Array(dataset.base.length)
    for (let i = 0; i < rows.length; i += dim) {
      let s = 0
      for (let j = i; j < i + dim; j++) s += dataset.base[j] * dataset.base[j]
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0
      for (let j = i; j < i + dim; j++) rows[j] = dataset.base[j] * inv
    }
  }
  const l2 = metric === 'l2sq'
  return {
    bytes: rows.byteLength,
    /**
     * @param {Float32Array} query
     * @param {ArrayLike<bigint | number>} keys  candidates (the first `count`)
     */
    rerank(query, keys, count, k) {
      const ids = new Array(count)
      const dist = new Float64Array(count)
      for (let c = 0; c < count; c++) {
        const row = Number(keys[c])
        const at = row * dim
        let s = 0
        if (l2) {
          for (let j = 0; j < dim; j++) {
            const d = query[j] - rows[at + j]
            s += d * d
          }
        } else {
          for (let j = 0; j < dim; j++) s -= query[j] * rows[at + j]
        }
        ids[c] = row
        dist[c] = s
      }
      const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => dist[a] - dist[b])
      return order.slice(0, k).map((i) => ids[i])
    },
  }
}

/** @returns {import('./index.mjs').QuantAdapter} */
export function createUsearchQuantAdapter({ token }) {
  const v = VARIANTS[token]
  if (!v) throw new Error(`unknown usearch codec "${token}"`)
  const name = `usearch ${token}`
  const centreFor = (metric) => v.quantization === 'b1' || metric !== 'cosine'
  const makeInner = (centre) => createUsearchAnnAdapter({ quantization: v.quantization, metrics: { cosine: v.metric, l2sq: v.metric, dot: v.metric }, centre, name })
  let inner = makeInner(false)
  let dim = 0
  let re = null
  /** Candidates re-ranked per result at the current sweep point. */
  let oversample = v.rescore
  return {
    name,
    version: null,
    batchThreads: undefined,
    family: 'usearch',
    codec: token,
    sweepParam: v.rescore ? 'efSearch ×oversample' : 'efSearch',
    /** usearch walks its graph with max(expansion_search, wanted results) candidates. */
    sweepValues(efs, _explicit, k) {
      return v.rescore ? rescoringSweep(efs, k, v.rescore) : efs
    },
    notes: {
      build: 'new Index({ metric, quantization, connectivity: m, expansion_add: efConstruction }), add(keys, f32 vectors, threads): usearch casts them to its codes; normalising / centring inside the build time',
      single: 'Index.search(query, k — or k × oversample in the +rescore variants, then re-ranked in JS — 1) per query, blocking on the JS thread',
      batch: 'Index.search(all queries, k or k × oversample, threads), parallel over queries (+rescore: then every query re-ranked in JS, on one thread)',
      other: `${v.quantization === 'i8' ? "usearch's i8 cast scales each vector to unit length, so an i8 index ranks by angle (metric 'cos')" : "b1 keeps the sign bit of each dimension (metric 'hamming')"}; vectors and queries are ${v.quantization === 'b1' ? 'centred on the training sample mean (after normalising for cosine)' : 'normalised for cosine data, and centred on the training sample mean for l2sq data'}${v.rescore ? `; usearch does no rescoring: the re-ranking of k × ${v.rescore} candidates on f32 rows is the adapter's, in JS` : '; no rescoring'}`,
    },
    setup: `quantization '${v.quantization}', metric '${v.metric}'${v.rescore ? `, JS re-ranking of k × ${v.rescore}` : ', no rescoring'}`,
    rescoreSetting: v.rescore ? `k × ${v.rescore} re-ranked in JS, ⌊ef/k⌋ below ef = k × ${v.rescore}` : 'none (usearch has no rescoring)',
    async init() {
      const status = await inner.init()
      this.version = inner.version
      return status
    },
    async build(dataset, params) {
      dim = dataset.dim
      inner = makeInner(centreFor(dataset.metric))
      await inner.init()
      const info = await inner.build(dataset, { ...params, sampleRows: params.sample.length / dataset.dim })
      if (v.rescore) re = reranker(dataset)
      this.batchThreads = inner.batchThreads
      return info
    },
    memory: () => inner.memory(),
    compression() {
      const codeBytes = v.quantization === 'i8' ? dim : Math.ceil(dim / 8)
      return { codeBytes, rescoreBytes: v.rescore ? 4 * dim : 0, searchDimensions: dim, source: `${v.quantization}: ${v.quantization === 'i8' ? '1 byte' : '1 bit'} per dimension${v.rescore ? '; f32 rows held by the adapter for re-ranking' : ''}` }
    },
    stats: () => inner.stats(),
    /** value: efSearch, or { efSearch, oversample } from the rescoring sweep. */
    setEf(value) {
      if (typeof value === 'object') oversample = value.oversample
      return inner.setEf(typeof value === 'object' ? value.efSearch : value)
    },
    prepare: (queries, q) => inner.prepare(queries, q),
    async searchSequential(prepared, k, from, to) {
      if (!v.rescore) return inner.searchSequential(prepared, k, from, to)
      const found = await inner.searchSequential(prepared, k * oversample, from, to)
      return found.map((keys, i) => re.rerank(prepared.rows[from + i], keys, keys.length, k))
    },
    async searchBatch(prepared, k) {
      if (!v.rescore) return inner.searchBatch(prepared, k)
      const r = await inner.searchBatch(prepared, k * oversample)
      const out = new Array(prepared.q)
      if (Array.isArray(r)) return r.map((keys, i) => re.rerank(prepared.rows[i], keys, keys.length, k))
      for (let i = 0; i < prepared.q; i++) {
        const count = r.counts ? Number(r.counts[i]) : r.k
        out[i] = re.rerank(prepared.rows[i], r.keys.subarray(i * r.k, i * r.k + count), count, k)
      }
      return out
    },
    close() {
      re = null
      return inner.close()
    },
  }
}
