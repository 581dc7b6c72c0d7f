// vecdex Collection: ids, vectors and metadata in one object; the suite's label columns are
// declared fields (stored column-wise with a bitmap per value, sorted values for ranges), and a
// filter is the Collection's own filter object, passed on every call (this adapter caches
// nothing; the Collection keeps its last compiled filters by their JSON text). `hnsw` sweeps efSearch; `flat` is the exact
// reference line (a scan of the admitted rows).

import { loadVecdex } from '../common.mjs'

/** Items per upsert call while building. */
const UPSERT_BATCH = 4096

/**
 * The items of `dataset` with `labels` as metadata, in upsert batches.
 * @param {import('../../datasets.mjs').Dataset} dataset
 * @param {import('./index.mjs').Labels} labels
 * @param {{ ids?: (row: number) => string | number, metadata?: boolean }} [shape] ids (default the
 *   row number) and whether to store the labels (default yes): the memory probe varies both
 */
export function collectionItems(dataset, labels, shape = {}) {
  const { dim, n } = dataset
  const idOf = shape.ids ?? ((row) => row)
  const withMetadata = shape.metadata ?? true
  const columns = Object.entries(labels.columns)
  const batches = []
  for (let from = 0; from < n; from += UPSERT_BATCH) {
    const items = []
    for (let row = from; row < Math.min(n, from + UPSERT_BATCH); row++) {
      // Without labels the item still gets an empty metadata object: this build of the Collection
      // drops items upserted with no metadata at all (size 0, then ERR_INTERNAL from search).
      const metadata = withMetadata ? Object.fromEntries(columns.map(([name, column]) => [name, column.values[row]])) : {}
      items.push({ id: idOf(row), vector: dataset.base.subarray(row * dim, (row + 1) * dim), metadata })
    }
    batches.push(items)
  }
  return batches
}

/** A Collection of the dataset's vectors, the labels' columns declared as fields (unless there is no metadata). */
export function newCollection(vecdex, dataset, labels, options, shape = {}) {
  const fields = Object.fromEntries(Object.entries(labels.columns).map(([name, column]) => [name, column.type]))
  return new vecdex.Collection({ dimensions: dataset.dim, metric: dataset.metric, ...((shape.metadata ?? true) ? { fields } : {}), ...options })
}

/**
 * Builds a Collection of `dataset` with `labels` as metadata, ids the row numbers.
 * @param {any} vecdex  the loaded module
 * @param {object} options  CollectionOptions beyond dimensions, metric and fields
 */
export async function buildCollection(vecdex, dataset, labels, options, shape = {}) {
  const collection = newCollection(vecdex, dataset, labels, options, shape)
  for (const items of collectionItems(dataset, labels, shape)) await collection.upsert(items)
  return collection
}

/**
 * @param {{ index: 'hnsw' | 'flat' }} options
 * @returns {import('./index.mjs').FilterEngine}
 */
export function createVecdexFilterEngine({ index }) {
  /** @type {any} */
  let vecdex = null
  /** @type {any} */
  let collection = null
  let efSearch = 0
  return {
    name: index === 'hnsw' ? 'vecdex' : 'vecdex flat',
    family: 'vecdex',
    version: null,
    sweepName: index === 'hnsw' ? 'efSearch' : '–',
    setup: '',
    notes: '',
    async init() {
      const loaded = await loadVecdex()
      if (loaded.error) return loaded.error
      if (typeof loaded.module.Collection !== 'function') return 'this build of vecdex has no Collection (npm run build after merging it)'
      vecdex = loaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, labels, { m, efConstruction, threads }) {
      const started = performance.now()
      collection = await buildCollection(vecdex, dataset, labels, index === 'hnsw' ? { index, m, efConstruction } : { index })
      const seconds = (performance.now() - started) / 1e3
      const fields = Object.entries(collection.fields ?? {}).map(([name, type]) => `${name}: ${type}`).join(', ')
      this.setup = index === 'hnsw' ? `Collection, index hnsw (m ${m}, efConstruction ${efConstruction}), declared fields { ${fields} }` : `Collection, index flat, declared fields { ${fields} }`
      this.notes = `${this.setup}; ids: row numbers; upsert in batches of ${UPSERT_BATCH} on its pool (${threads} threads); each query: searchSync(vector, { k, filter${index === 'hnsw' ? ', efSearch' : ''}, includeMetadata: false }) with the filter object (serialised per call; the Collection compiles a filter on first use and keeps its last compiled filters by JSON text, so the timed loops measure a cached filter: see the cost of a compile)`
      return { threads, seconds }
    },
    /** The Collection itself, for the suite's own vecdex-only measurements. */
    get collection() {
      return collection
    },
    sweep(efs) {
      return index === 'hnsw' ? efs : [0]
    },
    prepareQueries(queries, q) {
      const dim = collection.dimensions
      return Array.from({ length: q }, (_, i) => queries.subarray(i * dim, (i + 1) * dim))
    },
    compileFilter(spec) {
      return spec?.filter ?? null
    },
    count(filter) {
      return collection.countSync(filter ? { filter } : undefined)
    },
    setSweep(value) {
      efSearch = value
    },
    search(query, k, filter) {
      const options = { k, includeMetadata: false }
      if (filter) options.filter = filter
      if (index === 'hnsw') options.efSearch = efSearch
      return collection.searchSync(query, options).map((hit) => hit.id)
    },
    /** Every query in one async call (its pool), for the batch column. */
    async searchBatch(queries, k, filter) {
      const options = { k, includeMetadata: false }
      if (filter) options.filter = filter
      if (index === 'hnsw') options.efSearch = efSearch
      const hits = await collection.search(queries, options)
      return hits.map((row) => row.map((hit) => hit.id))
    },
    close() {
      collection?.close()
      collection = null
    },
  }
}
