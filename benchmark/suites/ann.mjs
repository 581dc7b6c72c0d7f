// Suite `ann`: approximate nearest-neighbour search with HNSW graph indexes. Every engine builds
// with the same m, efConstruction and metric (build time on --threads threads where the engine
// can build in parallel, index memory); then an efSearch sweep measures, at each ef, recall@k
// against the exact ground truth and QPS in two modes: one query at a time on one thread, and
// the whole query set as a batch on --threads threads. At each ef the engines take turns run by
// run (in a rotating order), so a drift in the machine's speed hits every engine alike and the
// ratios come from the same minutes. QPS at fixed recall is interpolated from the sweep.

import { readyAnnAdapters } from '../adapters/ann/index.mjs'
import { groundTruth, recallAtK, toRows } from '../groundtruth.mjs'
import { collectGarbage, fmt, fmtBytes, fmtRatio, median, table, timeIt } from '../report.mjs'

export const name = 'ann'
export const defaultDataset = 'glove-100k'
export const summary = 'HNSW approximate search at equal m/efConstruction: build, memory, recall@k–QPS sweep over efSearch (1 thread and batch), QPS at fixed recall'

export const DEFAULT_EF = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
export const DEFAULT_M = 16
export const DEFAULT_EF_CONSTRUCTION = 128
export const DEFAULT_RUNS = 3
/** Recall levels of the "QPS at fixed recall" tables. */
export const TARGETS = [0.9, 0.95, 0.98, 0.99]
/** An engine's sweep ends at the first ef whose recall reaches this… */
const STOP_RECALL = 0.999
/** …or whose 1-thread QPS falls below this… */
const MIN_QPS = 100
/** …or once its timed searches have taken this long in total. */
const ENGINE_BUDGET_SECONDS = 150
/** Untimed queries each engine runs (1 thread and batch) after its build, before the sweep. */
const WARMUP_QUERIES = 200
/** In the 1-thread mode the engines take turns every CHUNK queries (finer than whole runs). */
const CHUNK = 100

/** Row numbers per query from any AnnResults shape (see adapters/ann/index.mjs). */
function rowsOf(result) {
  if (!Array.isArray(result)) return toRows(result)
  return result.map((r) => {
    if (ArrayBuffer.isView(r) || Array.isArray(r)) return Array.from(r, Number)
    const count = r.counts ? Number(r.counts[0]) : r.keys.length
    return Array.from(r.keys, Number).slice(0, count)
  })
}

/** `items` rotated left by `by`: run r starts with a different engine each time. */
function rotated(items, by) {
  const s = by % Math.max(items.length, 1)
  return [...items.slice(s), ...items.slice(0, s)]
}

/**
 * Resident set size in bytes, after full GCs when --expose-gc is on. V8 frees ArrayBuffer
 * memory on a background thread after a GC, so the GCs are spaced by short pauses.
 */
async function settledRss() {
  for (let i = 0; i < 3; i++) {
    collectGarbage()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return process.memoryUsage.rss()
}

/** fmtBytes with a sign ("+62.8 MiB", "−1.20 MiB"). */
function fmtSignedBytes(b) {
  if (b === undefined || b === null || Number.isNaN(b)) return '–'
  return `${b < 0 ? '−' : '+'}${fmtBytes(Math.abs(b))}`
}

/**
 * QPS at a recall level, from sweep points in ef order: log(QPS) interpolated linearly in recall
 * between the first two consecutive points that bracket `target`. If the first point already
 * reaches it, its QPS is a lower bound (`bound: 'atLeast'`); if no point does, undefined.
 * @param {{ ef: number, recall: number }[]} points
 * @param {number} target
 * @param {(p: any) => number | undefined} qpsOf
 */
export function qpsAtRecall(points, target, qpsOf) {
  const pts = points.filter((p) => Number.isFinite(p.recall) && Number.isFinite(qpsOf(p)) && qpsOf(p) > 0)
  if (pts.length === 0) return undefined
  if (pts[0].recall >= target) return { qps: qpsOf(pts[0]), bound: 'atLeast', efs: [pts[0].ef] }
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1]
    const b = pts[i]
    if (a.recall < target && b.recall >= target) {
      const t = (target - a.recall) / (b.recall - a.recall)
      const logQps = Math.log(qpsOf(a)) + t * (Math.log(qpsOf(b)) - Math.log(qpsOf(a)))
      return { qps: Math.exp(logQps), efs: [a.ef, b.ef], recalls: [a.recall, b.recall] }
    }
  }
  return undefined
}

