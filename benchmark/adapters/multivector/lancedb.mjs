// LanceDB (@lancedb/lancedb) late-interaction search: one row per document, its tokens in a
// multivector column (List<FixedSizeList<Float32>[dim]>), searched with MaxSim, in a table in a
// temp directory (removed on close). Rows carry an `id` column = document number (0 … n − 1).
//
// What LanceDB 0.31.0 (lance 8) does with such a column, as probed on this machine:
// - Query: `table.vectorSearch([v1, v2, …])` (an array of per-token vectors) on a List column is
//   ONE MaxSim query (on a FixedSizeList column the same call is a batch of queries).
// - Distance: only `cosine` is accepted by createIndex on a multivector column, and it must be set
//   on the query too: without `.distanceType(…)` the flat search silently uses l2.
//   With cosine, `_distance` = 1 − Σ_q max_d cos(q, d) = 1 − Chamfer (unit vectors), so it can be
//   negative; `dot` gives the same on unit vectors. (With l2 it is 1 − Σ_q (1 − min_d ‖q − d‖²)
//   = 1 + |Q| − 2·Chamfer: the same order.)
// - index 'none': a flat scan, exact MaxSim over every row. Flat scans (also `exact: true` on an
//   indexed table) use `dot` by default: on unit vectors it is the same MaxSim, and LanceDB's flat
//   cosine took 7–9× as long here (1.4–1.8 s against 0.17–0.20 s a query on 20k glosses, 2
//   threads; dot on all 115,730 glosses: 2.5 s a query).
//   params.distanceType: 'cosine' gives LanceDB's documented setting.
// - An index (IVF_FLAT, IVF_PQ, IVF_HNSW_SQ, IVF_HNSW_PQ; IVF_RQ needs dim % 8 = 0) is built over
//   all token vectors. A search is then XTR-style: each query token is searched on its own in the
//   index for k × LANCE_XTR_OVERFETCH (default 10) token hits, and rows are scored from the hits
//   alone (a query token whose best match in a row was not retrieved gets an imputed value), so
//   ranks and `_distance` are approximate even with every partition probed. refineFactor r
//   re-ranks the best k × r of those rows by exact MaxSim on the table's vectors.
//   LANCE_XTR_OVERFETCH is read once per process (set it before the first search). It matters:
//   on 5,000 glosses with IVF_FLAT (64 lists, all probed), recall@10 was 0.38 without refine and
//   0.875 with refineFactor 10 at the default 10; 0.63 and 0.995 at 100.
// - Index builds are slow on token sets: on 20,000 glosses (213k tokens, 2 threads) IVF_FLAT took
//   12 s, IVF_PQ (462 lists, 25 × 8-bit) 140 s, IVF_HNSW_SQ (1 list) 128 s. Glosses share words
//   (48k distinct vectors among 1.24M tokens), so k-means warns of empty clusters.
// Queries run on LanceDB's threads: its compute pool has LANCE_CPU_THREADS threads, which this
// adapter sets to `threads` unless already set (LanceDB sizes the pool once per process).

import os from 'node:os'
import { diskBytes, loadPeer, makeTempDir, removeTempDir } from '../common.mjs'
import { mapLimited } from '../ann/lancedb.mjs'

/** Index kinds accepted by build(): 'none' is the flat (exact) scan. */
export const LANCEDB_MULTIVECTOR_INDEXES = ['none', 'ivf_flat', 'ivf_pq', 'ivf_hnsw_sq', 'ivf_hnsw_pq']
/** Documents per Arrow batch written to the table (createTable, then add). */
const BATCH_DOCS = 32_768
/** Queries in flight per thread in searchMany (LanceDB has no batch search call). */
const IN_FLIGHT_PER_THREAD = 4

/**
 * @typedef {object} MultivectorBuildOptions
 * @property {'none' | 'ivf_flat' | 'ivf_pq' | 'ivf_hnsw_sq' | 'ivf_hnsw_pq'} [index]  default 'none'
 * @property {number} [numPartitions]  IVF lists (default round(√tokens); 1 for the HNSW kinds)
 * @property {number} [numSubVectors]  PQ sub-vectors (default the largest divisor of dim ≤ dim / 4)
 * @property {4 | 8} [numBits]         PQ bits per code (default 8)
 * @property {number} [m]              HNSW links per node (LanceDB's default 20)
 * @property {number} [efConstruction] HNSW build list (LanceDB's default 300)
 */
/**
 * @typedef {object} MultivectorSearchParams
 * @property {number} [nprobes]       IVF lists searched per query token (LanceDB's default 20)
 * @property {number} [ef]            HNSW search list per query token (LanceDB's default 1.5 × limit)
 * @property {number} [refineFactor]  re-rank the best k × refineFactor rows by exact MaxSim
 * @property {boolean} [exact]        skip the index: flat exact MaxSim (bypassVectorIndex)
 * @property {'dot' | 'cosine'} [distanceType]  of flat scans (default 'dot': the same on unit
 *   vectors, and faster); indexed searches always use 'cosine', the index's
 */

