// The indexes behind the serve suite's servers: each engine's index is built here, in the bench
// process, with the ann suite's m / efConstruction and metric, and persisted to a folder its
// server child loads at start — `vecdex serve --data DIR` reads DIR/<collection>.vdx (a vecdex
// Collection), peer-server.mjs reads DIR/<engine>.json and the index it names.
//
// Peer indexes depend only on the data, the parameters and the peer's pinned version, so they are
// cached under the dataset cache (cacheDir/serve/…) and reused by later runs; vecdex's collection
// is always rebuilt (its code is what changes between runs).

import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { cacheDir } from '../datasets.mjs'
import { datasetHash } from '../groundtruth.mjs'
import { loadPeer, loadVecdex, makeTempDir, normalisedRows, rowKeys } from '../adapters/common.mjs'
import { LANCEDB_REFINE_FACTOR } from './settings.mjs'

/** Server engines in launch order; `vecdex` is measured twice (micro-batching on and off). */
export const SERVE_ENGINES = ['vecdex', 'hnswlib', 'usearch', 'lancedb']
const PACKAGES = { hnswlib: 'hnswlib-node', usearch: 'usearch', lancedb: '@lancedb/lancedb' }
/** Items per Collection.upsert call while building (bounded memory for the item objects). */
const UPSERT_CHUNK = 10_000

/** How each server calls its engine, for the report's method notes. */
export const ENGINE_NOTES = {
  vecdex: 'vecdex serve (bin/vecdex.mjs serve --data DIR): a Collection (index hnsw) loaded from DIR/<name>.vdx; concurrent single-query searches micro-batched into one native batch search by default, or one native async search per request with --no-batching',
  hnswlib: 'peer-server.mjs: HierarchicalNSW.readIndexSync, then setEf + searchKnn(number[], k) per request — synchronous: each search blocks the event loop',
  usearch: "peer-server.mjs: Index.load (in RAM, expansion_search fixed per Index, one Index per efSearch), Index.search(Float32Array, k, 1) per request — synchronous, threads = 1 runs inline (no threads started for one query); cosine as metric 'ip' on unit-length vectors, the query normalised in the request",
  lancedb: `peer-server.mjs: connect + openTable + prewarmIndex, then per request the async vectorSearch(q).nprobes(1).ef(max(ef, k × ${LANCEDB_REFINE_FACTOR})).refineFactor(${LANCEDB_REFINE_FACTOR}).limit(k).select(['id', '_distance']).toArrow() — HNSW-SQ (8-bit codes) re-ranked with the f32 vectors, on LanceDB's threads (LANCE_CPU_THREADS = --threads)`,
}

/**
 * @typedef {object} BuiltEngine
 * @property {string} name
 * @property {string | null} version
 * @property {string} dir            the server's --data folder
 * @property {boolean} cached        true when a peer's index came from the cache
 * @property {number} buildSeconds   0 when cached
 * @property {any} [collection]      vecdex: the Collection, still open (the in-process baseline uses it)
 */

/** The loaded engine library, or the reason to skip it. */
export async function loadEngine(name) {
  if (name === 'vecdex') {
    const loaded = await loadVecdex()
    if (loaded.error) return { error: loaded.error }
    if (typeof loaded.module.Collection !== 'function') return { error: `vecdex ${loaded.version} has no Collection export` }
    return loaded
  }
  const pkg = PACKAGES[name]
  if (!pkg) return { error: `unknown serve engine "${name}"` }
  if (name === 'lancedb') {
    const arrow = loadPeer('apache-arrow')
    if (arrow.error) return { error: `${arrow.error} (peer dependency of @lancedb/lancedb)` }
  }
  return loadPeer(pkg)
}

/**
 * Builds `name`'s index over the dataset and persists it for its server.
 * @param {string} name  one of SERVE_ENGINES
 * @param {import('../datasets.mjs').Dataset} dataset
 * @param {{ m: number, efConstruction: number, threads: number, collection: string, hash: string, log: (msg: string) => void }} params
 *   hash: datasetKey(dataset), for the peers' cache
 * @returns {Promise<BuiltEngine>}
 */