const MODES = /** @type {const} */ ([
  { key: 'single', label: '1 thread (one query per call)', qps: (p) => p.singleQps },
  { key: 'batch', label: 'batch (all queries, --threads threads)', qps: (p) => p.batchQps },
])

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { k, threads, log } = ctx
  const m = ctx.m ?? DEFAULT_M
  const efConstruction = ctx.efConstruction ?? DEFAULT_EF_CONSTRUCTION
  const runs = ctx.runs ?? DEFAULT_RUNS
  const requestedEf = ctx.ef ?? DEFAULT_EF
  const efs = [...new Set(requestedEf)].filter((ef) => ef >= k).sort((a, b) => a - b)
  const droppedEf = requestedEf.filter((ef) => ef < k)
  if (droppedEf.length) log(`ann: efSearch values below k = ${k} dropped: ${droppedEf.join(', ')}`)
  if (efs.length === 0) throw new Error(`no efSearch value ≥ k = ${k} in ${requestedEf.join(',')}`)

  const dataset = ctx.load({ queries: ctx.queries ?? 1000 })
  const { n, q, dim } = dataset
  log(`ann: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}, ${q} queries, k ${k}; m ${m}, efConstruction ${efConstruction}, ${threads} threads; ef ${efs.join(',')}; ${runs} runs per point`)
  const gt = await groundTruth(dataset, k, { log })

  /** Every requested engine, in order: measured, skipped or failed. */
  const engines = []
  /** The engines that built, with their sweep state. */
  const live = []
  try {
    for await (const adapter of readyAnnAdapters(ctx.peers, engines, log, { threads, orders: ctx.orders })) {
      const record = { name: adapter.name, version: adapter.version, notes: adapter.notes, points: [] }
      engines.push(record)
      try {
        log(`${adapter.name}: building (m ${m}, efConstruction ${efConstruction})…`)
        const before = await settledRss()
        const built = await timeIt(() => adapter.build(dataset, { m, efConstruction, threads, log }))
        const after = await settledRss()
        record.build = { seconds: built.seconds, ...built.value }
        record.rssDeltaBytes = after - before
        record.memory = await adapter.memory()
        record.stats = adapter.stats?.()
        record.batchThreads = adapter.searchBatch ? adapter.batchThreads : undefined
        log(`${adapter.name}: built in ${fmt(built.seconds)} s on ${built.value.threads} thread(s); memory ${fmtBytes(record.memory?.bytes)}, RSS ${fmtSignedBytes(record.rssDeltaBytes)}`)
        // Warm-up: first calls, caches, lazily loaded index parts; not timed.
        await adapter.setEf(efs[0])
        const warmCount = Math.min(q, WARMUP_QUERIES)
        const warm = adapter.prepare(dataset.queries, warmCount)
        await adapter.searchSequential(warm, k, 0, warmCount)
        if (adapter.searchBatch) await adapter.searchBatch(warm, k)
        live.push({ adapter, record, prepared: adapter.prepare(dataset.queries, q), spent: 0, stopped: null })
      } catch (error) {
        log(`${adapter.name}: failed — ${error?.stack ?? error}`)
        record.error = String(error?.message ?? error)
        await closeQuietly(adapter, log)
      }
    }

    for (const ef of efs) {
      const active = live.filter((e) => !e.stopped)
      if (active.length === 0) break
      for (const e of active) {
        try {
          await e.adapter.setEf(ef)
          e.current = { ef, single: [], batch: [], singleRows: null, batchRows: null }
        } catch (error) {
          stop(e, `failed at ef ${ef}: ${error?.message ?? error}`, log)
        }
      }
      for (let r = 0; r < runs; r++) {
        // 1 thread: the engines take turns every CHUNK queries, in a rotating order.
        collectGarbage()
        const seconds = new Map(active.map((e) => [e, 0]))
        const rows = new Map(active.map((e) => [e, []]))
        for (let from = 0, c = 0; from < q; from += CHUNK, c++) {
          const to = Math.min(q, from + CHUNK)
          for (const e of rotated(active, r + c)) {
            if (e.stopped) continue
            try {
              const t = await timeIt(() => e.adapter.searchSequential(e.prepared, k, from, to))
              seconds.set(e, seconds.get(e) + t.seconds)
              if (r === 0) rows.get(e).push(...rowsOf(t.value))
            } catch (error) {
              log(`${e.adapter.name}: 1-thread search failed at ef ${ef} — ${error?.stack ?? error}`)
              stop(e, `1-thread search failed at ef ${ef}: ${error?.message ?? error}`, log)
            }
          }
        }
        for (const e of active) {
          if (e.stopped) continue
          e.current.single.push(seconds.get(e))
          e.spent += seconds.get(e)
          if (r === 0) e.current.singleRows = rows.get(e)
        }
        // Batch: the whole query set in one call per engine, in a rotating order.
        for (const e of rotated(active, r)) {
          if (e.stopped || !e.adapter.searchBatch) continue
          try {
            collectGarbage()
            const t = await timeIt(() => e.adapter.searchBatch(e.prepared, k))
            e.current.batch.push(t.seconds)
            e.spent += t.seconds
            if (r === 0) e.current.batchRows = rowsOf(t.value)
          } catch (error) {
            log(`${e.adapter.name}: batch search failed at ef ${ef} — ${error?.stack ?? error}`)
            stop(e, `batch search failed at ef ${ef}: ${error?.message ?? error}`, log)
          }
        }
      }
      for (const e of active) {
        if (e.stopped) continue
        const c = e.current
        const point = {
          ef,
          recall: recallAtK(c.singleRows, gt, k),
          singleQps: q / median(c.single),
          singleSeconds: c.single,
          batchRecall: c.batchRows ? recallAtK(c.batchRows, gt, k) : undefined,
          batchQps: c.batch.length ? q / median(c.batch) : undefined,
          batchSeconds: c.batch.length ? c.batch : undefined,
        }
        e.record.points.push(point)
        log(`${e.adapter.name} ef ${ef}: recall ${point.recall.toFixed(4)}, 1-thread ${fmt(point.singleQps)} QPS, batch ${fmt(point.batchQps)} QPS`)
        if (point.batchRecall !== undefined && Math.abs(point.batchRecall - point.recall) > 0.002) {
          log(`${e.adapter.name} ef ${ef}: note — batch recall ${point.batchRecall.toFixed(4)} differs from 1-thread recall`)
        }
        if (point.recall >= STOP_RECALL) stop(e, `recall ${point.recall.toFixed(4)} ≥ ${STOP_RECALL} at ef ${ef}`, log)
        else if (point.singleQps < MIN_QPS) stop(e, `1-thread QPS ${fmt(point.singleQps)} < ${MIN_QPS} at ef ${ef}`, log)
        else if (e.spent > ENGINE_BUDGET_SECONDS) stop(e, `search time budget (${ENGINE_BUDGET_SECONDS} s) used up after ef ${ef}`, log)
      }
    }
    for (const e of live) {
      e.record.stopReason = e.stopped ?? (e.record.points.length === efs.length ? `end of sweep (ef ${efs[efs.length - 1]})` : undefined)
    }
  } finally {
    for (const e of live) await closeQuietly(e.adapter, log)
  }

  // QPS at fixed recall, per engine and mode; vecdex against the best peer at each level.
  for (const e of engines) {
    if (!e.points?.length) continue
    e.fixedRecall = Object.fromEntries(MODES.map((mode) => [mode.key, Object.fromEntries(TARGETS.map((t) => [t, qpsAtRecall(e.points, t, mode.qps)]))]))
  }
  const measured = engines.filter((e) => e.points?.length)
  const vecdex = measured.find((e) => e.name === 'vecdex')
  const peers = measured.filter((e) => !e.name.startsWith('vecdex'))
  const ratios = Object.fromEntries(
    MODES.map((mode) => [
      mode.key,
      Object.fromEntries(
        TARGETS.map((t) => {
          const best = peers.map((p) => ({ name: p.name, at: p.fixedRecall[mode.key][t] })).filter((p) => p.at).sort((a, b) => b.at.qps - a.at.qps)[0]
          const mine = vecdex?.fixedRecall[mode.key][t]
          return [t, { bestPeer: best?.name, bestPeerQps: best?.at.qps, vecdexQps: mine?.qps, ratio: mine && best ? mine.qps / best.at.qps : undefined, vecdexBound: mine?.bound, peerBound: best?.at.bound }]
        }),
      ),
    ]),
  )
  const usearchBuild = measured.find((e) => e.name === 'usearch')?.build?.seconds

  return {
    datasetName: dataset.name,
    markdown: markdown({ dataset, k, m, efConstruction, threads, runs, efs, gt, engines, ratios, usearchBuild }),
    json: {
      dataset: { name: dataset.name, metric: dataset.metric, n, q, dim, source: dataset.source },
      k,
      params: { m, efConstruction, threads, runs, efSearch: efs, stopRecall: STOP_RECALL, minQps: MIN_QPS, engineBudgetSeconds: ENGINE_BUDGET_SECONDS, warmupQueries: WARMUP_QUERIES },
      targets: TARGETS,
      groundTruth: gt.source,
      engines,
      ratios,
    },
  }
}

