// LanceDB (@lancedb/lancedb) IVF_HNSW_SQ: an HNSW graph over 8-bit scalar-quantised codes, in
// one IVF partition, in a table in a temp directory (removed on close). Its API is async only:
// queries run on LanceDB's own threads (its compute pool has LANCE_CPU_THREADS threads, which
// this adapter sets to --threads unless already set: its default on 2 cores is 1).

import { diskBytes, loadPeer, makeTempDir, removeTempDir, rowViews } from '../common.mjs'

/**
 * Candidates re-ranked with the table's f32 vectors: the HNSW-SQ search returns
 * limit × REFINE_FACTOR rows by quantised distance, LanceDB re-scores them exactly and keeps k.
 * 2 is the smallest factor that reached LanceDB's highest recall in a probe on glove-100k
 * (ef 256: no refine 0.949, 1 → 0.949, 2 → 0.970, 4 → 0.970) at about 20% of its QPS.
 */
const REFINE_FACTOR = 2
/**
 * Queries in flight per --threads thread in the batch mode (LanceDB has no batch search call).
 * In a probe on glove-100k, 4–16 in flight on 2 threads, and one multi-vector query
 * (addQueryVector), gave the same QPS within noise (550–780).
 */
const IN_FLIGHT_PER_THREAD = 4

/** Runs fn(0 … count − 1) with at most `limit` calls pending at once; results in input order. */
export async function mapLimited(count, limit, fn) {
  const out = new Array(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      out[i] = await fn(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker))
  return out
}

/**
 * HNSW-SQ by default (the ann suite). The quant suite (adapters/quant/lancedb.mjs) also builds
 * `ivfPq: { numPartitions, numSubVectors, numBits }` (IVF_PQ: flat PQ codes in numPartitions lists;
 * setEf then sets nprobes, the lists searched) or `ivfRq: { numPartitions, numBits }` (IVF_RQ:
 * LanceDB's RaBitQ codes of numBits per dimension in numPartitions lists; nprobes too), and picks
 * its own refineFactor (0: no refine).
 * @param {{ threads: number, refineFactor?: number, inFlightPerThread?: number, ivfPq?: { numPartitions: number, numSubVectors: number, numBits: 4 | 8 }, ivfRq?: { numPartitions: number, numBits: number }, name?: string }} options
 * @returns {import('./index.mjs').AnnAdapter}
 */
