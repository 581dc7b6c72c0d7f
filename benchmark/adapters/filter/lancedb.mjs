// LanceDB (@lancedb/lancedb) with the filter as an SQL `where`, in the configurations its
// documentation recommends for filtered vector search:
//   - scalar indexes on every filter column (BITMAP on string columns and on numeric columns of
//     at most BITMAP_MAX_DISTINCT values, BTREE on other numeric ones: LanceDB's guide,
//     "Building a Scalar Index", says BITMAP for low-cardinality columns and BTREE for numbers
//     with many values), so the filter is answered from indexes, not by scanning the columns;
//   - prefiltering (LanceDB's default for vectorSearch().where(): the filter is applied first and
//     the vector search only sees admitted rows, so it returns k rows however narrow the filter);
//   - one of three vector set-ups, each its own engine and table:
//       flat     no vector index: an exact scan of the admitted rows (bypassVectorIndex()),
//                LanceDB's own advice for narrow filters;
//       hnsw-sq  IVF_HNSW_SQ in one partition (m and efConstruction as the other engines), the
//                graph searched on 8-bit codes, limit × REFINE_SQ candidates re-ranked with the
//                f32 vectors; the sweep sets ef;
//       ivf-pq   IVF_PQ, √n partitions (LanceDB's default), d/2 sub-vectors of 4 bits (the quant
//                suite's fast-to-train layout: LanceDB's default d/16 × 8 bits took 91 s to train
//                on 20,000 rows here), limit × REFINE_PQ candidates re-ranked with the f32
//                vectors; the sweep sets nprobes. (minimumNprobes(p) with maximumNprobes(all),
//                the documented remedy for narrow filters, ran at the cost of every partition
//                whatever p in a probe, so the plain nprobes(p) of the other suites is used.)
// Async only: each query is awaited (one at a time, as the other engines); queries run on
// LanceDB's compute pool (LANCE_CPU_THREADS, set to --threads unless already set).

import { diskBytes, loadPeer, makeTempDir, removeTempDir, rowViews } from '../common.mjs'

/** Re-ranked candidates per result for HNSW-SQ (as the quant suite: vecdex's default oversample). */
const REFINE_SQ = 4
/** Re-ranked candidates per result for IVF_PQ (d/16-byte codes are coarse). */
const REFINE_PQ = 10
/** Numeric columns with at most this many distinct values get a BITMAP index (e.g. a class), others a BTREE (ranges). */
const BITMAP_MAX_DISTINCT = 32
/** Default sweeps: LanceDB queries take milliseconds, so a coarse list. */
const SQ_EF = [40, 80, 160, 320, 640]
const PQ_NPROBES = [5, 10, 20, 40, 80, 160, 320]

export const LANCEDB_VARIANTS = ['flat', 'hnsw-sq', 'ivf-pq']

/**
 * @param {{ threads: number, variant: 'flat' | 'hnsw-sq' | 'ivf-pq' }} options
 * @returns {import('./index.mjs').FilterEngine}
 */