function stop(e, reason, log) {
  if (e.stopped) return
  e.stopped = reason
  log(`${e.adapter.name}: sweep stops — ${reason}`)
}

async function closeQuietly(adapter, log) {
  try {
    await adapter.close()
  } catch (error) {
    log(`${adapter.name}: close failed — ${error?.message ?? error}`)
  }
}

/** "12,300", or "≥12,300" when the sweep started above the target recall. */
function fmtAt(at) {
  if (!at) return '—'
  return `${at.bound === 'atLeast' ? '≥' : ''}${fmt(at.qps)}`
}

/** "1.62× hnswlib"; ≥/≤ when one side is only a bound, ~ when both are. */
function fmtVersus(r) {
  if (!r || r.ratio === undefined) return '—'
  const mark = r.vecdexBound && r.peerBound ? '~' : r.vecdexBound ? '≥' : r.peerBound ? '≤' : ''
  return `${mark}${fmtRatio(r.ratio)} ${r.bestPeer}`
}

function markdown({ dataset, k, m, efConstruction, threads, runs, efs, gt, engines, ratios, usearchBuild }) {
  const { n, q, dim } = dataset
  const measured = engines.filter((e) => e.points?.length)
  const built = engines.filter((e) => e.build)
  const vecdex = measured.find((e) => e.name === 'vecdex')
  const md = []
  md.push(`## ann — ${dataset.name} (${dataset.metric}, n ${fmt(n)}, dim ${dim}, ${q} queries, k ${k}; m ${m}, efConstruction ${efConstruction}, --threads ${threads})`)
  md.push('')
  for (const mode of MODES) {
    md.push(`### QPS at fixed recall@${k} — ${mode.label}`)
    md.push('')
    const hasMode = (e) => e.points.some((p) => Number.isFinite(mode.qps(p)))
    const rows = measured.map((e) => [e.name, ...TARGETS.map((t) => (hasMode(e) ? fmtAt(e.fixedRecall[mode.key][t]) : 'n/a'))])
    rows.push(['**vecdex ÷ best peer**', ...TARGETS.map((t) => (vecdex ? fmtVersus(ratios[mode.key][t]) : '—'))])
    md.push(table(['engine', ...TARGETS.map((t) => `recall ${t.toFixed(2)}`)], rows))
    const without = measured.filter((e) => !hasMode(e)).map((e) => e.name)
    if (without.length) md.push(`\nn/a: ${without.join(', ')} has no such search (see Method).`)
    md.push('')
  }

  md.push('### Build')
  md.push('')
  md.push(
    table(
      ['engine', 'version', 'threads', 'build s', 'time ÷ usearch', 'index memory', 'RSS Δ', 'how threads were set'],
      engines.map((e) =>
        e.build
          ? [e.name, e.version, e.build.threads, fmt(e.build.seconds), usearchBuild ? fmtRatio(e.build.seconds / usearchBuild) : '–', fmtBytes(e.memory?.bytes), fmtSignedBytes(e.rssDeltaBytes), e.build.threadsNote ?? '']
          : [e.name, e.version ?? '', '', e.skipped ? 'skipped' : 'failed', '', '', '', ''],
      ),
    ),
  )
  md.push('')
  for (const e of built) {
    const phases = e.build.phases ? ` Build parts: ${Object.entries(e.build.phases).map(([p, s]) => `${p} ${fmt(s)} s`).join(', ')}.` : ''
    md.push(`- ${e.name}: memory = ${e.memory?.source ?? 'not reported'}.${phases}`)
  }
  md.push('')

  md.push(`### Recall@${k} and QPS per efSearch`)
  md.push('')
  for (const e of measured) {
    md.push(`#### ${e.name} ${e.version ?? ''}`)
    md.push('')
    md.push(
      table(
        ['efSearch', `recall@${k}`, '1-thread QPS', '1-thread range', `batch QPS (${e.batchThreads ?? '–'} threads)`, 'batch range'],
        e.points.map((p) => [
          p.ef,
          p.recall.toFixed(4),
          fmt(p.singleQps),
          `${fmt(q / Math.max(...p.singleSeconds))}–${fmt(q / Math.min(...p.singleSeconds))}`,
          fmt(p.batchQps),
          p.batchSeconds ? `${fmt(q / Math.max(...p.batchSeconds))}–${fmt(q / Math.min(...p.batchSeconds))}` : '–',
        ]),
      ),
    )
    md.push('')
    md.push(`Sweep ended: ${e.stopReason ?? 'unknown'}.`)
    md.push('')
  }

  md.push('### Method')
  md.push('')
  md.push(`- Same data, queries, metric, m ${m} and efConstruction ${efConstruction} for every engine; keys are base row numbers. Ground truth: exact float64 JS scan (${gt.source}); recall@${k} counts ties within 1e-5 of the k-th true distance.`)
  md.push(`- efSearch sweep ${efs.join(', ')}. At each ef, ${runs} runs per mode, so that every engine sees the same machine state: in a 1-thread run the engines take turns every ${CHUNK} queries (rotating who goes first); then each engine runs its batch, in a rotating order. QPS = ${q} queries / median run time; ranges are the slowest and fastest runs. Recall comes from the first 1-thread run (the JSON also has the batch run's recall). ${WARMUP_QUERIES} untimed warm-up queries per engine after its build.`)
  md.push(`- An engine's sweep stops once recall ≥ ${STOP_RECALL}, its 1-thread QPS < ${MIN_QPS}, or after ${ENGINE_BUDGET_SECONDS} s of timed searches.`)
  md.push(`- QPS at fixed recall: log(QPS) interpolated linearly in recall between the two consecutive sweep points that bracket the level; "≥" when the smallest ef already exceeds it (a lower bound), "—" when the curve never reaches it. vecdex ÷ best peer compares vecdex with the fastest peer at that level; "≥"/"≤"/"~" mark ratios involving such bounds.`)
  md.push(`- Build: one build per engine, in turn (wall seconds, vectors already in memory). Index memory as each engine reports it (see the build notes); RSS Δ = resident set growth across the build after a full GC, a cross-check that also counts allocator slack and anything the engine keeps besides the index.`)
  for (const e of engines) {
    if (e.skipped) md.push(`- ${e.name}: skipped — ${e.skipped}`)
    else if (e.error && !e.points?.length) md.push(`- ${e.name}: failed — ${e.error}`)
    else if (e.notes) md.push(`- ${e.name}: build ${e.notes.build}; 1 thread: ${e.notes.single}; batch: ${e.notes.batch}${e.notes.other ? `; ${e.notes.other}` : ''}.`)
  }
  return md.join('\n')
}
