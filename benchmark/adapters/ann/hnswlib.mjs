// hnswlib-node HierarchicalNSW: addPoint and searchKnn take number[] and run on the JS thread,
// one point or query per call; the binding has no parallel build and no batch search.

import fs from 'node:fs'
import path from 'node:path'
import { loadPeer, makeTempDir, removeTempDir } from '../common.mjs'

const SEED = 100

/** @returns {import('./index.mjs').AnnAdapter} */
export function createHnswlibAnnAdapter() {
  /** @type {any} */
  let hnswlib = null
  /** @type {any} */
  let index = null
  let dim = 0
  return {
    name: 'hnswlib',
    version: null,
    notes: {
      build: `HierarchicalNSW.initIndex(n, m, efConstruction, seed ${SEED}) then addPoint(number[], row) per vector: single-threaded (no parallel build in hnswlib-node); the number[] copy of each vector is inside the timing`,
      single: 'setEf(ef) then searchKnn(number[], k) per query (queries converted to number[] once, outside the timing)',
      batch: 'none: hnswlib-node has no multi-threaded or batch search, so it has no batch column',
    },
    batchThreads: undefined,
    searchBatch: undefined,
    async init() {
      const loaded = loadPeer('hnswlib-node')
      if (loaded.error) return loaded.error
      hnswlib = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, { m, efConstruction }) {
      const spaces = { cosine: 'cosine', l2sq: 'l2', dot: 'ip' }
      dim = dataset.dim
      index = new hnswlib.HierarchicalNSW(spaces[dataset.metric], dim)
      index.initIndex(dataset.n, m, efConstruction, SEED)
      for (let i = 0; i < dataset.n; i++) index.addPoint(Array.from(dataset.base.subarray(i * dim, (i + 1) * dim)), i)
      return { threads: 1, threadsNote: 'hnswlib-node builds single-threaded (addPoint on the JS thread)' }
    },
    async memory() {
      // No memory API in hnswlib-node: the saved index (vectors + links + labels) is the closest figure.
      const dir = makeTempDir('hnswlib')
      try {
        const file = path.join(dir, 'index.hnsw')
        index.writeIndexSync(file)
        return { bytes: fs.statSync(file).size, source: 'serialised size (writeIndexSync); hnswlib-node exposes no memory figure' }
      } finally {
        removeTempDir(dir)
      }
    },
    stats() {
      return { size: index?.getCurrentCount(), maxElements: index?.getMaxElements() }
    },
    setEf(ef) {
      index.setEf(ef)
    },
    prepare(queries, q) {
      const rows = new Array(q)
      for (let i = 0; i < q; i++) rows[i] = Array.from(queries.subarray(i * dim, (i + 1) * dim))
      return rows
    },
    async searchSequential(rows, k, from, to) {
      const out = new Array(to - from)
      for (let i = from; i < to; i++) out[i - from] = index.searchKnn(rows[i], k).neighbors
      return out
    },
    close() {
      index = null
    },
  }
}
