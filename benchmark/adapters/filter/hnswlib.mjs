// hnswlib-node HierarchicalNSW with a filter callback: hnswlib's own filtered search, which asks
// the callback about each candidate label during the walk and keeps searching until ef admitted
// candidates are found. The callback tests a Uint8Array of admitted rows, computed once per
// filter from the labels by the suite (hnswlib-node has no metadata: the application keeps the
// labels and turns each filter into such a test itself). Build and search run on the JS thread.

import { loadPeer } from '../common.mjs'

const SEED = 100

/** @returns {import('./index.mjs').FilterEngine} */
export function createHnswlibFilterEngine() {
  /** @type {any} */
  let hnswlib = null
  /** @type {any} */
  let index = null
  let dim = 0
  return {
    name: 'hnswlib',
    family: 'hnswlib',
    version: null,
    sweepName: 'ef',
    setup: '',
    notes: 'HierarchicalNSW.searchKnn(number[], k, (label) => admitted[label] === 1) per query (setEf(ef) once per sweep point); the filter is a JS callback on a Uint8Array of admitted rows the application computes from its own copy of the labels (the time to compute it is not counted)',
    async init() {
      const loaded = loadPeer('hnswlib-node')
      if (loaded.error) return loaded.error
      hnswlib = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, _labels, { m, efConstruction }) {
      dim = dataset.dim
      const spaces = { cosine: 'cosine', l2sq: 'l2', dot: 'ip' }
      index = new hnswlib.HierarchicalNSW(spaces[dataset.metric], dim)
      index.initIndex(dataset.n, m, efConstruction, SEED)
      for (let i = 0; i < dataset.n; i++) index.addPoint(Array.from(dataset.base.subarray(i * dim, (i + 1) * dim)), i)
      this.setup = `HierarchicalNSW, M ${m}, efConstruction ${efConstruction}, built single-threaded (addPoint per row)`
      return { threads: 1 }
    },
    sweep(efs) {
      return efs
    },
    prepareQueries(queries, q) {
      return Array.from({ length: q }, (_, i) => Array.from(queries.subarray(i * dim, (i + 1) * dim)))
    },
    compileFilter(spec) {
      if (!spec) return null
      const admitted = spec.admitted
      return (label) => admitted[label] === 1
    },
    setSweep(ef) {
      index.setEf(ef)
    },
    search(query, k, compiled) {
      return index.searchKnn(query, k, compiled ?? undefined).neighbors
    },
    close() {
      index = null
    },
  }
}
