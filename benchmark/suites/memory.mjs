// Suite `memory`: what an index holds in memory, by part, against what the process grew by.
// Each configuration (flat and HNSW indexes, f32 and compressed, and a collection) is built in a
// child process of its own (benchmark/memory/child.mjs): the dataset is loaded and the input
// prepared first, then the resident set (RSS, after garbage collection) is read before and
// after the build. The table gives bytes per vector by part from stats() (`memory` of an index,
// `index` and the item parts of a collection), their sum, the RSS growth, and the sum over the
// growth: how much of what the process took the figures account for.

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeTempDir, removeTempDir } from '../adapters/common.mjs'
import { fmt, table } from '../report.mjs'

export const name = 'memory'
export const defaultDataset = 'glove-100k'
export const summary = 'bytes per vector by part (vectors, codes, graph, ids) from stats() against the process RSS growth around the build, each configuration in its own process'

/** Views also run in a memory cgroup whose limit holds this fraction of their file (see child.mjs). */
const VIEW_LIMIT_FRACTION = 0.25

/** Disk-mode indexes: searched at this efSearch (and in memory at the same). Their run under a
 * memory limit is the disk-limit suite's: a limit entered by a process that already freed heap
 * (this child, after its unlimited passes) would not charge the pages the allocator reuses. */
const DISK_EF_SEARCH = 128

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'memory', 'child.mjs')