export function createLancedbAnnAdapter({ threads, refineFactor = REFINE_FACTOR, inFlightPerThread = IN_FLIGHT_PER_THREAD, ivfPq, ivfRq, name = 'lancedb' }) {
  const ivf = ivfPq ?? ivfRq
  /** @type {any} */
  let lancedb = null
  /** @type {any} */
  let arrow = null
  /** @type {any} */
  let db = null
  /** @type {any} */
  let table = null
  let dir = null
  let dim = 0
  let distanceType = 'l2'
  let ef = 64
  /** refineFactor of the searches that follow (the quant suite's sweep may lower it). */
  let refine = refineFactor
  let cpuThreads = threads
  const inFlight = inFlightPerThread * threads
  const details = {}

  /** One query: the rows' `id` column (Int32Array), best first. */
  const searchOne = async (query, k) => {
    let q = table.vectorSearch(query).column('vector').distanceType(distanceType)
    // IVF_PQ: the sweep value is nprobes. HNSW-SQ: LanceDB rejects ef < limit × refineFactor
    // ("ef must be greater than or equal to k").
    q = ivf ? q.nprobes(ef).limit(k) : q.nprobes(1).ef(Math.max(ef, k * (refine || 1))).limit(k)
    if (refine) q = q.refineFactor(refine)
    const result = await q.select(['id', '_distance']).toArrow()
    return result.getChild('id').toArray()
  }

  const pqNotes = ivfPq && {
    build: `createTable (Arrow table: id, vector) in a temp dir, then createIndex(Index.ivfPq({ numPartitions: ${ivfPq.numPartitions}, numSubVectors: ${ivfPq.numSubVectors}, numBits: ${ivfPq.numBits}, distanceType })): IVF k-means and PQ training happen inside createIndex`,
    single: `one query at a time, awaited: vectorSearch(q).nprobes(sweep value)${refineFactor ? `.refineFactor(${refineFactor})` : ''}.limit(k).select(['id', '_distance']).toArrow()`,
    batch: `the same query builder for every query, at most ${inFlight} in flight (${inFlightPerThread} per thread): LanceDB has no batch search call`,
    other: `IVF_PQ: the nprobes nearest lists are scanned on PQ codes (${ivfPq.numSubVectors} × ${ivfPq.numBits} bits)${refineFactor ? `, then limit × ${refineFactor} candidates are re-ranked with the f32 vectors of the table (refineFactor ${refineFactor})` : ' (no refine step)'}`,
  }
  const rqNotes = ivfRq && {
    build: `createTable (Arrow table: id, vector) in a temp dir, then createIndex(Index.ivfRq({ numPartitions: ${ivfRq.numPartitions}, numBits: ${ivfRq.numBits}, distanceType })): IVF k-means and the RaBitQ rotation happen inside createIndex`,
    single: `one query at a time, awaited: vectorSearch(q).nprobes(sweep value)${refineFactor ? `.refineFactor(${refineFactor})` : ''}.limit(k).select(['id', '_distance']).toArrow()`,
    batch: `the same query builder for every query, at most ${inFlight} in flight (${inFlightPerThread} per thread): LanceDB has no batch search call`,
    other: `IVF_RQ: the nprobes nearest lists are scanned on RaBitQ codes (${ivfRq.numBits} bit per dimension)${refineFactor ? `, then limit × ${refineFactor} candidates are re-ranked with the f32 vectors of the table (refineFactor ${refineFactor})` : ' (no refine step)'}`,
  }
  return {
    name,
    version: null,
    notes: pqNotes || rqNotes || {
      build: 'createTable (Arrow table: id, vector) in a temp dir, then createIndex(Index.hnswSq({ m, efConstruction, numPartitions: 1, distanceType })): HNSW-SQ, 8-bit scalar-quantised codes',
      single: `one query at a time, awaited: vectorSearch(q).nprobes(1).ef(max(ef, k × ${refineFactor || 1}))${refineFactor ? `.refineFactor(${refineFactor})` : ''}.limit(k).select(['id', '_distance']).toArrow() (async only: runs on LanceDB's threads)`,
      batch: `the same query builder for every query, at most ${inFlight} in flight (${inFlightPerThread} per thread): LanceDB has no batch search call`,
      other: `HNSW-SQ: the graph is searched on 8-bit codes${refineFactor ? `, then limit × ${refineFactor} candidates are re-ranked with the f32 vectors (refineFactor ${refineFactor})` : ' (no refine step: distances are quantised)'}`,
    },
    batchThreads: undefined,
    async init() {
      // LanceDB sizes its compute pool once, when it first starts it.
      process.env.LANCE_CPU_THREADS ??= String(threads)
      cpuThreads = Number(process.env.LANCE_CPU_THREADS)
      const loaded = loadPeer('@lancedb/lancedb')
      if (loaded.error) return loaded.error
      const arrowLoaded = loadPeer('apache-arrow')
      if (arrowLoaded.error) return `${arrowLoaded.error} (peer dependency of @lancedb/lancedb)`
      lancedb = loaded.module
      arrow = arrowLoaded.module
      this.version = loaded.version
      return true
    },
    async build(dataset, { m, efConstruction }) {
      dim = dataset.dim
      distanceType = { cosine: 'cosine', l2sq: 'l2', dot: 'dot' }[dataset.metric]
      const n = dataset.n
      const child = arrow.makeData({ type: new arrow.Float32(), length: n * dim, data: dataset.base })
      const listType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true))
      const vectors = arrow.makeVector(arrow.makeData({ type: listType, length: n, nullCount: 0, child }))
      const ids = arrow.makeVector(Int32Array.from({ length: n }, (_, i) => i))
      dir = makeTempDir('lancedb')
      db = await lancedb.connect(dir)
      const started = performance.now()
      table = await db.createTable('vectors', new arrow.Table({ id: ids, vector: vectors }))
      const ingested = performance.now()
      const config = ivfPq
        ? lancedb.Index.ivfPq({ distanceType, numPartitions: ivfPq.numPartitions, numSubVectors: ivfPq.numSubVectors, numBits: ivfPq.numBits })
        : ivfRq
          ? lancedb.Index.ivfRq({ distanceType, numPartitions: ivfRq.numPartitions, numBits: ivfRq.numBits })
          : lancedb.Index.hnswSq({ distanceType, m, efConstruction, numPartitions: 1 })
      await table.createIndex('vector', { config })
      const indexed = performance.now()
      const [index] = await table.listIndices()
      details.index = index ? { name: index.name, indexType: index.indexType, sizeBytes: index.sizeBytes, numIndexedRows: index.numIndexedRows } : undefined
      details.tableDataBytes = (await table.stats()).totalBytes
      details.dirBytes = diskBytes(dir)
      // Load the index into LanceDB's cache now, not during the first timed search.
      if (index) await table.prewarmIndex(index.name)
      this.batchThreads = cpuThreads
      return {
        threads: cpuThreads,
        threadsNote: `LANCE_CPU_THREADS=${process.env.LANCE_CPU_THREADS}`,
        phases: { createTable: (ingested - started) / 1e3, createIndex: (indexed - ingested) / 1e3 },
        details: { ...details },
      }
    },
    async memory() {
      const bytes = details.index?.sizeBytes
      if (typeof bytes !== 'number') return undefined
      const parts = ivfPq ? 'IVF centroids + PQ codebooks and codes' : ivfRq ? 'IVF centroids + RaBitQ rotation and codes' : 'graph + SQ codes'
      return { bytes, source: `index files (listIndices sizeBytes: ${parts}); the f32 vectors stay in the table (${details.tableDataBytes} bytes on disk)` }
    },
    stats() {
      return details
    },
    /** value: ef (nprobes for IVF_PQ), or { efSearch, oversample } (the quant suite's sweep: oversample = refineFactor). */
    setEf(value) {
      ef = typeof value === 'object' ? value.efSearch : value
      refine = typeof value === 'object' ? value.oversample : refineFactor
    },
    prepare(queries, q) {
      return rowViews(queries.subarray(0, q * dim), dim)
    },
    async searchSequential(rows, k, from, to) {
      const out = new Array(to - from)
      for (let i = from; i < to; i++) out[i - from] = await searchOne(rows[i], k)
      return out
    },
    async searchBatch(rows, k) {
      return mapLimited(rows.length, inFlight, (i) => searchOne(rows[i], k))
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
