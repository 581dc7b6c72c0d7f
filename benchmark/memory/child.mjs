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
import { cgroupFigures, dropFromCache, enterCgroup, residentParts } from './process.mjs'

const { baseFile, n, dim, metric, config, queriesFile, q } = JSON.parse(process.argv[2])
/** The query rows of a view measurement (read by measureView). */
let queries

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

if (config.kind === 'hnsw-view') {
  await measureView()
  process.exit(0)
}
if (config.kind === 'hnsw-disk') {
  await measureDisk()
  process.exit(0)
}

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

/**
 * An HNSW index saved, then opened as a view (its vectors and links read in place from the
 * mapped file): the resident set it adds after a pass of every query, split into anonymous
 * memory (what the view copied to the heap: keys, codes, upper layers) and file pages mapped in
 * (what the searches touched), and the QPS of a first pass with the file dropped from the page
 * cache (cold), of a second pass (warm), and of the same file loaded into memory (warm).
 */
async function measureView() {
  const queryBytes = fs.readFileSync(queriesFile)
  queries = new Float32Array(queryBytes.buffer, queryBytes.byteOffset, q * dim)
  const file = `${baseFile}.${process.pid}.vdx`
  {
    const built = new vecdex.HnswIndex(options)
    await built.add(keys, base)
    await built.save(file)
    built.close()
  }
  const pass = (index) => {
    const started = performance.now()
    for (let i = 0; i < q; i++) index.searchSync(queries.subarray(i * dim, (i + 1) * dim), { k: 10 })
    return q / ((performance.now() - started) / 1000)
  }
  try {
    const before = await residentBytes()
    const partsBefore = residentParts()
    const view = vecdex.HnswIndex.viewSync(file)
    const opened = residentParts()
    // Root-free eviction of the file's clean pages (nothing maps them: the view dropped its
    // pages after checking the file).
    const evicted = dropFromCache(file)
    const cold = pass(view)
    const warm = pass(view)
    const after = await residentBytes()
    const partsAfter = residentParts()
    const stats = view.stats()
    view.close()
    const limited = config.limitFraction ? limitedPasses(file, config.limitFraction, stats.memoryBytes) : undefined
    const loaded = await vecdex.HnswIndex.load(file)
    pass(loaded)
    const loadedQps = pass(loaded)
    const loadedStats = loaded.stats()
    loaded.close()
    process.stdout.write(
      `${JSON.stringify({
        n,
        dim,
        metric,
        q,
        fileBytes: fs.statSync(file).size,
        rssGrowth: after - before,
        anonGrowth: partsAfter.anon - partsBefore.anon,
        fileGrowth: partsAfter.file - partsBefore.file,
        fileAtOpen: opened.file - partsBefore.file,
        evicted,
        coldQps: cold,
        warmQps: warm,
        loadedQps,
        memoryBytes: stats.memoryBytes,
        loadedMemoryBytes: loadedStats.memoryBytes,
        parts: stats.memory,
        limited,
      })}\n`,
    )
  } finally {
    fs.rmSync(file, { force: true })
  }
}

/**
 * The QPS of a new view with this process in a memory cgroup (v1, as root) whose limit is the
 * view's heap (`heapBytes`, its stats() figure) plus `fraction` of the file plus 16 MiB for
 * what opening and searching allocate: pages charged before the move stay outside, so the
 * limit bounds the file pages the searches may keep mapped; the kernel evicts the rest and
 * reads them again when needed. Each pass stops after PASS_SECONDS (QPS over what it did).
 * `{ skipped }` where such a cgroup cannot be made.
 */
