// Exact ground truth by a plain JavaScript scan in float64, independent of vecdex, and recall.
//
// Cache file `benchmark/.cache/gt-<dataset>-<k>.bin`, little-endian:
//   bytes 0..8    magic "VDXGT001"
//   bytes 8..40   sha-256 of (metric, dim, base bytes, query bytes)
//   u32 q, u32 k
//   i32[q × k]    neighbour rows, best first
//   f64[q × k]    their distances (lower is closer)
// A cache whose hash does not match the data is recomputed and overwritten.

import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { cacheDir, readVecs } from './datasets.mjs'

const MAGIC = 'VDXGT001'

/**
 * @typedef {object} GroundTruth
 * @property {number} q
 * @property {number} k
 * @property {Int32Array} indices     q × k base rows, best first
 * @property {Float64Array} distances q × k true distances
 * @property {(query: number, row: number) => number} trueDistance float64 distance of a base row
 * @property {string} source          'cache', 'computed', or where given neighbours come from
 */

/** Float64 norms of every row. */
function rowNorms(matrix, dim) {
  const out = new Float64Array(matrix.length / dim)
  for (let i = 0; i < out.length; i++) {
    let s = 0
    for (let j = i * dim, e = j + dim; j < e; j++) s += matrix[j] * matrix[j]
    out[i] = Math.sqrt(s)
  }
  return out
}

/**
 * Distance of query row `qi` to base row `bi` in float64, under the vecdex convention:
 * l2sq = Σ(q−b)², cosine = 1 − ⟨q,b⟩/(|q||b|), dot = 1 − ⟨q,b⟩.
 */
function distanceFn(metric, dim, base, queries, baseNorms, queryNorms) {
  if (metric === 'l2sq') {
    return (qi, bi) => {
      let s = 0
      const qo = qi * dim
      const bo = bi * dim
      for (let j = 0; j < dim; j++) {
        const d = queries[qo + j] - base[bo + j]
        s += d * d
      }
      return s
    }
  }
  return (qi, bi) => {
    let s = 0
    const qo = qi * dim
    const bo = bi * dim
    for (let j = 0; j < dim; j++) s += queries[qo + j] * base[bo + j]
    return metric === 'cosine' ? 1 - s / (queryNorms[qi] * baseNorms[bi]) : 1 - s
  }
}

/** Exact top-k of queries [from, to): plain loops, a sorted insertion list per query. */
function scan({ metric, dim, k, base, queries, from, to }) {
  const baseNorms = metric === 'cosine' ? rowNorms(base, dim) : null
  const queryNorms = metric === 'cosine' ? rowNorms(queries, dim) : null
  const distance = distanceFn(metric, dim, base, queries, baseNorms, queryNorms)
  const n = base.length / dim
  const kk = Math.min(k, n)
  const indices = new Int32Array((to - from) * k).fill(-1)
  const distances = new Float64Array((to - from) * k).fill(Infinity)
  const topD = new Float64Array(kk)
  const topI = new Int32Array(kk)
  for (let qi = from; qi < to; qi++) {
    topD.fill(Infinity)
    topI.fill(-1)
    let worst = Infinity
    for (let bi = 0; bi < n; bi++) {
      const d = distance(qi, bi)
      // Ties keep the lower row first (strict <), like a stable sort by (distance, row).
      if (d < worst) {
        let p = kk - 1
        while (p > 0 && topD[p - 1] > d) {
          topD[p] = topD[p - 1]
          topI[p] = topI[p - 1]
          p--
        }
        topD[p] = d
        topI[p] = bi
        worst = topD[kk - 1]
      }
    }
    const at = (qi - from) * k
    indices.set(topI, at)
    distances.set(topD, at)
  }
  return { indices, distances }
}

if (!isMainThread && workerData?.groundTruthJob) {
  const job = workerData.groundTruthJob
  const result = scan({ ...job, base: new Float32Array(job.base), queries: new Float32Array(job.queries) })
  parentPort.postMessage(result, [result.indices.buffer, result.distances.buffer])
}

