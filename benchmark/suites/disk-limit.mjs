// Suite `disk-limit`: an index too large for a memory limit, served inside it with its full
// vectors on disk. The base vectors (default: 3M × 384 generated Gaussian clusters, whose f32
// rows alone, 4.6 GB, exceed the 4 GiB limit) are written to a file; a child process outside
// any limit computes exact neighbours of the queries (FlatIndex) and builds an HNSW sq8 index
// with `fullVectors: { path }`, adding from the file in batches, and saves it. A second child
// moves itself into a memory cgroup (v1, as root) limited to `--memory-limit` (default 4 GiB),
// loads the index, drops the row file from the page cache and searches every query twice (cold,
// warm) at a few efSearch values: recall@10, QPS, and what the cgroup charged at its peak. A
// third child, in a cgroup of the same limit, loads the f32 rows into a FlatIndex batch by batch
// until the limit stops it: the proof that the uncompressed vectors do not fit.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeTempDir, removeTempDir } from '../adapters/common.mjs'
import { cgroupOf } from '../memory/process.mjs'
import { fmt, table } from '../report.mjs'

export const name = 'disk-limit'
export const defaultDataset = 'clustered-3m-384'
/** Not part of `--suite all`: building the default dataset takes most of an hour. */
export const inAll = false
export const summary = 'an HNSW sq8 index with full vectors on disk served inside a memory cgroup its f32 rows exceed (default 4 GiB): recall, cold and warm QPS, peak charged memory'

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'memory', 'disk-limit-child.mjs')
const DEFAULT_LIMIT = 4 * 2 ** 30
const EF_SEARCH = [64, 128, 256]
const QUERIES = 200

/** Removes the memory cgroup a killed child made for itself. */
function removeChildGroup(pid) {
  const group = cgroupOf(pid)
  try {
    if (group && fs.existsSync(group)) fs.rmdirSync(group)
  } catch {}
}