/**
 * @param {{ dim: number, threads?: number, log?: (msg: string) => void, xtrOverfetch?: number }} options
 *   threads: LANCE_CPU_THREADS unless already set (default: every CPU);
 *   xtrOverfetch: LANCE_XTR_OVERFETCH unless already set (indexed searches only)
 * Resolves to null (after a log line) when LanceDB cannot be loaded.
 */
export async function createLancedbMultivector({ dim, threads = os.availableParallelism(), log = () => {}, xtrOverfetch }) {
  process.env.LANCE_CPU_THREADS ??= String(threads)
  if (xtrOverfetch !== undefined) process.env.LANCE_XTR_OVERFETCH ??= String(xtrOverfetch)
  const loaded = loadPeer('@lancedb/lancedb')
  if (loaded.error !== undefined) {
    log(`lancedb-multivector skipped: ${loaded.error}`)
    return null
  }
  const arrowLoaded = loadPeer('apache-arrow')
  if (arrowLoaded.error !== undefined) {
    log(`lancedb-multivector skipped: ${arrowLoaded.error} (peer dependency of @lancedb/lancedb)`)
    return null
  }
  const lancedb = loaded.module
  const version = 'version' in loaded ? loaded.version : null
  const arrow = arrowLoaded.module
  const cpuThreads = Number(process.env.LANCE_CPU_THREADS)
  const inFlight = IN_FLIGHT_PER_THREAD * Math.max(1, cpuThreads)
  const tokenType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true))
  const docType = new arrow.List(new arrow.Field('item', tokenType, true))

  /** @type {any} */
  let db = null
  /** @type {any} */
  let table = null
  let dir = null
  /** @type {Record<string, any>} */
  let info = { index: 'none' }

  /** Documents from … to − 1 of a CSR set as an Arrow table (id, vector); views, no copies. */
  const arrowBatch = (base, from, to) => {
    const t0 = base.offsets[from]
    const t1 = base.offsets[to]
    const child = arrow.makeData({ type: tokenType, length: t1 - t0, nullCount: 0, child: arrow.makeData({ type: new arrow.Float32(), length: (t1 - t0) * dim, data: base.vectors.subarray(t0 * dim, t1 * dim) }) })
    const valueOffsets = new Int32Array(to - from + 1)
    for (let i = from; i <= to; i++) valueOffsets[i - from] = base.offsets[i] - t0
    const vectors = arrow.makeVector(arrow.makeData({ type: docType, length: to - from, nullCount: 0, valueOffsets, child }))
    const ids = arrow.makeVector(Int32Array.from({ length: to - from }, (_, i) => from + i))
    return new arrow.Table({ id: ids, vector: vectors })
  }

  /** One query's token rows as LanceDB's MultiVector (an array of Float32Array views). */
  const tokenRows = (tokens) => {
    const rows = new Array(tokens.length / dim)
    for (let i = 0; i < rows.length; i++) rows[i] = tokens.subarray(i * dim, (i + 1) * dim)
    return rows
  }

  /** @param {Float32Array} tokens @param {number} k @param {MultivectorSearchParams} params */
  const query = async (tokens, k, params = {}) => {
    if (tokens.length === 0 || tokens.length % dim !== 0) throw new Error(`a query needs a positive multiple of ${dim} values, got ${tokens.length}`)
    const flat = params.exact || info.index === 'none'
    let q = table.vectorSearch(tokenRows(tokens)).column('vector').distanceType(flat ? params.distanceType ?? 'dot' : 'cosine')
    if (params.exact) q = q.bypassVectorIndex()
    if (!flat) {
      if (params.nprobes !== undefined) q = q.nprobes(params.nprobes)
      if (params.ef !== undefined) q = q.ef(params.ef)
      if (params.refineFactor) q = q.refineFactor(params.refineFactor)
    }
    return q.limit(k).select(['id', '_distance']).toArrow()
  }

  return {
    name: 'lancedb-multivector',
    version,
    threads: cpuThreads,

    /**
     * Writes every document as one row (in batches of BATCH_DOCS), then builds the index, if any.
     * @param {import('../../multivector-data.mjs').MultiVectorSet} base
     * @param {MultivectorBuildOptions} [options]
     * @returns {Promise<{ seconds: { createTable: number, createIndex: number }, index: object | undefined }>}
     */
    async build(base, options = {}) {
      const kind = options.index ?? 'none'
      if (!LANCEDB_MULTIVECTOR_INDEXES.includes(kind)) throw new Error(`unknown lancedb multivector index "${kind}" (${LANCEDB_MULTIVECTOR_INDEXES.join(', ')})`)
      if (table) throw new Error('build() was already called: close() first')
      const tokens = base.offsets[base.count]
      if (base.vectors.length !== tokens * dim) throw new Error(`base has ${base.vectors.length} values for ${tokens} tokens of ${dim} dimensions`)
      dir = makeTempDir('lancedb-mv')
      db = await lancedb.connect(dir)
      const started = performance.now()
      for (let from = 0; from < base.count; from += BATCH_DOCS) {
        const batch = arrowBatch(base, from, Math.min(base.count, from + BATCH_DOCS))
        if (!table) table = await db.createTable('docs', batch)
        else await table.add(batch)
      }
      const ingested = performance.now()
      let config = null
      let setup = { distanceType: 'cosine' }
      if (kind !== 'none') {
        const hnsw = kind.startsWith('ivf_hnsw')
        const numPartitions = options.numPartitions ?? (hnsw ? 1 : Math.max(1, Math.round(Math.sqrt(tokens))))
        setup = { ...setup, numPartitions }
        if (kind === 'ivf_pq' || kind === 'ivf_hnsw_pq') {
          let numSubVectors = options.numSubVectors ?? Math.max(1, Math.floor(dim / 4))
          while (dim % numSubVectors !== 0) numSubVectors--
          setup = { ...setup, numSubVectors, numBits: options.numBits ?? 8 }
        }
        if (hnsw) {
          if (options.m !== undefined) setup.m = options.m
          if (options.efConstruction !== undefined) setup.efConstruction = options.efConstruction
        }
        config = {
          ivf_flat: () => lancedb.Index.ivfFlat(setup),
          ivf_pq: () => lancedb.Index.ivfPq(setup),
          ivf_hnsw_sq: () => lancedb.Index.hnswSq(setup),
          ivf_hnsw_pq: () => lancedb.Index.hnswPq(setup),
        }[kind]()
        await table.createIndex('vector', { config })
      }
      const indexed = performance.now()
      const [index] = config ? await table.listIndices() : []
      // Load the index into LanceDB's cache now, not during the first timed search.
      if (index) await table.prewarmIndex(index.name)
      info = {
        index: kind,
        setup,
        documents: base.count,
        tokens,
        indexInfo: index ? { name: index.name, indexType: index.indexType, sizeBytes: index.sizeBytes, numIndexedRows: index.numIndexedRows } : undefined,
        tableDataBytes: (await table.stats()).totalBytes,
        dirBytes: diskBytes(dir),
      }
      const seconds = { createTable: (ingested - started) / 1e3, createIndex: (indexed - ingested) / 1e3 }
      log(`lancedb-multivector: ${base.count} rows (${tokens} tokens) written in ${seconds.createTable.toFixed(1)} s${config ? `, ${kind} built in ${seconds.createIndex.toFixed(1)} s` : ''}`)
      return { seconds, index: info.indexInfo }
    },

    /**
     * Top-k documents of one query by MaxSim, best first.
     * @param {Float32Array} queryTokens tokens × dim, unit rows
     * @param {number} k
     * @param {MultivectorSearchParams} [params]
     * @returns {Promise<Int32Array>} document numbers (base order)
     */
    async search(queryTokens, k, params) {
      return (await query(queryTokens, k, params)).getChild('id').toArray()
    },

    /**
     * As search, with Chamfer similarities: 1 − `_distance` (exact for flat searches and for the
     * refined rows; XTR estimates otherwise).
     * @returns {Promise<{ ids: Int32Array, scores: Float64Array }>}
     */
    async searchScored(queryTokens, k, params) {
      const result = await query(queryTokens, k, params)
      const ids = result.getChild('id').toArray()
      const distances = result.getChild('_distance').toArray()
      return { ids, scores: Float64Array.from(distances, (d) => 1 - d) }
    },

    /**
     * Every query of a CSR set, at most 4 × LANCE_CPU_THREADS in flight (LanceDB has no batch
     * call for multivector queries); results in query order.
     * @param {import('../../multivector-data.mjs').MultiVectorSet} queries
     * @returns {Promise<Int32Array[]>}
     */
    async searchMany(queries, k, params) {
      return mapLimited(queries.count, inFlight, (i) => this.search(queries.vectors.subarray(queries.offsets[i] * dim, queries.offsets[i + 1] * dim), k, params))
    },

    /** What was built and how searches run, for the report. */
    describe() {
      const indexed = info.index !== 'none'
      return {
        engine: `@lancedb/lancedb ${version}`,
        ...info,
        threads: `LANCE_CPU_THREADS=${process.env.LANCE_CPU_THREADS}`,
        search: indexed
          ? `XTR over the ${info.index} token index: each query token fetches k × LANCE_XTR_OVERFETCH (${process.env.LANCE_XTR_OVERFETCH ?? '10, the default'}) hits, rows scored from the hits; params nprobes / ef / refineFactor (exact MaxSim re-rank of k × refineFactor rows); exact: true scans flat`
          : "flat scan: exact MaxSim over every row (distanceType 'dot' on unit vectors unless params.distanceType is 'cosine')",
        batch: `searchMany: one query per call, at most ${inFlight} in flight`,
      }
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