/** Runs the scan over `workers` threads (shared, read-only copies of the data). */
async function scanParallel(dataset, k, workers) {
  const share = (arr) => {
    const sab = new SharedArrayBuffer(arr.byteLength)
    new Float32Array(sab).set(arr)
    return sab
  }
  const base = share(dataset.base)
  const queries = share(dataset.queries)
  const per = Math.ceil(dataset.q / workers)
  const parts = []
  for (let from = 0; from < dataset.q; from += per) {
    const to = Math.min(dataset.q, from + per)
    parts.push(
      new Promise((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), {
          workerData: { groundTruthJob: { metric: dataset.metric, dim: dataset.dim, k, base, queries, from, to } },
        })
        w.once('message', (r) => resolve({ from, ...r }))
        w.once('error', reject)
      }),
    )
  }
  const indices = new Int32Array(dataset.q * k)
  const distances = new Float64Array(dataset.q * k)
  for (const part of await Promise.all(parts)) {
    indices.set(part.indices, part.from * k)
    distances.set(part.distances, part.from * k)
  }
  return { indices, distances }
}

/** sha-256 of the metric, shape and every byte of base and queries. */
export function datasetHash(dataset) {
  const h = crypto.createHash('sha256')
  h.update(`${dataset.metric}/${dataset.dim}/${dataset.n}/${dataset.q};`)
  const chunk = 1 << 24
  for (const arr of [dataset.base, dataset.queries]) {
    const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength)
    for (let i = 0; i < bytes.length; i += chunk) h.update(bytes.subarray(i, i + chunk))
  }
  return h.digest()
}

function safeName(name) {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_')
}

/**
 * Exact top-k of every query, from the cache when its hash matches, else computed (in worker
 * threads) and cached. With `dataset.groundTruthFile` (an .ivecs file) or
 * `dataset.groundTruthRows` (read with the data, e.g. an HDF5 file's `neighbors`) the rows come
 * from there, and their distances are measured here.
 * @param {import('./datasets.mjs').Dataset} dataset
 * @param {number} k
 * @param {{ log?: (s: string) => void, workers?: number }} [opts]
 * @returns {Promise<GroundTruth>}
 */
