// Suite `persist`: save, load and view of a built HNSW index, vecdex against usearch (and
// hnswlib-node) in the same process, on the same data and graph parameters. Each engine builds
// once, then saves and loads `--runs` times (the file is in the page cache after the first
// save, for every engine alike); the figures are medians. A loaded index must answer a sample
// of queries as the built one did, so a fast but broken load cannot pass. Every call is the
// blocking one (usearch and hnswlib have no other); vecdex's async twins run the same code on its
// task threads.

import fs from 'node:fs'
import path from 'node:path'
import { loadPeer, loadVecdex, makeTempDir, normalisedRows, removeTempDir, rowKeys } from '../adapters/common.mjs'
import { collectGarbage, fmt, fmtRatio, median, table } from '../report.mjs'

export const name = 'persist'
export const defaultDataset = 'clustered-1m-128'
export const summary = 'HNSW save / load / view (mmap) seconds and file size, vecdex vs usearch and hnswlib'

const DEFAULT_RUNS = 3
const CHECK_QUERIES = 100

/** Seconds `fn` takes (awaited). */
async function seconds(fn) {
  const start = process.hrtime.bigint()
  const value = await fn()
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, value }
}

/** Keys of the first CHECK_QUERIES queries, as arrays of numbers. */
const sameAnswers = (a, b) => a.every((row, i) => row.length === b[i].length && row.every((key, j) => key === b[i][j]))

/**
 * One engine: `build()`, `save(file)`, `load(file)` → searchable handle, optional `view(file)`,
 * `search(handle, query)` → keys, `release(handle)`.
 */