/** The configurations, as `{ label, kind, options }` (HNSW: the graph parameters of the run). */
function configurations({ m, efConstruction }, dim) {
  const hnsw = (label, compression = {}) => ({ label, kind: 'hnsw', options: { m, efConstruction, ...compression } })
  return [
    { label: 'FlatIndex f32', kind: 'flat', options: {} },
    { label: "FlatIndex sq8", kind: 'flat', options: { quantization: 'sq8' } },
    hnsw('HnswIndex f32'),
    hnsw('HnswIndex sq8', { quantization: 'sq8' }),
    hnsw('HnswIndex sq4', { quantization: 'sq4' }),
    hnsw('HnswIndex binary', { quantization: 'binary' }),
    hnsw(`HnswIndex pq (m ${Math.max(1, Math.floor(dim / 4))})`, { quantization: { type: 'pq', subspaces: Math.max(1, Math.floor(dim / 4)) } }),
    { label: 'Collection (hnsw, sq8; string ids)', kind: 'collection', options: { index: 'hnsw', m, efConstruction, quantization: 'sq8' } },
    { label: 'HnswIndex f32, view of its file', kind: 'hnsw-view', options: { m, efConstruction }, limitFraction: VIEW_LIMIT_FRACTION },
    { label: 'HnswIndex sq8, view of its file', kind: 'hnsw-view', options: { m, efConstruction, quantization: 'sq8' }, limitFraction: VIEW_LIMIT_FRACTION },
    { label: 'HnswIndex rabitq 4-bit, view of its file', kind: 'hnsw-view', options: { m, efConstruction, quantization: { type: 'rabitq', bits: 4 } }, limitFraction: VIEW_LIMIT_FRACTION },
    { label: 'HnswIndex sq8, full vectors on disk', kind: 'hnsw-disk', options: { m, efConstruction, quantization: 'sq8' }, efSearch: DISK_EF_SEARCH },
    { label: 'HnswIndex rabitq 1-bit, full vectors on disk', kind: 'hnsw-disk', options: { m, efConstruction, quantization: 'rabitq' }, efSearch: DISK_EF_SEARCH },
    { label: 'HnswIndex rabitq 4-bit, full vectors on disk', kind: 'hnsw-disk', options: { m, efConstruction, quantization: { type: 'rabitq', bits: 4 } }, efSearch: DISK_EF_SEARCH },
  ]
}

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { log } = ctx
  const m = ctx.m ?? 16
  const efConstruction = ctx.efConstruction ?? 128
  const probe = ctx.load()
  const { n, dim, metric } = probe
  const q = probe.queries.length / dim
  log(`memory: ${probe.name} (${metric}), n ${n}, dim ${dim}; HNSW m ${m}, efConstruction ${efConstruction}; one process per configuration`)
  const results = []
  const dir = makeTempDir('memory')
  const baseFile = path.join(dir, 'base.f32')
  fs.writeFileSync(baseFile, new Uint8Array(probe.base.buffer, probe.base.byteOffset, n * dim * 4))
  const queriesFile = path.join(dir, 'queries.f32')
  fs.writeFileSync(queriesFile, new Uint8Array(probe.queries.buffer, probe.queries.byteOffset, q * dim * 4))
  try {
    for (const config of configurations({ m, efConstruction }, dim)) {
      try {
        const output = execFileSync(process.execPath, ['--expose-gc', CHILD, JSON.stringify({ baseFile, n, dim, metric, config, queriesFile, q })], {
          encoding: 'utf8',
          maxBuffer: 16 * 2 ** 20,
          stdio: ['ignore', 'pipe', 'inherit'],
        })
        const figures = JSON.parse(output.trim().split('\n').at(-1))
        results.push({ ...config, ...figures })
        if (config.kind === 'hnsw-disk') log(`memory: ${config.label}: resident ${fmt(figures.rssGrowth / n)} B/vector (heap ${fmt(figures.anonGrowth / n)}, mapped rows ${fmt(figures.fileGrowth / n)}), recall ${fmt(figures.warm.recall)}, QPS cold ${fmt(figures.cold.qps)}, warm ${fmt(figures.warm.qps)}, in memory ${fmt(figures.inMemory.qps)} (recall ${fmt(figures.inMemory.recall)})`)
        else if (config.kind === 'hnsw-view') log(`memory: ${config.label}: resident ${fmt(figures.rssGrowth / n)} B/vector after ${q} queries (file pages ${fmt(figures.fileGrowth / n)}), QPS cold ${fmt(figures.coldQps)}, warm ${fmt(figures.warmQps)}, loaded ${fmt(figures.loadedQps)}`)
        else log(`memory: ${config.label}: stats ${fmt(figures.memoryBytes / n)} B/vector, RSS growth ${fmt(figures.rssGrowth / n)} B/vector, build ${fmt(figures.buildSeconds)} s`)
      } catch (error) {
        log(`memory: ${config.label}: failed — ${error?.message ?? error}`)
        results.push({ ...config, error: String(error?.message ?? error).split('\n')[0] })
      }
    }
  } finally {
    removeTempDir(dir)
  }

  const f32 = results.find((r) => r.label === 'HnswIndex f32' && r.rssGrowth)
  const views = results.filter((r) => r.kind === 'hnsw-view')
  const disks = results.filter((r) => r.kind === 'hnsw-disk')
  const built = results.filter((r) => r.kind !== 'hnsw-view' && r.kind !== 'hnsw-disk')
  const perVector = (bytes) => fmt(bytes / n)
  const md = []
  md.push(`## memory — ${probe.name} (${metric}, n ${fmt(n)}, dim ${dim}; HNSW m ${m}, efConstruction ${efConstruction})`)
  md.push('')
  md.push(
    table(
      ['configuration', 'vectors B/vec', 'codes B/vec', 'graph B/vec', 'ids B/vec', 'items B/vec', 'stats() sum B/vec', 'RSS growth B/vec', 'sum ÷ RSS growth', 'RSS ÷ HNSW f32'],
      built.map((r) => {
        if (r.error) return [r.label, `failed — ${r.error}`, '', '', '', '', '', '', '', '']
        const p = r.parts
        const items = (p.itemIds ?? 0) + (p.texts ?? 0) + (p.metadata ?? 0) + (p.columns ?? 0)
        return [r.label, perVector(p.vectors), perVector(p.codes), perVector(p.graph), perVector(p.ids), r.kind === 'collection' ? perVector(items) : '—', perVector(r.memoryBytes), perVector(r.rssGrowth), fmt(r.memoryBytes / r.rssGrowth), f32 ? fmt(r.rssGrowth / f32.rssGrowth) : '–']
      }),
    ),
  )
  md.push('')
  md.push(`Parts are allocated bytes from stats() (\`memory\` of an index; \`index\` plus the item ids, texts, metadata and columns of a collection), per vector. "RSS growth" is the process's resident set after the build minus before it (each after garbage collection), in a process of its own per configuration; it also holds allocator overhead and freed memory the allocator kept, which the parts do not count. Compressed indexes still keep their f32 rows in memory for rescoring ("vectors").`)
  md.push('')
  md.push(`### Views: the index read in place from its file`)
  md.push('')
  md.push(
    table(
      ['configuration', 'file B/vec', 'resident B/vec after the queries', 'of which file pages', 'resident ÷ HNSW f32 built', 'QPS cold pass', 'QPS warm', 'QPS loaded', 'warm ÷ loaded', 'cold ÷ loaded'],
      views.map((r) => {
        if (r.error) return [r.label, `failed — ${r.error}`, '', '', '', '', '', '', '', '']
        return [r.label, perVector(r.fileBytes), perVector(r.rssGrowth), perVector(r.fileGrowth), f32 ? fmt(r.rssGrowth / f32.rssGrowth) : '–', fmt(r.coldQps), fmt(r.warmQps), fmt(r.loadedQps), fmt(r.warmQps / r.loadedQps), r.evicted ? fmt(r.coldQps / r.loadedQps) : 'not evicted']
      }),
    ),
  )
  md.push('')
  const limitedRows = views.filter((r) => r.limited && !r.limited.skipped)
  if (limitedRows.length) {
    md.push('')
    md.push(
      table(
        ['view of', `memory limit (heap + ${VIEW_LIMIT_FRACTION} of the file + 16 MiB)`, 'limit B/vec', 'peak charged', 'QPS first pass', 'QPS second pass', 'second ÷ unlimited warm', 'second ÷ loaded'],
        limitedRows.map((r) => [r.label, `${fmt(r.limited.limit / 2 ** 20)} MiB`, perVector(r.limited.limit), `${fmt(r.limited.peak / 2 ** 20)} MiB`, fmt(r.limited.first.qps), fmt(r.limited.second.qps), fmt(r.limited.second.qps / r.warmQps), fmt(r.limited.second.qps / r.loadedQps)]),
      ),
    )
  } else if (views.some((r) => r.limited?.skipped)) md.push('', `Views under a memory limit: not measured (${views.find((r) => r.limited?.skipped).limited.skipped}).`)
  md.push('')
  md.push(`### Full vectors on disk (\`fullVectors: { path }\`)`)
  md.push('')
  md.push(
    table(
      ['configuration', 'heap B/vec (RssAnon)', 'mapped rows B/vec (RssFile)', 'resident B/vec', 'heap ÷ HNSW f32', 'resident ÷ HNSW f32', 'row file B/vec', 'recall@10', 'QPS cold', 'QPS warm', 'QPS in memory', 'warm ÷ in memory', 'cold ÷ in memory'],
      disks.map((r) => {
        if (r.error) return [r.label, `failed — ${r.error}`, ...Array(11).fill('')]
        const ratio = (x) => (f32 ? fmt(x / f32.rssGrowth) : '–')
        return [r.label, perVector(r.anonGrowth), perVector(r.fileGrowth), perVector(r.rssGrowth), ratio(r.anonGrowth), ratio(r.rssGrowth), perVector(r.rowFileBytes), fmt(r.warm.recall), fmt(r.cold.qps), fmt(r.warm.qps), fmt(r.inMemory.qps), fmt(r.warm.qps / r.inMemory.qps), r.evicted ? fmt(r.cold.qps / r.inMemory.qps) : 'not evicted']
      }),
    ),
  )
  md.push('')
  md.push(`Each: the index is built with its full vectors in a row file and saved, and the same configuration is built in memory and saved (neither measured); recall is against exact search. The disk index is then loaded (\`loadSync\`: graph, codes and keys into the heap; the row file's checksums read with pread, nothing of it mapped), the row file dropped from the page cache (posix_fadvise), and every query searched twice, one per call, k 10, efSearch ${DISK_EF_SEARCH} (cold, then warm). "Heap" is the RssAnon growth from before the load to after both passes, "mapped rows" the RssFile growth: the row pages the searches read, which stay mapped while memory allows but are page cache the kernel reclaims under pressure; "resident" is both, and "HNSW f32" the RSS growth of the f32 HNSW built above. "QPS in memory" is the in-memory file loaded, warm, same queries and efSearch. Under a memory limit: the disk-limit suite.`)
  md.push('')
  md.push(`Each view: the index is built and saved (not measured), then opened with \`HnswIndex.viewSync\` in the same process; the file's pages are dropped from the page cache (\`posix_fadvise(DONTNEED)\` through python3: no root needed, clean pages only), then every query is searched once (k 10, efSearch 64, one query per call: the "cold" pass, which reads from the file) and again (warm). "Resident" is the process's RSS growth from before the view was opened to after both passes (after garbage collection), "file pages" its RssFile part: the mapped vectors and links the searches touched. "QPS loaded" is the same file loaded into memory (\`HnswIndex.load\`), warm. A view keeps keys, codes and upper layers on the heap and reads layer 0 and the f32 rows from the mapping; it is read-only. Under a memory limit: the same process moves itself into a memory cgroup (v1, as root) whose limit is the view's heap (its stats() figure) plus ${VIEW_LIMIT_FRACTION} of the file plus 16 MiB, opens a new view, drops the file from the page cache and runs two passes again, each stopped after 15 s (QPS over the queries it did); what the process held before the move stays charged outside. "Peak charged" is the cgroup's max_usage_in_bytes.`)
  return {
    datasetName: probe.name,
    markdown: md.join('\n'),
    json: { dataset: { name: probe.name, metric, n, dim }, m, efConstruction, diskEfSearch: DISK_EF_SEARCH, configurations: results },
  }
}