function child(args, log) {
  const result = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', CHILD, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'pipe'] })
  removeChildGroup(result.pid)
  for (const line of (result.stderr ?? '').split('\n')) if (line.trim()) log(`disk-limit: ${line}`)
  const lines = (result.stdout ?? '').trim().split('\n').filter(Boolean)
  return { status: result.status, signal: result.signal, last: lines.length ? JSON.parse(lines.at(-1)) : null, lines }
}

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { log } = ctx
  const limit = ctx.memoryLimit ?? DEFAULT_LIMIT
  const m = ctx.m ?? 16
  const efConstruction = ctx.efConstruction ?? 128
  const probe = ctx.load({ queries: ctx.queries ?? QUERIES })
  const { n, dim, metric } = probe
  const q = probe.queries.length / dim
  log(`disk-limit: ${probe.name} (${metric}), n ${fmt(n)}, dim ${dim}, f32 rows ${fmt((n * dim * 4) / 2 ** 30)} GiB; memory limit ${fmt(limit / 2 ** 30)} GiB; HNSW m ${m}, efConstruction ${efConstruction}, sq8`)
  const dir = makeTempDir('disk-limit')
  const files = {
    baseFile: path.join(dir, 'base.f32'),
    queriesFile: path.join(dir, 'queries.f32'),
    truthFile: path.join(dir, 'truth.u64'),
    rowsFile: path.join(dir, 'rows.vdr'),
    indexFile: path.join(dir, 'index.vdx'),
  }
  // Written in pieces of 256 MiB: a byte view of more than 4 GiB cannot be made.
  const fd = fs.openSync(files.baseFile, 'w')
  const total = n * dim * 4
  for (let at = 0; at < total; at += 2 ** 28) fs.writeSync(fd, new Uint8Array(probe.base.buffer, probe.base.byteOffset + at, Math.min(2 ** 28, total - at)))
  fs.closeSync(fd)
  fs.writeFileSync(files.queriesFile, new Uint8Array(probe.queries.buffer, probe.queries.byteOffset, q * dim * 4))
  const common = { ...files, n, dim, metric, q, options: { dimensions: dim, metric, m, efConstruction, quantization: 'sq8' } }
  try {
    log('disk-limit: building (no limit): exact neighbours, then the HNSW sq8 index with its rows on disk')
    const built = child({ ...common, mode: 'build' }, log)
    if (built.status !== 0 || !built.last) throw new Error(`the build failed (status ${built.status}, signal ${built.signal})`)
    log(`disk-limit: built in ${fmt(built.last.buildSeconds)} s; heap by stats() ${fmt(built.last.memoryBytes / 2 ** 20)} MiB, row file ${fmt(built.last.rowFileBytes / 2 ** 20)} MiB`)
    log(`disk-limit: serving inside a ${fmt(limit / 2 ** 30)} GiB cgroup`)
    const served = child({ ...common, mode: 'serve', limit, efSearch: EF_SEARCH }, log)
    if (served.status !== 0 || !served.last) throw new Error(`serving failed (status ${served.status}, signal ${served.signal})`)
    log(`disk-limit: the f32 rows in a FlatIndex inside the same limit`)
    const f32 = child({ ...common, mode: 'f32', limit }, log)
    const f32Rows = f32.lines.map((l) => JSON.parse(l)).filter((p) => p.added !== undefined).at(-1)?.added ?? 0
    const f32Outcome = f32.signal ? `killed by ${f32.signal} (the cgroup's out-of-memory killer) after adding ${fmt(f32Rows)} of ${fmt(n)} rows` : f32.last?.error ? `refused: ${f32.last.error} after ${fmt(f32Rows)} rows` : `all ${fmt(n)} rows fit (status ${f32.status})`
    log(`disk-limit: f32: ${f32Outcome}`)

    const s = served.last
    const md = []
    md.push(`## disk-limit — ${probe.name} (${metric}, n ${fmt(n)}, dim ${dim}; HNSW m ${m}, efConstruction ${efConstruction}, sq8, full vectors on disk)`)
    md.push('')
    md.push(`Memory limit: ${fmt(limit / 2 ** 30)} GiB (cgroup v1 \`memory.limit_in_bytes\`, the serving process moved in before loading). f32 rows of the dataset: ${fmt((n * dim * 4) / 2 ** 30)} GiB. Build (outside the limit): ${fmt(built.last.buildSeconds)} s; index heap by \`stats()\`: ${fmt(built.last.memoryBytes / 2 ** 20)} MiB (${fmt(built.last.memoryBytes / n)} B/vector: ${Object.entries(built.last.parts).map(([k, v]) => `${k} ${fmt(v / n)}`).join(', ')}); row file ${fmt(built.last.rowFileBytes / 2 ** 20)} MiB.`)
    md.push('')
    md.push(`Inside the limit: load ${fmt(s.loadSeconds)} s (checks every checksum of the row file with pread); peak charged ${fmt(s.peak / 2 ** 20)} MiB; limit hits (failcnt) ${fmt(s.failcnt)}; RSS after the passes ${fmt(s.rss / 2 ** 20)} MiB (RssAnon ${fmt(s.anon / 2 ** 20)}, RssFile ${fmt(s.file / 2 ** 20)}).`)
    md.push('')
    md.push(table(['efSearch', 'recall@10', 'QPS cold (row file dropped from the cache first)', 'QPS warm'], s.passes.map((p) => [p.efSearch, fmt(p.warm.recall), fmt(p.cold.qps), fmt(p.warm.qps)])))
    md.push('')
    md.push(`One query per call, k 10, ${q} queries, exact neighbours from a FlatIndex of the f32 rows (built outside the limit). The same f32 rows added to a FlatIndex in batches of 100,000 inside a ${fmt(limit / 2 ** 30)} GiB cgroup: ${f32Outcome}.`)
    return { datasetName: probe.name, markdown: md.join('\n'), json: { dataset: { name: probe.name, metric, n, dim }, limit, m, efConstruction, build: built.last, serve: s, f32: { outcome: f32Outcome, rows: f32Rows, signal: f32.signal, status: f32.status } } }
  } finally {
    removeTempDir(dir)
  }
}
