// One configuration of the `memory` suite, in a process of its own so that nothing another
// configuration allocated or freed blurs its resident-set figures:
//   node --expose-gc benchmark/memory/child.mjs '<json: { baseFile, n, dim, metric, config }>'
// Reads the base rows (written by the suite: nothing else of the dataset is loaded here, so no
// garbage of a dataset loader is freed during the build) and prepares the input (keys, items)
// first, then measures the process's
// resident set (RSS) after a garbage collection, builds the index, collects again and measures
// again; prints one JSON line: the growth, stats()' parts and the build time.

import { loadVecdex, rowKeys } from '../adapters/common.mjs'
import fs from 'node:fs'

const { baseFile, n, dim, metric, config } = JSON.parse(process.argv[2])

/**
 * Resident bytes once they settle. V8 frees the backing stores of collected ArrayBuffers (the
 * dataset file read whole, then subset) on a background thread after the collection returns,
 * so a reading right after gc() can still hold them and make a later build look smaller.
 * Collects and reads every 200 ms until two readings differ by under 1 MiB (at most 5 s).
 */
async function residentBytes() {
  let last = Infinity
  for (let tries = 0; tries < 25; tries++) {
    // A last-resort collection also gives freed heap pages back to the system, as V8's memory
    // reducer would only some seconds later (during a long build, shrinking its growth).
    globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const now = process.memoryUsage.rss()
    if (Math.abs(now - last) < 2 ** 20) return now
    last = now
  }
  return last
}

const { module: vecdex, error } = await loadVecdex()
if (error) throw new Error(error)
const bytes = fs.readFileSync(baseFile)
const base = new Float32Array(bytes.buffer, bytes.byteOffset, n * dim)
const options = { dimensions: dim, metric, ...config.options }
let items = null
let keys = null
if (config.kind === 'collection') {
  items = Array.from({ length: n }, (_, i) => ({ id: `item-${i}`, vector: base.subarray(i * dim, (i + 1) * dim) }))
} else keys = rowKeys(n)

const before = await residentBytes()
const started = performance.now()
let index
if (config.kind === 'flat') {
  index = new vecdex.FlatIndex(options)
  await index.add(keys, base)
} else if (config.kind === 'hnsw') {
  index = new vecdex.HnswIndex(options)
  await index.add(keys, base)
} else {
  index = new vecdex.Collection(options)
  for (let i = 0; i < n; i += 10_000) await index.upsert(items.slice(i, i + 10_000))
}
const buildSeconds = (performance.now() - started) / 1000
const after = await residentBytes()
const stats = index.stats()
const parts = config.kind === 'collection' ? { ...stats.index, itemIds: stats.idBytes, texts: stats.textBytes, metadata: stats.metadataBytes, columns: stats.columnBytes } : stats.memory
process.stdout.write(`${JSON.stringify({ n, dim, metric, buildSeconds, rssGrowth: after - before, memoryBytes: stats.memoryBytes, parts, trained: index.isTrained ?? true })}\n`)
index.close()