export async function groundTruth(dataset, k, opts = {}) {
  const log = opts.log ?? (() => {})
  const baseNorms = dataset.metric === 'cosine' ? rowNorms(dataset.base, dataset.dim) : null
  const queryNorms = dataset.metric === 'cosine' ? rowNorms(dataset.queries, dataset.dim) : null
  const trueDistance = distanceFn(dataset.metric, dataset.dim, dataset.base, dataset.queries, baseNorms, queryNorms)
  const finish = (indices, distances, source) => ({ q: dataset.q, k, indices, distances, trueDistance, source })

  const gt = dataset.groundTruthFile ? { ...readVecs(dataset.groundTruthFile, dataset.q), source: dataset.groundTruthFile } : dataset.groundTruthRows
  if (gt) {
    if (gt.dim < k) throw new Error(`${gt.source} has ${gt.dim} neighbours per query, fewer than k = ${k}`)
    if (gt.rows < dataset.q) throw new Error(`${gt.source} has ${gt.rows} rows for ${dataset.q} queries`)
    const indices = new Int32Array(dataset.q * k)
    const distances = new Float64Array(dataset.q * k)
    for (let qi = 0; qi < dataset.q; qi++) {
      for (let j = 0; j < k; j++) {
        const row = gt.data[qi * gt.dim + j]
        indices[qi * k + j] = row
        distances[qi * k + j] = row >= 0 && row < dataset.n ? trueDistance(qi, row) : Infinity
      }
    }
    return finish(indices, distances, gt.source)
  }

  const hash = datasetHash(dataset)
  const file = path.join(cacheDir, `gt-${safeName(dataset.name)}-${k}.bin`)
  if (fs.existsSync(file)) {
    const bytes = fs.readFileSync(file)
    const headerOk = bytes.length >= 48 && bytes.toString('latin1', 0, 8) === MAGIC && bytes.subarray(8, 40).equals(hash)
    if (headerOk && bytes.readUInt32LE(40) === dataset.q && bytes.readUInt32LE(44) === k) {
      const body = bytes.buffer.slice(bytes.byteOffset + 48, bytes.byteOffset + bytes.length)
      const indices = new Int32Array(body, 0, dataset.q * k)
      const distances = new Float64Array(body.slice(dataset.q * k * 4))
      return finish(indices, distances, 'cache')
    }
    log(`ground truth cache ${path.basename(file)} is for other data: recomputing`)
  }
  const started = performance.now()
  const work = dataset.q * dataset.n * dataset.dim
  const workers = opts.workers ?? (work > 5e7 ? Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, dataset.q)) : 1)
  log(`ground truth: exact float64 JS scan of ${dataset.q} × ${dataset.n} × ${dataset.dim} on ${workers} thread(s)…`)
  const { indices, distances } =
    workers > 1
      ? await scanParallel(dataset, k, workers)
      : scan({ metric: dataset.metric, dim: dataset.dim, k, base: dataset.base, queries: dataset.queries, from: 0, to: dataset.q })
  log(`ground truth computed in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  fs.mkdirSync(cacheDir, { recursive: true })
  const header = Buffer.alloc(48)
  header.write(MAGIC, 0, 'latin1')
  hash.copy(header, 8)
  header.writeUInt32LE(dataset.q, 40)
  header.writeUInt32LE(k, 44)
  fs.writeFileSync(file, Buffer.concat([header, Buffer.from(indices.buffer), Buffer.from(distances.buffer)]))
  return finish(indices, distances, 'computed')
}

/**
 * Normalises search output to one array of row numbers per query. Accepts an array of arrays,
 * or `{ keys: Int32Array | BigUint64Array | number[], k, counts? }` (flat, row-major).
 * @returns {number[][]}
 */
export function toRows(result) {
  if (Array.isArray(result)) return result.map((r) => Array.from(r, Number))
  const { keys, k, counts } = result
  const q = counts ? counts.length : Math.floor(keys.length / k)
  const rows = []
  for (let i = 0; i < q; i++) {
    const count = counts ? Number(counts[i]) : k
    const row = []
    for (let j = 0; j < count; j++) row.push(Number(keys[i * k + j]))
    rows.push(row)
  }
  return rows
}

/**
 * Recall@k with fair ties: a returned row counts if it is one of the true top k, or if its true
 * distance is within 1e-5 (relative) of the k-th true distance — any of several tied neighbours
 * is a right answer. Each row counts once per query. The results may cover only the first
 * queries (a peer run on fewer). Returns the fraction of right answers in [0, 1].
 * @param {number[][] | object} resultKeysPerQuery rows per query (see `toRows`)
 * @param {GroundTruth} gt
 * @param {number} k
 */
export function recallAtK(resultKeysPerQuery, gt, k) {
  const rows = toRows(resultKeysPerQuery)
  const kk = Math.min(k, gt.k)
  let hits = 0
  let total = 0
  for (let qi = 0; qi < rows.length; qi++) {
    const truth = new Set(gt.indices.subarray(qi * gt.k, qi * gt.k + kk))
    const kth = gt.distances[qi * gt.k + kk - 1]
    const bound = kth + 1e-5 * Math.max(Math.abs(kth), 1e-12)
    const seen = new Set()
    for (const key of rows[qi].slice(0, kk)) {
      if (seen.has(key)) continue
      seen.add(key)
      if (truth.has(key) || (key >= 0 && gt.trueDistance(qi, key) <= bound)) hits++
    }
    total += kk
  }
  return total === 0 ? NaN : hits / total
}
