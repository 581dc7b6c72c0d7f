// LanceDB's compressed vector indexes, driven by the ann suite's LanceDB adapter:
// - `ivf-pq`: IVF_PQ with 4-bit codes, numSubVectors = d/2, so d/4 bytes per vector as vecdex's
//   pq (m = d/4, 8 bits); LanceDB's fast-to-train PQ (16 centroids per sub-vector).
// - `ivf-pq8`: IVF_PQ with 8-bit codes, numSubVectors = d/4 (the same layout as vecdex's pq).
//   Not in the default run: LanceDB trains 256-centroid k-means per sub-vector on 65,536 rows
//   (50 iterations), which took 166 s on GloVe 100k and over 13 minutes on Fashion-MNIST here.
// - `ivf-rq`: IVF_RQ, LanceDB's RaBitQ index (1 bit per dimension), numPartitions = round(√n),
//   refineFactor 10 as vecdex's 1-bit rabitq oversample; the sweep sets nprobes.
// - `hnsw-sq`: IVF_HNSW_SQ in one partition (an HNSW graph over 8-bit codes, the ann suite's
//   set-up); the sweep sets ef.
// IVF_PQ: numPartitions = round(√n) (LanceDB's own default); the sweep sets nprobes. Every
// variant refines: limit × refineFactor candidates are re-ranked with the table's f32 vectors
// (read from the table's files, in the page cache, not from the index). IVF k-means and PQ / SQ
// training happen inside createIndex: LanceDB does not expose them apart, so their time is in
// the build column.

import { createLancedbAnnAdapter } from '../ann/lancedb.mjs'
import { rescoringSweep } from './sweep-values.mjs'

/** Candidates re-ranked per result for IVF_PQ (as vecdex's binary; d/4-byte PQ codes are coarse). */
const PQ_REFINE = 10
/** Candidates re-ranked per result for HNSW-SQ: vecdex's default oversample. */
const SQ_REFINE = 4
/** nprobes sweep of IVF_PQ (values above numPartitions are dropped). */
export const NPROBES = [2, 4, 8, 16, 32, 64, 128]
/**
 * Seconds of timed searches LanceDB may spend on its sweep (the suite's default is shorter):
 * its queries take milliseconds each, and a sweep point costs it 10–20 s.
 */
const BUDGET_SECONDS = 150
/** efSearch sweep of HNSW-SQ when --ef is not given: LanceDB's searches are slow, so coarser. */
const SQ_EF = [10, 20, 30, 40, 64, 128, 256, 512]

/** IVF_PQ layouts by codec name: sub-vectors per dimension and bits per code. */
const PQ_LAYOUTS = {
  'ivf-pq': { perDim: 1 / 2, numBits: 4 },
  'ivf-pq8': { perDim: 1 / 4, numBits: 8 },
}
/** IVF_RQ: RaBitQ bits per dimension (LanceDB's default, as vecdex's 'rabitq'). */
const RQ_BITS = 1
export const LANCEDB_CODECS = ['ivf-pq', 'ivf-pq8', 'ivf-rq', 'hnsw-sq']
export const LANCEDB_DEFAULT_CODECS = ['ivf-pq', 'ivf-rq', 'hnsw-sq']

