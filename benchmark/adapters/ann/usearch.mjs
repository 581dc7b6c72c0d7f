// USearch Index (HNSW, f32): parallel add and batch search take a thread count per call (the
// binding starts that many std::threads per call; with 1 the work runs inline on the JS thread).
// Its JS binding fixes expansion_search at construction (no change_expansion_search), so the
// built index is saved once to a temp file and loaded, in RAM, into a new Index per efSearch.
//
// Cosine data is indexed as metric 'ip' over unit-length vectors, as vecdex and hnswlib store
// it: usearch's 'cos' recomputes both norms in every distance. In a probe on glove-100k (ef 128,
// 1 thread, same build parameters, 4 alternating rounds) 'ip' gave the same recall (0.949) at
// 1.06–1.63× the QPS of 'cos', so this is the faster of usearch's two equivalent set-ups.
// Normalising the base vectors is inside the build time, each query inside the search time.

import fs from 'node:fs'
import path from 'node:path'
import { loadPeer, makeTempDir, normaliseInto, normalisedRows, removeTempDir, rowKeys, rowViews } from '../common.mjs'

/** usearch metric per dataset metric for f32 vectors (cosine: 'ip' on unit-length vectors). */
const F32_METRICS = { cosine: 'ip', l2sq: 'l2sq', dot: 'ip' }

/**
 * Also drives usearch's compressed storage for the quant suite (adapters/quant/usearch.mjs):
 * `quantization` ('f32' | 'i8' | 'b1' | …), `metrics` (usearch metric per dataset metric) and
 * `centre` (subtract the mean of the first `params.sampleRows` base rows, after normalising,
 * from every vector and query: usearch's b1 cast keeps the sign bit and its i8 cast scales each
 * vector to unit length, so both work on centred data; l2 distances are unchanged by it).
 * @param {{ quantization?: string, metrics?: Record<string, string>, centre?: boolean, name?: string }} [options]
 * @returns {import('./index.mjs').AnnAdapter}
 */
export function createUsearchAnnAdapter({ quantization = 'f32', metrics = F32_METRICS, centre = false, name = 'usearch' } = {}) {
  /** @type {any} */
  let usearch = null
  /** @type {any} */
  let index = null
  /** @type {any} */
  let config = null
  let threads = 1
  let dir = null
  let file = null
  let ef = null
  let cosine = false
  /** Scratch row for normalising one query (the binding copies nothing it keeps). */
  let unit = null
  /** With `centre`: the mean subtracted from every (normalised) vector and query. */
  let mean = null
  /** Vectors or queries in the index's form: unit length for cosine, then centred if asked. */
  const indexForm = (matrix, dim) => {
    if (!cosine && !mean) return matrix
    const out = cosine ? normalisedRows(matrix, dim) : matrix.slice()
    if (mean) for (let i = 0; i < out.length; i += dim) for (let j = 0; j < dim; j++) out[i + j] -= mean[j]
    return out
  }
  return {
    name,
    version: null,
    notes: {
      build: 'Index.add(keys, vectors, threads): parallel insert',
      single: 'Index.search(query, k, 1) per query (threads = 1: runs inline, blocking on the JS thread)',
      batch: 'Index.search(all queries, k, threads): blocking call, parallel over queries',
      other: "expansion_search is fixed at construction in the JS binding: the built index is saved once and loaded (Index.load, in RAM) into a new Index({ …, expansion_search: ef }) for each sweep point. Cosine data: metric 'ip' on unit-length vectors (faster than its 'cos', same results; vectors and queries normalised inside the timings)",
    },
    batchThreads: undefined,
    async init() {
      const loaded = loadPeer('usearch')
      if (loaded.error) return loaded.error
      usearch = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, params) {
      cosine = dataset.metric === 'cosine'
      unit = new Float32Array(dataset.dim)
      threads = params.threads
      if (centre) {
        const rows = Math.min(dataset.n, params.sampleRows ?? dataset.n)
        const sample = indexForm(dataset.base.subarray(0, rows * dataset.dim), dataset.dim)
        mean = new Float32Array(dataset.dim)
        for (let i = 0; i < sample.length; i += dataset.dim) for (let j = 0; j < dataset.dim; j++) mean[j] += sample[i + j]
        for (let j = 0; j < dataset.dim; j++) mean[j] /= rows
      }
      config = {
        dimensions: dataset.dim,
        metric: metrics[dataset.metric],
        quantization,
        connectivity: params.m,
        expansion_add: params.efConstruction,
        expansion_search: 64,
        multi: false,
      }
      index = new usearch.Index(config)
      index.add(rowKeys(dataset.n), indexForm(dataset.base, dataset.dim), threads)
      this.batchThreads = threads
      return { threads, threadsNote: 'threads argument of Index.add', details: { config } }
    },
    async memory() {
      // The JS binding has no memory_usage(): the serialised size is the closest figure it gives.
      saveOnce()
      return { bytes: fs.statSync(file).size, source: 'serialised size (Index.save); the JS binding exposes no memory_usage()' }
    },
    stats() {
      return { size: index?.size(), connectivity: index?.connectivity(), capacity: index?.capacity() }
    },
    setEf(value) {
      if (value === ef) return
      saveOnce()
      const next = new usearch.Index({ ...config, expansion_search: value })
      next.load(file)
      index = next
      ef = value
    },
    prepare(queries, q) {
      const all = queries.subarray(0, q * config.dimensions)
      return { all, rows: rowViews(all, config.dimensions), q }
    },
    async searchSequential(prepared, k, from, to) {
      const { rows } = prepared
      const out = new Array(to - from)
      if (mean) {
        for (let i = from; i < to; i++) {
          if (cosine) normaliseInto(rows[i], unit)
          else unit.set(rows[i])
          for (let j = 0; j < unit.length; j++) unit[j] -= mean[j]
          out[i - from] = index.search(unit, k, 1).keys
        }
      } else if (cosine) for (let i = from; i < to; i++) out[i - from] = index.search(normaliseInto(rows[i], unit), k, 1).keys
      else for (let i = from; i < to; i++) out[i - from] = index.search(rows[i], k, 1).keys
      return out
    },
    async searchBatch(prepared, k) {
      const r = index.search(indexForm(prepared.all, config.dimensions), k, threads)
      if (prepared.q === 1) return [r.keys]
      return { keys: r.keys, k: r.k, counts: r.counts }
    },
    close() {
      index = null
      removeTempDir(dir)
      dir = null
      file = null
    },
  }

  function saveOnce() {
    if (file) return
    dir = makeTempDir('usearch')
    file = path.join(dir, 'index.usearch')
    index.save(file)
  }
}
