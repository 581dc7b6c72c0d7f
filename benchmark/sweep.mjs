// The recall–QPS sweep shared by the `ann` and `quant` suites: build each engine (timed, with
// its memory and an untimed warm-up), then step through each engine's sweep values (efSearch,
// nprobes, …) and, at each step, time two search modes with the engines taking turns, so a drift
// in the machine's speed hits every engine alike. QPS at a fixed recall is interpolated from
// the resulting points (`qpsAtRecall`).
//
// Engines are AnnAdapters (adapters/ann/index.mjs); the quant suite's adapters add a few
// optional members (`train`, `compression`), used here only through `train`.

import { recallAtK, toRows } from './groundtruth.mjs'
import { collectGarbage, fmt, fmtBytes, median, table, timeIt } from './report.mjs'

/** Untimed queries each engine runs (1 thread and batch) after its build, before the sweep. */
export const WARMUP_QUERIES = 200
/** In the 1-thread mode the engines take turns every CHUNK queries (finer than whole runs). */
export const CHUNK = 100

/** The two timed search modes, with the point field holding each one's QPS. */
export const MODES = /** @type {const} */ ([
  { key: 'single', label: '1 thread (one query per call)', qps: (p) => p.singleQps },
  { key: 'batch', label: 'batch (all queries, --threads threads)', qps: (p) => p.batchQps },
])

/** Row numbers per query from any AnnResults shape (see adapters/ann/index.mjs). */
export function rowsOf(result) {
  if (!Array.isArray(result)) return toRows(result)
  return result.map((r) => {
    if (ArrayBuffer.isView(r) || Array.isArray(r)) return Array.from(r, Number)
    const count = r.counts ? Number(r.counts[0]) : r.keys.length
    return Array.from(r.keys, Number).slice(0, count)
  })
}

/** `items` rotated left by `by`: run r starts with a different engine each time. */
export function rotated(items, by) {
  const s = by % Math.max(items.length, 1)
  return [...items.slice(s), ...items.slice(0, s)]
}

/**
 * Resident set size in bytes, after full GCs when --expose-gc is on. V8 frees ArrayBuffer
 * memory on a background thread after a GC, so the GCs are spaced by short pauses.
 */