/** @returns {import('./index.mjs').QuantAdapter} */
export function createLancedbQuantAdapter({ token, threads }) {
  if (!LANCEDB_CODECS.includes(token)) throw new Error(`unknown lancedb codec "${token}"`)
  const layout = PQ_LAYOUTS[token]
  const rq = token === 'ivf-rq'
  // `pq`: an IVF index swept by nprobes (PQ or RQ codes).
  const pq = layout !== undefined || rq
  const name = `lancedb ${token}`
  let inner = createLancedbAnnAdapter({ threads, name, refineFactor: pq ? PQ_REFINE : SQ_REFINE })
  let dim = 0
  let ivf = null
  return {
    name,
    family: 'lancedb',
    codec: token,
    version: null,
    sweepParam: pq ? 'nprobes' : 'efSearch ×refineFactor',
    budgetSeconds: BUDGET_SECONDS,
    notes: inner.notes,
    setup: rq ? `IVF_RQ (RaBitQ), ${RQ_BITS} bit per dimension, refineFactor ${PQ_REFINE}` : pq ? `IVF_PQ, ${layout.numBits}-bit codes, refineFactor ${PQ_REFINE}` : `IVF_HNSW_SQ (1 partition, m and efConstruction as vecdex), 8-bit SQ, refineFactor ${SQ_REFINE}`,
    rescoreSetting: pq ? `refineFactor ${PQ_REFINE} (f32 rows read from the table)` : `refineFactor ${SQ_REFINE}, ⌊ef/k⌋ below ef = k × ${SQ_REFINE} (f32 rows read from the table)`,
    batchThreads: undefined,
    /**
     * IVF_PQ: nprobes. HNSW-SQ: LanceDB rejects ef < k × refineFactor, so below ef = k ×
     * SQ_REFINE the refineFactor follows ef down (⌊ef / k⌋), as vecdex's oversample does.
     */
    sweepValues(efs, explicitEf, k) {
      if (pq) return NPROBES.filter((p) => !ivf || p <= ivf.numPartitions)
      return rescoringSweep(explicitEf ? efs : SQ_EF, k, SQ_REFINE)
    },
    async init() {
      const status = await inner.init()
      this.version = inner.version
      return status
    },
    /** Sizes the IVF lists and PQ codes for this dataset (before sweepValues and build). */
    configure(dataset) {
      dim = dataset.dim
      if (!pq) return
      if (rq) {
        // lance-index 8.0.0 (in @lancedb/lancedb 0.31.0): "vector dimension must be divisible by 8 for IVF_RQ".
        if (dim % 8 !== 0) throw new Error(`LanceDB's IVF_RQ takes dimensions divisible by 8; ${dataset.name} has ${dim}`)
        ivf = { numPartitions: Math.max(1, Math.round(Math.sqrt(dataset.n))), numBits: RQ_BITS }
        inner = createLancedbAnnAdapter({ threads, name, refineFactor: PQ_REFINE, ivfRq: ivf })
        this.notes = inner.notes
        this.setup = `IVF_RQ (RaBitQ), numPartitions ${ivf.numPartitions} (√n), ${ivf.numBits} bit per dimension (${(dim * ivf.numBits) / 8} B per vector plus its factors), refineFactor ${PQ_REFINE}`
        return
      }
      let numSubVectors = Math.max(1, Math.round(dim * layout.perDim))
      while (dim % numSubVectors !== 0) numSubVectors--
      ivf = { numPartitions: Math.max(1, Math.round(Math.sqrt(dataset.n))), numSubVectors, numBits: layout.numBits }
      inner = createLancedbAnnAdapter({ threads, name, refineFactor: PQ_REFINE, ivfPq: ivf })
      this.notes = inner.notes
      this.setup = `IVF_PQ, numPartitions ${ivf.numPartitions} (√n), numSubVectors ${ivf.numSubVectors}, ${ivf.numBits}-bit codes (${(ivf.numSubVectors * ivf.numBits) / 8} B per vector), refineFactor ${PQ_REFINE}`
    },
    async build(dataset, params) {
      if (pq && !ivf) this.configure(dataset)
      if (pq) await inner.init()
      const info = await inner.build(dataset, params)
      this.batchThreads = inner.batchThreads
      return { ...info, details: { ...info.details, [rq ? 'ivfRq' : 'ivfPq']: ivf ?? undefined } }
    },
    memory: () => inner.memory(),
    compression() {
      return {
        codeBytes: rq ? (dim * ivf.numBits) / 8 : pq ? (ivf.numSubVectors * ivf.numBits) / 8 : dim,
        rescoreBytes: 4 * dim,
        searchDimensions: dim,
        source: rq ? `${ivf.numBits} bit per dimension (RaBitQ; its per-vector factors not counted); the refine step reads the table's f32 rows` : pq ? `${ivf.numSubVectors} PQ codes of ${ivf.numBits} bits; the refine step reads the table's f32 rows` : "8-bit SQ: 1 byte per dimension; the refine step reads the table's f32 rows",
      }
    },
    stats: () => inner.stats(),
    setEf: (value) => inner.setEf(value),
    prepare: (queries, q) => inner.prepare(queries, q),
    searchSequential: (prepared, k, from, to) => inner.searchSequential(prepared, k, from, to),
    searchBatch: (prepared, k) => inner.searchBatch(prepared, k),
    close: () => inner.close(),
  }
}
