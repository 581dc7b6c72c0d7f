// vecdex HnswIndex with a compressed search form: the graph is built and searched on codes
// (sq8, sq4, binary, pq, f16, …, optionally after a PCA reduction), and the best
// k × oversample candidates are rescored with the f32 vectors the index keeps.
// Training is its own timed step: train(sample) on the first rows of the base, then add(all).

import { loadVecdex, rowKeys, rowViews } from '../common.mjs'
import { rescoringSweep } from './sweep-values.mjs'

/** vecdex's own oversample when none is given (lib/compression.ts; PQ and binary: 10). */
const VECDEX_DEFAULT_OVERSAMPLE = 4

/**
 * vecdex codecs by --codecs name. `quantization` and `pcaDimensions` may depend on the dataset's
 * dimension; `oversample` is the default of that codec (vecdex's own: 10 for PQ and binary, 4 otherwise).
 * `queries`: train with the dataset's training queries (LeanVec-OOD).
 * @type {Record<string, { quantization?: any, pcaDimensions?: (dim: number) => number, oversample?: number, queries?: boolean, describe: (dim: number) => string }>}
 */
export const VECDEX_CODECS = {
  f32: { describe: () => 'no quantization: the graph is searched on the f32 vectors' },
  f16: { quantization: 'f16', describe: () => "quantization 'f16' (codes of 2 bytes per dimension, beside the f32 rows)" },
  bf16: { quantization: 'bf16', describe: () => "quantization 'bf16' (codes of 2 bytes per dimension, beside the f32 rows)" },
  sq8: { quantization: 'sq8', describe: () => "quantization 'sq8' (codes of 8 bits per dimension beside the f32 rows, per-dimension range; the query is quantized too, vecdex's default)" },
  'sq8-asym': { quantization: { type: 'sq8', symmetric: false }, describe: () => "quantization { type: 'sq8', symmetric: false } (the query stays f32)" },
  sq4: { quantization: 'sq4', describe: () => "quantization 'sq4' (codes of 4 bits per dimension, beside the f32 rows)" },
  binary: { quantization: 'binary', oversample: 10, describe: () => "quantization 'binary' (codes of 1 bit per dimension beside the f32 rows, scored against the float query)" },
  rabitq: { quantization: 'rabitq', oversample: 10, describe: () => "quantization 'rabitq' (RaBitQ: 1 bit per dimension of the rotated residual and 12 bytes of factors beside the f32 rows, unbiased inner-product estimate)" },
  rabitq4: { quantization: { type: 'rabitq', bits: 4 }, describe: () => "quantization { type: 'rabitq', bits: 4 } (extended RaBitQ: 4 bits per dimension of the rotated residual and 16 bytes of factors beside the f32 rows)" },
  pq: { quantization: (dim) => ({ type: 'pq', subspaces: Math.max(1, Math.floor(dim / 4)) }), oversample: 10, describe: (dim) => `quantization { type: 'pq', subspaces: ${Math.max(1, Math.floor(dim / 4))} } (m = d/4, 256 centroids per subspace)` },
  'pca-8': { pcaDimensions: (dim) => Math.max(1, Math.floor(dim / 8)), describe: (dim) => `pcaDimensions ${Math.max(1, Math.floor(dim / 8))}, f32 (PCA of the stored vectors)` },
  'leanvec-8': { pcaDimensions: (dim) => Math.max(1, Math.floor(dim / 8)), queries: true, describe: (dim) => `pcaDimensions ${Math.max(1, Math.floor(dim / 8))}, f32, trained with the dataset's training queries (LeanVec-OOD)` },
  leanvec: { pcaDimensions: (dim) => Math.max(1, Math.floor(dim / 2)), queries: true, describe: (dim) => `pcaDimensions ${Math.max(1, Math.floor(dim / 2))}, f32, trained with the dataset's training queries (LeanVec-OOD)` },
  'pca-sq8': { quantization: 'sq8', pcaDimensions: (dim) => Math.max(1, Math.floor(dim / 2)), describe: (dim) => `pcaDimensions ${Math.max(1, Math.floor(dim / 2))} + quantization 'sq8'` },
  pca: { pcaDimensions: (dim) => Math.max(1, Math.floor(dim / 2)), describe: (dim) => `pcaDimensions ${Math.max(1, Math.floor(dim / 2))}, f32` },
}