export async function buildServeIndex(name, dataset, params) {
  const loaded = await loadEngine(name)
  if (loaded.error) throw new Error(loaded.error)
  const { m, efConstruction, threads, collection, log } = params
  const started = performance.now()
  if (name === 'vecdex') {
    const dir = makeTempDir('serve-vecdex')
    const col = new loaded.module.Collection({ dimensions: dataset.dim, metric: dataset.metric, index: 'hnsw', m, efConstruction })
    const { dim, n } = dataset
    for (let from = 0; from < n; from += UPSERT_CHUNK) {
      const to = Math.min(n, from + UPSERT_CHUNK)
      const items = new Array(to - from)
      for (let i = from; i < to; i++) items[i - from] = { id: i, vector: dataset.base.subarray(i * dim, (i + 1) * dim) }
      await col.upsert(items)
    }
    await col.save(path.join(dir, `${collection}.vdx`))
    const buildSeconds = (performance.now() - started) / 1000
    log(`serve: vecdex collection built and saved in ${buildSeconds.toFixed(1)} s`)
    return { name, version: loaded.version, dir, cached: false, buildSeconds, collection: col }
  }

  const dir = path.join(cacheDir, 'serve', `${name}-${loaded.version}-${dataset.name}-${params.hash}-m${m}-efc${efConstruction}`)
  if (fs.existsSync(path.join(dir, `${name}.json`))) {
    log(`serve: ${name} index from the cache (${path.relative(process.cwd(), dir)})`)
    return { name, version: loaded.version, dir, cached: true, buildSeconds: 0 }
  }
  // Built beside its final place, then renamed: an interrupted build never looks cached.
  const tmp = `${dir}.tmp-${process.pid}`
  fs.rmSync(tmp, { recursive: true, force: true })
  fs.mkdirSync(tmp, { recursive: true })
  const manifest = { engine: name, version: loaded.version, name: collection, dataset: dataset.name, metric: dataset.metric, dim: dataset.dim, n: dataset.n, m, efConstruction }
  const lib = loaded.module
  try {
    if (name === 'hnswlib') {
      const spaces = { cosine: 'cosine', l2sq: 'l2', dot: 'ip' }
      const index = new lib.HierarchicalNSW(spaces[dataset.metric], dataset.dim)
      index.initIndex(dataset.n, m, efConstruction, 100)
      for (let i = 0; i < dataset.n; i++) index.addPoint(Array.from(dataset.base.subarray(i * dataset.dim, (i + 1) * dataset.dim)), i)
      index.writeIndexSync(path.join(tmp, 'hnswlib.bin'))
      manifest.file = 'hnswlib.bin'
    } else if (name === 'usearch') {
      const config = {
        dimensions: dataset.dim,
        metric: { cosine: 'ip', l2sq: 'l2sq', dot: 'ip' }[dataset.metric],
        quantization: 'f32',
        connectivity: m,
        expansion_add: efConstruction,
        expansion_search: 64,
        multi: false,
      }
      const index = new lib.Index(config)
      index.add(rowKeys(dataset.n), dataset.metric === 'cosine' ? normalisedRows(dataset.base, dataset.dim) : dataset.base, threads)
      index.save(path.join(tmp, 'usearch.bin'))
      manifest.file = 'usearch.bin'
      manifest.config = config
    } else if (name === 'lancedb') {
      const arrow = loadPeer('apache-arrow').module
      const { dim, n } = dataset
      const distanceType = { cosine: 'cosine', l2sq: 'l2', dot: 'dot' }[dataset.metric]
      const child = arrow.makeData({ type: new arrow.Float32(), length: n * dim, data: dataset.base })
      const listType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true))
      const vectors = arrow.makeVector(arrow.makeData({ type: listType, length: n, nullCount: 0, child }))
      const ids = arrow.makeVector(Int32Array.from({ length: n }, (_, i) => i))
      const db = await lib.connect(path.join(tmp, 'lancedb'))
      const table = await db.createTable('vectors', new arrow.Table({ id: ids, vector: vectors }))
      await table.createIndex('vector', { config: lib.Index.hnswSq({ distanceType, m, efConstruction, numPartitions: 1 }) })
      table.close()
      db.close()
      manifest.file = 'lancedb'
      manifest.table = 'vectors'
    }
    fs.writeFileSync(path.join(tmp, `${name}.json`), `${JSON.stringify(manifest, null, 2)}\n`)
    fs.rmSync(dir, { recursive: true, force: true })
    fs.renameSync(tmp, dir)
  } catch (error) {
    fs.rmSync(tmp, { recursive: true, force: true })
    throw error
  }
  const buildSeconds = (performance.now() - started) / 1000
  log(`serve: ${name} index built in ${buildSeconds.toFixed(1)} s (cached in ${path.relative(process.cwd(), dir)})`)
  return { name, version: loaded.version, dir, cached: false, buildSeconds }
}

/** A short key of the dataset's contents, for the peers' index cache. */
export function datasetKey(dataset) {
  return crypto.createHash('sha256').update(datasetHash(dataset)).digest('hex').slice(0, 12)
}
