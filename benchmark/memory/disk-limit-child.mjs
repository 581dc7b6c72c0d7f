// A child of the `disk-limit` suite (benchmark/suites/disk-limit.mjs), one mode per process:
//   build  exact neighbours of the queries, then the HNSW index with its rows on disk, saved
//   serve  inside a memory cgroup: load it, search every query cold and warm
//   f32    inside a memory cgroup: add the f32 rows to a FlatIndex until the limit stops it
// Prints JSON lines; the last one is the result.

import fs from 'node:fs'
import { cgroupFigures, dropFromCache, enterCgroup, residentParts } from './process.mjs'
import { loadVecdex } from '../adapters/common.mjs'

const args = JSON.parse(process.argv[2])
const { mode, n, dim, q } = args
const BATCH = 100_000
const { module: vecdex, error } = await loadVecdex()
if (error) throw new Error(error)

/** Rows `from ..< to` of the base file (read, not mapped: nothing of it stays resident). */
function rowsOf(fd, from, to, buffer) {
  const bytes = (to - from) * dim * 4
  fs.readSync(fd, buffer, 0, bytes, from * dim * 4)
  return new Float32Array(buffer.buffer, buffer.byteOffset, (to - from) * dim)
}

function batches(work) {
  const fd = fs.openSync(args.baseFile, 'r')
  const buffer = Buffer.alloc(BATCH * dim * 4)
  try {
    for (let from = 0; from < n; from += BATCH) {
      const to = Math.min(n, from + BATCH)
      work(Array.from({ length: to - from }, (_, i) => from + i), rowsOf(fd, from, to, buffer), to)
    }
  } finally {
    fs.closeSync(fd)
  }
}

function readQueries() {
  const bytes = fs.readFileSync(args.queriesFile)
  return new Float32Array(bytes.buffer, bytes.byteOffset, q * dim)
}

/** Enters a memory cgroup of `limit` bytes, or throws why it cannot. */
function limitedTo(limit) {
  const cgroup = enterCgroup(limit)
  if (cgroup.skipped) throw new Error(cgroup.skipped)
  return cgroup
}

if (mode === 'build') {
  const queries = readQueries()
  {
    const exact = new vecdex.FlatIndex({ dimensions: dim, metric: args.metric })
    batches((keys, rows) => exact.addSync(keys, rows))
    const truth = exact.searchBatchSync(queries, { k: 10 }).keys
    fs.writeFileSync(args.truthFile, new Uint8Array(truth.buffer, truth.byteOffset, truth.byteLength))
    exact.close()
  }
  globalThis.gc?.()
  const started = performance.now()
  const index = new vecdex.HnswIndex({ ...args.options, fullVectors: { path: args.rowsFile } })
  batches((keys, rows, to) => {
    index.addSync(keys, rows)
    process.stderr.write(`built ${to} of ${n} (${((performance.now() - started) / 1000).toFixed(0)} s)\n`)
  })
  const buildSeconds = (performance.now() - started) / 1000
  index.saveSync(args.indexFile)
  const stats = index.stats()
  index.close()
  process.stdout.write(`${JSON.stringify({ buildSeconds, memoryBytes: stats.memoryBytes, parts: stats.memory, rowFileBytes: fs.statSync(args.rowsFile).size })}\n`)
} else if (mode === 'serve') {
  const queries = readQueries()
  const truthBytes = fs.readFileSync(args.truthFile)
  const truth = new BigUint64Array(truthBytes.buffer, truthBytes.byteOffset, q * 10)
  const { group, leave } = limitedTo(args.limit)
  try {
    const started = performance.now()
    const index = vecdex.HnswIndex.loadSync(args.indexFile)
    const loadSeconds = (performance.now() - started) / 1000
    const pass = (efSearch) => {
      let found = 0
      const begun = performance.now()
      for (let i = 0; i < q; i++) {
        const hits = index.searchSync(queries.subarray(i * dim, (i + 1) * dim), { k: 10, efSearch }).keys
        const want = truth.subarray(i * 10, i * 10 + 10)
        for (const key of hits) if (want.includes(key)) found++
      }
      return { qps: q / ((performance.now() - begun) / 1000), recall: found / (q * 10) }
    }
    const passes = []
    for (const efSearch of args.efSearch) {
      dropFromCache(args.rowsFile)
      const cold = pass(efSearch)
      const warm = pass(efSearch)
      passes.push({ efSearch, cold, warm })
      process.stderr.write(`efSearch ${efSearch}: recall ${warm.recall.toFixed(3)}, QPS cold ${cold.qps.toFixed(0)}, warm ${warm.qps.toFixed(0)}\n`)
    }
    const resident = residentParts()
    const { peak, failcnt } = cgroupFigures(group)
    index.close()
    process.stdout.write(`${JSON.stringify({ loadSeconds, passes, peak, failcnt, ...resident })}\n`)
  } finally {
    leave()
  }
} else if (mode === 'f32') {
  // The kernel kills this process when the cgroup cannot reclaim enough: the parent sees SIGKILL.
  limitedTo(args.limit)
  const index = new vecdex.FlatIndex({ dimensions: dim, metric: args.metric })
  try {
    batches((keys, rows, to) => {
      index.addSync(keys, rows)
      process.stdout.write(`${JSON.stringify({ added: to })}\n`)
    })
    process.stdout.write(`${JSON.stringify({ added: n, fitted: true })}\n`)
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: e.code ?? String(e) })}\n`)
  }
}