/**
 * A --codecs name for vecdex: `<codec>`, `<codec>@<oversample>` or `<codec>@raw` (no rescoring).
 * @returns {{ codec: string, oversample?: number, rescore: boolean } | undefined}
 */
export function parseVecdexCodec(token) {
  const m = /^([a-z0-9-]+)(?:@(\d+|raw))?$/.exec(token)
  if (!m || !VECDEX_CODECS[m[1]]) return undefined
  if (m[2] === 'raw') return { codec: m[1], rescore: false }
  const oversample = m[2] === undefined ? VECDEX_CODECS[m[1]].oversample : Number(m[2])
  if (oversample !== undefined && !(oversample >= 1 && oversample <= 1000)) return undefined
  return { codec: m[1], oversample, rescore: true }
}

/** @returns {import('./index.mjs').QuantAdapter} */
export function createVecdexQuantAdapter({ token }) {
  const spec = parseVecdexCodec(token)
  if (!spec) throw new Error(`unknown vecdex codec "${token}"`)
  const codec = VECDEX_CODECS[spec.codec]
  /** @type {any} */
  let vecdex = null
  /** @type {any} */
  let index = null
  let dim = 0
  let n = 0
  let ef = 64
  let searchOptions = null
  const compressed = spec.codec !== 'f32'
  /** Oversample at the top of the sweep (the codec's, or vecdex's default). */
  const oversample = spec.oversample ?? VECDEX_DEFAULT_OVERSAMPLE
  const oversampleText = () => (!compressed ? 'none (searches the f32 rows)' : spec.rescore ? `oversample ${spec.oversample ?? `${VECDEX_DEFAULT_OVERSAMPLE} (default)`}, ⌊ef/k⌋ below ef = k × ${oversample}` : 'no rescoring (rescore: false)')

  const create = (dataset, { m, efConstruction }) => {
    dim = dataset.dim
    n = dataset.n
    const quantization = typeof codec.quantization === 'function' ? codec.quantization(dim) : codec.quantization
    const options = { dimensions: dim, metric: dataset.metric, m, efConstruction, efSearch: ef }
    if (quantization !== undefined) options.quantization = quantization
    if (codec.pcaDimensions) options.pcaDimensions = codec.pcaDimensions(dim)
    if (spec.oversample !== undefined) options.oversample = spec.oversample
    index = new vecdex.HnswIndex(options)
    return options
  }
  let createdOptions = null

  return {
    name: `vecdex ${token}`,
    family: 'vecdex',
    codec: token,
    version: null,
    sweepParam: compressed && spec.rescore ? 'efSearch ×oversample' : 'efSearch',
    /** A compressed index walks the graph with max(efSearch, k × oversample) candidates. */
    sweepValues(efs, _explicit, k) {
      return compressed && spec.rescore ? rescoringSweep(efs, k, oversample) : efs
    },
    notes: {
      build: 'new HnswIndex({ dimensions, metric, m, efConstruction, …compression }); train(sample) timed apart; then await add(keys, vectors): parallel insert on its pool',
      single: 'searchSync(query, { k, efSearch, oversample?, rescore? }) per query, blocking on the JS thread',
      batch: 'await searchBatch(all queries, { k, efSearch, oversample?, rescore? }): parallel over queries on its pool',
    },
    /** Set by init: how this codec is configured, for the report. */
    setup: undefined,
    rescoreSetting: undefined,
    batchThreads: undefined,
    async init() {
      const loaded = await loadVecdex()
      if (loaded.error) return loaded.error
      if (typeof loaded.module.HnswIndex !== 'function') return `vecdex ${loaded.version} has no HnswIndex export (not implemented or not built yet)`
      try {
        const probe = new loaded.module.HnswIndex({ dimensions: 8, metric: 'l2sq', quantization: 'sq8' })
        const ok = typeof probe.compressionStats === 'function' && typeof probe.train === 'function'
        probe.close()
        if (!ok) return `vecdex ${loaded.version} has no compression API (train, compressionStats): not built yet`
      } catch (error) {
        return `vecdex ${loaded.version} cannot build a compressed index (not built yet?): ${error?.message ?? error}`
      }
      vecdex = loaded.module
      this.version = loaded.version
      this.rescoreSetting = oversampleText()
      return true
    },
    /** Trains the codec on params.sample (untrained codecs: nothing to do, `needed: false`). */
    async train(dataset, params) {
      createdOptions = create(dataset, params)
      this.setup = `${codec.describe(dim)}; ${oversampleText()}`
      if (index.isTrained) return { needed: false }
      if (codec.queries && !dataset.trainQueries) throw new Error(`vecdex ${token} learns from training queries: dataset ${dataset.name} has none (wordnet-minilm-examples does)`)
      await index.train(params.sample, codec.queries ? { queries: dataset.trainQueries } : {})
      return { needed: true, sampleRows: params.sample.length / dim, native: index.compressionStats().trainingSeconds }
    },
    async build(dataset, params) {
      const { threads } = params
      if (!index) createdOptions = create(dataset, params)
      await index.add(rowKeys(dataset.n), dataset.base)
      let pool
      try {
        pool = vecdex.capabilities?.().threads
      } catch {
        pool = undefined
      }
      const used = Number.isInteger(pool) && pool > 0 ? pool : threads
      this.batchThreads = used
      const { dimensions: _d, metric: _m, ...shown } = createdOptions
      return { threads: used, threadsNote: `its pool (VECDEX_THREADS=${process.env.VECDEX_THREADS ?? 'unset'})`, details: { options: shown } }
    },
    async memory() {
      const bytes = index?.memoryBytes
      return typeof bytes === 'number' ? { bytes, source: 'HnswIndex.memoryBytes' } : undefined
    },
    compression() {
      const s = index.compressionStats()
      const uncompressed = s.quantization === 'none' && s.searchDimensions === dim
      // Uncompressed: the graph searches the f32 rows themselves, nothing extra is kept.
      const codeBytes = uncompressed ? 4 * dim : s.codeSize
      const rescoreBytes = uncompressed ? 0 : s.vectorBytes / n
      return {
        codeBytes,
        rescoreBytes,
        searchDimensions: s.searchDimensions,
        source: uncompressed ? 'f32 rows (compressionStats reports no codec)' : 'compressionStats(): codeSize; vectorBytes ÷ n',
        raw: s,
      }
    },
    stats() {
      return index?.stats?.()
    },
    /** value: efSearch, or { efSearch, oversample } from the rescoring sweep. */
    setEf(value) {
      ef = typeof value === 'object' ? value.efSearch : value
      searchOptions = { k: 0, efSearch: ef }
      if (typeof value === 'object') searchOptions.oversample = value.oversample
      else if (spec.oversample !== undefined) searchOptions.oversample = spec.oversample
      if (!spec.rescore) searchOptions.rescore = false
    },
    prepare(queries, q) {
      return { all: queries.subarray(0, q * dim), rows: rowViews(queries.subarray(0, q * dim), dim) }
    },
    async searchSequential(prepared, k, from, to) {
      const { rows } = prepared
      const out = new Array(to - from)
      const options = { ...searchOptions, k }
      for (let i = from; i < to; i++) out[i - from] = index.searchSync(rows[i], options)
      return out
    },
    async searchBatch(prepared, k) {
      const r = await index.searchBatch(prepared.all, { ...searchOptions, k })
      return { keys: r.keys, k: r.k, counts: r.counts }
    },
    close() {
      index?.close()
      index = null
    },
  }
}