export async function settledRss() {
  for (let i = 0; i < 3; i++) {
    collectGarbage()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return process.memoryUsage.rss()
}

/** fmtBytes with a sign ("+62.8 MiB", "−1.20 MiB"). */
export function fmtSignedBytes(b) {
  if (b === undefined || b === null || Number.isNaN(b)) return '–'
  return `${b < 0 ? '−' : '+'}${fmtBytes(Math.abs(b))}`
}

/**
 * QPS at a recall level, from sweep points in sweep order: log(QPS) interpolated linearly in
 * recall between the first two consecutive points that bracket `target`. If the first point
 * already reaches it, its QPS is a lower bound (`bound: 'atLeast'`); if no point does, undefined.
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

/** Per mode, per target: `qpsAtRecall` of an engine's points. */
export function fixedRecallTable(points, targets) {
  return Object.fromEntries(MODES.map((mode) => [mode.key, Object.fromEntries(targets.map((t) => [t, qpsAtRecall(points, t, mode.qps)]))]))
}

/** "12,300", or "≥12,300" when the sweep started above the target recall. */
export function fmtAt(at) {
  if (!at) return '—'
  return `${at.bound === 'atLeast' ? '≥' : ''}${fmt(at.qps)}`
}

export function stop(e, reason, log) {
  if (e.stopped) return
  e.stopped = reason
  log(`${e.adapter.name}: sweep stops — ${reason}`)
}

export async function closeQuietly(adapter, log) {
  try {
    await adapter.close()
  } catch (error) {
    log(`${adapter.name}: close failed — ${error?.message ?? error}`)
  }
}

/**
 * Builds one engine and readies it for the sweep: `adapter.train` first when it has one (timed
 * apart, into `record.train`), then `adapter.build` (timed, with the RSS growth across both),
 * its memory and stats, and an untimed warm-up at the first sweep value. On failure the
 * adapter is closed, `record.error` set and undefined returned.
 * @param {import('./adapters/ann/index.mjs').AnnAdapter & { train?: Function }} adapter
 * @param {object} record   the engine's report entry, filled in here
 * @param {{ dataset: import('./datasets.mjs').Dataset, k: number, q: number, params: object, values: number[], log: (msg: string) => void, buildLabel?: string }} opts
 *   params: passed to train and build; values: the engine's sweep values (the first warms up)
 * @returns {Promise<{ adapter: any, record: object, values: number[], prepared: any, spent: number, stopped: string | null } | undefined>}
 */
export async function buildEngine(adapter, record, { dataset, k, q, params, values, log, buildLabel }) {
  try {
    log(`${adapter.name}: building${buildLabel ? ` (${buildLabel})` : ''}…`)
    const before = await settledRss()
    if (adapter.train) {
      const trained = await timeIt(() => adapter.train(dataset, params))
      record.train = { seconds: trained.seconds, ...trained.value }
      log(`${adapter.name}: trained in ${fmt(trained.seconds)} s`)
    }
    const built = await timeIt(() => adapter.build(dataset, params))
    const after = await settledRss()
    record.build = { seconds: built.seconds, ...built.value }
    record.rssDeltaBytes = after - before
    record.memory = await adapter.memory()
    record.stats = adapter.stats?.()
    record.batchThreads = adapter.searchBatch ? adapter.batchThreads : undefined
    log(`${adapter.name}: built in ${fmt(built.seconds)} s on ${built.value.threads} thread(s); memory ${fmtBytes(record.memory?.bytes)}, RSS ${fmtSignedBytes(record.rssDeltaBytes)}`)
    // Warm-up: first calls, caches, lazily loaded index parts; not timed.
    await adapter.setEf(values[0])
    const warmCount = Math.min(q, WARMUP_QUERIES)
    const warm = adapter.prepare(dataset.queries, warmCount)
    await adapter.searchSequential(warm, k, 0, warmCount)
    if (adapter.searchBatch) await adapter.searchBatch(warm, k)
    return { adapter, record, values, prepared: adapter.prepare(dataset.queries, q), spent: 0, stopped: null }
  } catch (error) {
    log(`${adapter.name}: failed — ${error?.stack ?? error}`)
    record.error = String(error?.message ?? error)
    await closeQuietly(adapter, log)
    return undefined
  }
}

/**
 * A sweep value: a number (efSearch, nprobes, …) or, when a point sets several parameters, an
 * object with a `label` for logs and reports (the adapter's setEf gets the object).
 * @param {number | { label: string }} value
 */
export const valueLabel = (value) => (typeof value === 'object' && value !== null ? value.label : value)

/**
 * @typedef {object} SweepLimits
 * @property {number} stopRecall     an engine's sweep ends at the first value whose recall reaches this…
 * @property {number} minQps         …or whose 1-thread QPS falls below this…
 * @property {number} budgetSeconds  …or once its timed searches have taken this long in total (an
 *   engine's own `budgetSeconds`, when set, replaces it)…
 * @property {{ points: number, gain: number }} [plateau]  …or (when given) once recall has
 *   risen by less than `gain` over the last `points` steps
 */

/**
 * The sweep: step i sets every live engine with an i-th value to it, then times `runs` runs of
 * each mode. In a 1-thread run the engines take turns every CHUNK queries (rotating who goes
 * first); then each engine runs its batch, in a rotating order. Appends a point per step to
 * `e.record.points`; sets `e.record.stopReason`.
 * @param {{ live: any[], dataset: import('./datasets.mjs').Dataset, gt: import('./groundtruth.mjs').GroundTruth, k: number, runs: number, limits: SweepLimits, log: (msg: string) => void, paramOf?: (e: any) => string }} opts
 *   live[i].values: that engine's sweep values (numbers, or objects with a label: see valueLabel)
 *   paramOf: the sweep parameter's name in log lines (default 'ef')
 */
export async function runSweep({ live, dataset, gt, k, runs, limits, log, paramOf = () => 'ef' }) {
  const { q } = dataset
  const steps = Math.max(0, ...live.map((e) => e.values.length))
  for (let step = 0; step < steps; step++) {
    const active = live.filter((e) => !e.stopped && step < e.values.length)
    if (active.length === 0) {
      if (live.every((e) => e.stopped || step >= e.values.length)) break
      continue
    }
    for (const e of active) {
      const value = e.values[step]
      const ef = valueLabel(value)
      try {
        await e.adapter.setEf(value)
        e.current = { ef, setting: typeof value === 'object' ? value : undefined, single: [], batch: [], singleRows: null, batchRows: null }
      } catch (error) {
        stop(e, `failed at ${paramOf(e)} ${ef}: ${error?.message ?? error}`, log)
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
            log(`${e.adapter.name}: 1-thread search failed at ${paramOf(e)} ${e.current.ef} — ${error?.stack ?? error}`)
            stop(e, `1-thread search failed at ${paramOf(e)} ${e.current.ef}: ${error?.message ?? error}`, log)
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
          log(`${e.adapter.name}: batch search failed at ${paramOf(e)} ${e.current.ef} — ${error?.stack ?? error}`)
          stop(e, `batch search failed at ${paramOf(e)} ${e.current.ef}: ${error?.message ?? error}`, log)
        }
      }
    }
    for (const e of active) {
      if (e.stopped) continue
      const c = e.current
      const point = {
        ef: c.ef,
        ...(c.setting ? { setting: c.setting } : {}),
        recall: recallAtK(c.singleRows, gt, k),
        singleQps: q / median(c.single),
        singleSeconds: c.single,
        batchRecall: c.batchRows ? recallAtK(c.batchRows, gt, k) : undefined,
        batchQps: c.batch.length ? q / median(c.batch) : undefined,
        batchSeconds: c.batch.length ? c.batch : undefined,
      }
      const points = e.record.points
      points.push(point)
      const p = paramOf(e)
      log(`${e.adapter.name} ${p} ${c.ef}: recall ${point.recall.toFixed(4)}, 1-thread ${fmt(point.singleQps)} QPS, batch ${fmt(point.batchQps)} QPS`)
      if (point.batchRecall !== undefined && Math.abs(point.batchRecall - point.recall) > 0.002) {
        log(`${e.adapter.name} ${p} ${c.ef}: note — batch recall ${point.batchRecall.toFixed(4)} differs from 1-thread recall`)
      }
      const plateau = limits.plateau
      const flat = plateau && points.length > plateau.points && point.recall - points[points.length - 1 - plateau.points].recall < plateau.gain
      if (point.recall >= limits.stopRecall) stop(e, `recall ${point.recall.toFixed(4)} ≥ ${limits.stopRecall} at ${p} ${c.ef}`, log)
      else if (point.singleQps < limits.minQps) stop(e, `1-thread QPS ${fmt(point.singleQps)} < ${limits.minQps} at ${p} ${c.ef}`, log)
      else if (e.spent > (e.budgetSeconds ?? limits.budgetSeconds)) stop(e, `search time budget (${e.budgetSeconds ?? limits.budgetSeconds} s) used up after ${p} ${c.ef}`, log)
      else if (flat) stop(e, `recall plateau: +${(point.recall - points[points.length - 1 - plateau.points].recall).toFixed(4)} over the last ${plateau.points} steps, at ${p} ${c.ef}`, log)
    }
  }
  for (const e of live) {
    e.record.stopReason = e.stopped ?? (e.record.points.length === e.values.length ? `end of sweep (${paramOf(e)} ${valueLabel(e.values[e.values.length - 1])})` : undefined)
  }
}

/**
 * Markdown lines of one engine's sweep: recall@k and QPS (median and range of the runs) per
 * setting in both modes, then why the sweep ended.
 * @param {any} e  an engine record with `points`, `batchThreads`, `stopReason`
 * @param {{ k: number, q: number, param: string }} opts  `param`: the setting's column name
 */
export function sweepLines(e, { k, q, param }) {
  return [
    table(
      [param, `recall@${k}`, '1-thread QPS', '1-thread range', `batch QPS (${e.batchThreads ?? '–'} threads)`, 'batch range'],
      e.points.map((p) => [
        p.ef,
        p.recall.toFixed(4),
        fmt(p.singleQps),
        `${fmt(q / Math.max(...p.singleSeconds))}–${fmt(q / Math.min(...p.singleSeconds))}`,
        fmt(p.batchQps),
        p.batchSeconds ? `${fmt(q / Math.max(...p.batchSeconds))}–${fmt(q / Math.min(...p.batchSeconds))}` : '–',
      ]),
    ),
    '',
    `Sweep ended: ${e.stopReason ?? 'unknown'}.`,
    '',
  ]
}