function engines(dataset, { m, efConstruction, threads }) {
  const cosine = dataset.metric === 'cosine'
  const base = cosine ? normalisedRows(dataset.base, dataset.dim) : dataset.base
  return [
    {
      name: 'vecdex',
      async init() {
        const loaded = await loadVecdex()
        if (loaded.error) return loaded.error
        this.module = loaded.module
        this.version = loaded.version
        return true
      },
      async build() {
        const index = new this.module.HnswIndex({ dimensions: dataset.dim, metric: dataset.metric, m, efConstruction })
        await index.add(rowKeys(dataset.n), dataset.base)
        return index
      },
      calls: 'index.saveSync(path) · HnswIndex.loadSync(path) · HnswIndex.viewSync(path)',
      save: (index, file) => index.saveSync(file),
      load(file) {
        return this.module.HnswIndex.loadSync(file)
      },
      view(file) {
        const { HnswIndex } = this.module
        return typeof HnswIndex.viewSync === 'function' ? HnswIndex.viewSync(file) : undefined
      },
      search: (index, query) => Array.from(index.searchSync(query, { k: 10, efSearch: 64 }).keys, Number),
      release: (index) => index.close(),
    },
    {
      name: 'usearch',
      async init() {
        const loaded = loadPeer('usearch')
        if (loaded.error) return loaded.error
        this.module = loaded.module
        this.version = loaded.version
        return true
      },
      config: { dimensions: dataset.dim, metric: cosine ? 'ip' : dataset.metric === 'dot' ? 'ip' : 'l2sq', connectivity: m, expansion_add: efConstruction, expansion_search: 64, multi: false },
      async build() {
        const index = new this.module.Index(this.config)
        index.add(rowKeys(dataset.n), base, threads)
        return index
      },
      calls: 'Index.save(path) · new Index(config).load(path) · new Index(config).view(path)',
      save: (index, file) => index.save(file),
      load(file) {
        const index = new this.module.Index(this.config)
        index.load(file)
        return index
      },
      view(file) {
        const index = new this.module.Index(this.config)
        index.view(file)
        return index
      },
      search: (index, query) => Array.from(index.search(query, 10, 1).keys, Number),
      release: () => {},
    },
    {
      name: 'hnswlib',
      async init() {
        const loaded = loadPeer('hnswlib-node')
        if (loaded.error) return loaded.error
        this.module = loaded.module
        this.version = loaded.version
        return true
      },
      space: dataset.metric === 'l2sq' ? 'l2' : 'ip',
      async build() {
        const index = new this.module.HierarchicalNSW(this.space, dataset.dim)
        index.initIndex({ maxElements: dataset.n, m, efConstruction, randomSeed: 100 })
        for (let i = 0; i < dataset.n; i++) index.addPoint(Array.from(base.subarray(i * dataset.dim, (i + 1) * dataset.dim)), i)
        index.setEf(64)
        return index
      },
      calls: 'writeIndexSync(path) · readIndexSync(path) (single-threaded build)',
      save: (index, file) => index.writeIndexSync(file),
      load(file) {
        const index = new this.module.HierarchicalNSW(this.space, dataset.dim)
        index.readIndexSync(file)
        index.setEf(64)
        return index
      },
      search: (index, query) => Array.from(index.searchKnn(Array.from(query), 10).neighbors, Number),
      release: () => {},
    },
  ]
}

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { threads, log, peers } = ctx
  const runs = ctx.runs ?? DEFAULT_RUNS
  const m = ctx.m ?? 16
  const efConstruction = ctx.efConstruction ?? 64
  const dataset = ctx.load({ queries: CHECK_QUERIES })
  const { n, dim } = dataset
  log(`persist: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}, m ${m}, efConstruction ${efConstruction}, ${runs} runs, ${threads} threads`)
  const queries = Array.from({ length: Math.min(CHECK_QUERIES, dataset.q) }, (_, i) => {
    const q = dataset.queries.slice(i * dim, (i + 1) * dim)
    return dataset.metric === 'cosine' ? normalisedRows(q, dim) : q
  })
  const wanted = peers === 'all' ? null : new Set(['vecdex', ...peers.split(',')])
  const results = []
  const dir = makeTempDir('persist')
  try {
    for (const engine of engines(dataset, { m, efConstruction, threads })) {
      if (wanted && !wanted.has(engine.name)) continue
      const ready = await engine.init()
      if (ready !== true) {
        log(`${engine.name}: skipped — ${ready}`)
        results.push({ name: engine.name, skipped: ready })
        continue
      }
      try {
        collectGarbage()
        log(`${engine.name}: building…`)
        const built = await seconds(() => engine.build())
        const index = built.value
        const answers = queries.map((q) => engine.search(index, q))
        const file = path.join(dir, `${engine.name}.index`)
        const save = []
        const load = []
        const view = []
        let loadedSame = true
        let viewedSame = null
        for (let r = 0; r < runs; r++) {
          fs.rmSync(file, { force: true })
          save.push((await seconds(() => engine.save(index, file))).seconds)
          collectGarbage()
          const loaded = await seconds(() => engine.load(file))
          load.push(loaded.seconds)
          loadedSame &&= sameAnswers(queries.map((q) => engine.search(loaded.value, q)), answers)
          engine.release(loaded.value)
          collectGarbage()
          if (engine.view) {
            const viewed = await seconds(() => engine.view(file))
            if (viewed.value !== undefined) {
              view.push(viewed.seconds)
              viewedSame = (viewedSame ?? true) && sameAnswers(queries.map((q) => engine.search(viewed.value, q)), answers)
              engine.release(viewed.value)
            }
          }
          log(`${engine.name}: run ${r + 1}: save ${fmt(save.at(-1))} s, load ${fmt(load.at(-1))} s${view.length ? `, view ${fmt(view.at(-1))} s` : ''}`)
        }
        results.push({
          name: engine.name,
          version: engine.version,
          calls: engine.calls,
          buildSeconds: built.seconds,
          fileBytes: fs.statSync(file).size,
          saveSeconds: median(save),
          loadSeconds: median(load),
          viewSeconds: view.length ? median(view) : null,
          save,
          load,
          view,
          loadedSame,
          viewedSame,
        })
        engine.release(index)
      } catch (error) {
        log(`${engine.name}: failed — ${error?.stack ?? error}`)
        results.push({ name: engine.name, error: String(error?.message ?? error) })
      }
    }
  } finally {
    removeTempDir(dir)
  }

  const vecdex = results.find((r) => r.name === 'vecdex' && r.loadSeconds)
  const md = []
  md.push(`## persist — ${dataset.name} (${dataset.metric}, n ${fmt(n)}, dim ${dim}, HNSW m ${m}, efConstruction ${efConstruction}; medians of ${runs} runs)`)
  md.push('')
  md.push(
    table(
      ['engine', 'calls', 'build s', 'file MiB', 'save s', 'load s', 'view s', 'load vs vecdex', 'answers after load / view'],
      results.map((r) =>
        r.loadSeconds
          ? [r.name, r.calls, fmt(r.buildSeconds), fmt(r.fileBytes / 2 ** 20), fmt(r.saveSeconds), fmt(r.loadSeconds), r.viewSeconds === null ? '—' : fmt(r.viewSeconds), vecdex ? fmtRatio(r.loadSeconds / vecdex.loadSeconds) : '', `${r.loadedSame ? 'same' : 'DIFFERENT'} / ${r.viewedSame === null ? '—' : r.viewedSame ? 'same' : 'DIFFERENT'}`]
          : [r.name, r.skipped ? `skipped — ${r.skipped}` : `failed — ${r.error}`, '', '', '', '', '', '', ''],
      ),
    ),
  )
  md.push('')
  md.push(`"load vs vecdex" is the engine's load time over vecdex's (above 1× means vecdex loads faster). "answers": the ${queries.length} check queries' top-10 after loading (or viewing) equal those of the built index. vecdex's load checks every checksum and every cross-field invariant of the file before using it.`)
  return {
    datasetName: dataset.name,
    markdown: md.join('\n'),
    json: { dataset: { name: dataset.name, metric: dataset.metric, n, dim }, m, efConstruction, runs, threads, engines: results },
  }
}