function limitedPasses(file, fraction, heapBytes) {
  const PASS_SECONDS = 15
  const pass = (index) => {
    const started = performance.now()
    let done = 0
    while (done < q && performance.now() - started < PASS_SECONDS * 1000) {
      index.searchSync(queries.subarray(done * dim, (done + 1) * dim), { k: 10 })
      done++
    }
    return { qps: done / ((performance.now() - started) / 1000), queries: done }
  }
  const limit = heapBytes + Math.round(fraction * fs.statSync(file).size) + 16 * 2 ** 20
  const cgroup = enterCgroup(limit)
  if (cgroup.skipped) return { skipped: cgroup.skipped }
  try {
    const view = vecdex.HnswIndex.viewSync(file)
    dropFromCache(file)
    const first = pass(view)
    const second = pass(view)
    const { peak, failcnt } = cgroupFigures(cgroup.group)
    view.close()
    return { limit, fraction, first, second, peak, failcnt }
  } finally {
    cgroup.leave()
  }
}

/**
 * An HNSW index whose full vectors are on disk (`fullVectors: { path }`), against the same
 * configuration with them in memory: both built and saved first (not measured), with recall
 * against exact search. The disk index is loaded (graph, codes and keys into the heap; its row
 * file checked with pread, nothing mapped), its row file dropped from the page cache, and every
 * query searched twice (cold, warm), one query per call at `config.efSearch`: the resident set
 * it added, split into anonymous memory and mapped file pages (the rows the searches read).
 * Then the in-memory one, loaded, warm.
 */
async function measureDisk() {
  const queryBytes = fs.readFileSync(queriesFile)
  queries = new Float32Array(queryBytes.buffer, queryBytes.byteOffset, q * dim)
  const ef = config.efSearch
  const rowsFile = `${baseFile}.${process.pid}.vdr`
  const file = `${baseFile}.${process.pid}-disk.vdx`
  const memoryFile = `${baseFile}.${process.pid}-memory.vdx`
  let truth
  {
    const exact = new vecdex.FlatIndex({ dimensions: dim, metric })
    await exact.add(keys, base)
    truth = exact.searchBatchSync(queries, { k: 10 }).keys
    exact.close()
  }
  const pass = (index) => {
    let found = 0
    const started = performance.now()
    for (let i = 0; i < q; i++) {
      const hits = index.searchSync(queries.subarray(i * dim, (i + 1) * dim), { k: 10, efSearch: ef }).keys
      const want = truth.subarray(i * 10, i * 10 + 10)
      for (const key of hits) if (want.includes(key)) found++
    }
    return { qps: q / ((performance.now() - started) / 1000), recall: found / (q * 10) }
  }
  try {
    let buildSeconds
    {
      const started = performance.now()
      const built = new vecdex.HnswIndex({ ...options, fullVectors: { path: rowsFile } })
      await built.add(keys, base)
      buildSeconds = (performance.now() - started) / 1000
      await built.save(file)
      built.close()
    }
    {
      const built = new vecdex.HnswIndex(options)
      await built.add(keys, base)
      await built.save(memoryFile)
      built.close()
    }
    const before = await residentBytes()
    const partsBefore = residentParts()
    const index = vecdex.HnswIndex.loadSync(file)
    const opened = residentParts()
    const evicted = dropFromCache(rowsFile)
    const cold = pass(index)
    const warm = pass(index)
    const after = await residentBytes()
    const partsAfter = residentParts()
    const stats = index.stats()
    index.close()
    const loaded = vecdex.HnswIndex.loadSync(memoryFile)
    pass(loaded)
    const inMemory = pass(loaded)
    const memoryStats = loaded.stats()
    loaded.close()
    process.stdout.write(
      `${JSON.stringify({
        n,
        dim,
        metric,
        q,
        efSearch: ef,
        buildSeconds,
        rowFileBytes: fs.statSync(rowsFile).size,
        rssGrowth: after - before,
        anonGrowth: partsAfter.anon - partsBefore.anon,
        fileGrowth: partsAfter.file - partsBefore.file,
        fileAtOpen: opened.file - partsBefore.file,
        evicted,
        cold,
        warm,
        inMemory,
        memoryBytes: stats.memoryBytes,
        inMemoryBytes: memoryStats.memoryBytes,
        parts: stats.memory,
      })}\n`,
    )
  } finally {
    for (const f of [rowsFile, file, memoryFile]) fs.rmSync(f, { force: true })
  }
}