export function createLancedbFilterEngine({ threads, variant }) {
  if (!LANCEDB_VARIANTS.includes(variant)) throw new Error(`unknown lancedb variant "${variant}"`)
  /** @type {any} */
  let lancedb = null
  /** @type {any} */
  let arrow = null
  let db = null
  let table = null
  let dir = null
  let dim = 0
  let distanceType = 'l2'
  let numPartitions = 1
  let pqLayout = ''
  let sweepValue = 0
  const details = {}
  return {
    name: `lancedb ${variant}`,
    family: 'lancedb',
    async: true,
    version: null,
    sweepName: { flat: '–', 'hnsw-sq': 'ef', 'ivf-pq': 'nprobes' }[variant],
    setup: '',
    notes: '',
    async init() {
      process.env.LANCE_CPU_THREADS ??= String(threads)
      const loaded = loadPeer('@lancedb/lancedb')
      if (loaded.error) return loaded.error
      const arrowLoaded = loadPeer('apache-arrow')
      if (arrowLoaded.error) return `${arrowLoaded.error} (peer dependency of @lancedb/lancedb)`
      lancedb = loaded.module
      arrow = arrowLoaded.module
      this.version = loaded.version
      return true
    },
    /**
     * @param {import('../../datasets.mjs').Dataset} dataset
     * @param {import('./index.mjs').Labels} labels
     */
    async build(dataset, labels, { m, efConstruction }) {
      dim = dataset.dim
      distanceType = { cosine: 'cosine', l2sq: 'l2', dot: 'dot' }[dataset.metric]
      const n = dataset.n
      const child = arrow.makeData({ type: new arrow.Float32(), length: n * dim, data: dataset.base })
      const listType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true))
      const columns = {
        id: arrow.makeVector(Int32Array.from({ length: n }, (_, i) => i)),
        vector: arrow.makeVector(arrow.makeData({ type: listType, length: n, nullCount: 0, child })),
      }
      for (const [field, column] of Object.entries(labels.columns)) {
        columns[field] = column.type === 'string' ? arrow.vectorFromArray(column.values, new arrow.Utf8()) : arrow.makeVector(Int32Array.from(column.values))
      }
      dir = makeTempDir('lancedb-filter')
      db = await lancedb.connect(dir)
      const started = performance.now()
      table = await db.createTable('items', new arrow.Table(columns))
      const ingested = performance.now()
      const scalar = []
      for (const [field, column] of Object.entries(labels.columns)) {
        const kind = column.type === 'string' || new Set(column.values).size <= BITMAP_MAX_DISTINCT ? 'bitmap' : 'btree'
        await table.createIndex(field, { config: kind === 'bitmap' ? lancedb.Index.bitmap() : lancedb.Index.btree() })
        scalar.push(`${kind.toUpperCase()} on ${field}`)
      }
      const scalarDone = performance.now()
      numPartitions = Math.max(1, Math.round(Math.sqrt(n)))
      if (variant === 'hnsw-sq') {
        await table.createIndex('vector', { config: lancedb.Index.hnswSq({ distanceType, m, efConstruction, numPartitions: 1 }) })
      } else if (variant === 'ivf-pq') {
        let numSubVectors = Math.max(1, Math.round(dim / 2))
        while (dim % numSubVectors !== 0) numSubVectors--
        pqLayout = `${numSubVectors} sub-vectors × 4 bits`
        await table.createIndex('vector', { config: lancedb.Index.ivfPq({ distanceType, numPartitions, numSubVectors, numBits: 4 }) })
      }
      const indexed = performance.now()
      const indices = await table.listIndices()
      for (const index of indices) await table.prewarmIndex(index.name)
      details.indices = indices.map((i) => ({ name: i.name, indexType: i.indexType, columns: i.columns }))
      details.dirBytes = diskBytes(dir)
      details.phases = { createTable: (ingested - started) / 1e3, scalarIndexes: (scalarDone - ingested) / 1e3, vectorIndex: (indexed - scalarDone) / 1e3 }
      const vectorSetup = {
        flat: 'no vector index: exact scan of the admitted rows (vectorSearch(q).bypassVectorIndex())',
        'hnsw-sq': `IVF_HNSW_SQ (1 partition, m ${m}, efConstruction ${efConstruction}), 8-bit codes, refineFactor ${REFINE_SQ}; sweep: ef (at least k × ${REFINE_SQ})`,
        'ivf-pq': `IVF_PQ, ${numPartitions} partitions (√n), ${pqLayout}, refineFactor ${REFINE_PQ}; sweep: nprobes`,
      }[variant]
      this.setup = `${vectorSetup}; ${scalar.join(', ')}; prefilter (default)`
      this.notes = `table in a temp dir (id, vector, ${Object.keys(labels.columns).join(', ')}); ${this.setup}; each query awaited: vectorSearch(q).distanceType('${distanceType}').where(sql)….limit(k).select(['id', '_distance']).toArrow(); LANCE_CPU_THREADS=${process.env.LANCE_CPU_THREADS}. Build: createTable ${details.phases.createTable.toFixed(1)} s, scalar indexes ${details.phases.scalarIndexes.toFixed(1)} s, vector index ${details.phases.vectorIndex.toFixed(1)} s`
      return { threads: Number(process.env.LANCE_CPU_THREADS), seconds: (indexed - started) / 1e3, details: { ...details } }
    },
    sweep() {
      return { flat: [0], 'hnsw-sq': SQ_EF, 'ivf-pq': PQ_NPROBES.filter((p) => p <= numPartitions) }[variant]
    },
    prepareQueries(queries, q) {
      return rowViews(queries.subarray(0, q * dim), dim)
    },
    /** The SQL `where` (null: no filter). */
    compileFilter(spec) {
      return spec?.where ?? null
    },
    /** Rows LanceDB itself counts for a filter (a cross-check of the SQL against the labels). */
    async count(where) {
      return table.countRows(where ?? undefined)
    },
    setSweep(value) {
      sweepValue = value
    },
    async search(query, k, where) {
      let q = table.vectorSearch(query).column('vector').distanceType(distanceType)
      if (where) q = q.where(where)
      if (variant === 'flat') q = q.bypassVectorIndex()
      else if (variant === 'hnsw-sq') q = q.nprobes(1).ef(Math.max(sweepValue, k * REFINE_SQ)).refineFactor(REFINE_SQ)
      else q = q.nprobes(sweepValue).refineFactor(REFINE_PQ)
      const result = await q.limit(k).select(['id', '_distance']).toArrow()
      // An empty answer comes back without columns.
      return result.numRows === 0 ? [] : result.getChild('id').toArray()
    },
    async close() {
      try {
        table?.close()
        db?.close()
      } finally {
        table = null
        db = null
        removeTempDir(dir)
        dir = null
      }
    },
  }
}
