// Suite `ann`: approximate nearest-neighbour search with HNSW graph indexes. Every engine builds
// with the same m, efConstruction and metric (build time on --threads threads where the engine
// can build in parallel, index memory); then an efSearch sweep measures, at each ef, recall@k
// against the exact ground truth and QPS in two modes: one query at a time on one thread, and
// the whole query set as a batch on --threads threads. At each ef the engines take turns run by
// run (in a rotating order), so a drift in the machine's speed hits every engine alike and the
// ratios come from the same minutes. QPS at fixed recall is interpolated from the sweep.
// The build-and-sweep machinery is ../sweep.mjs, shared with the quant suite.

import { readyAnnAdapters } from '../adapters/ann/index.mjs'
import { groundTruth } from '../groundtruth.mjs'
import { fmt, fmtBytes, fmtRatio, table } from '../report.mjs'
import { CHUNK, MODES, WARMUP_QUERIES, buildEngine, closeQuietly, fixedRecallTable, fmtAt, sweepLines, fmtSignedBytes, qpsAtRecall, runSweep } from '../sweep.mjs'
import { minilmBuildable } from '../minilm-data.mjs'

export { qpsAtRecall }

export const name = 'ann'
/** Real transformer embeddings where they can be built (a source checkout), else GloVe. */
export const defaultDataset = () => (minilmBuildable() ? 'wordnet-minilm' : 'glove-100k')
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
      const params = { m, efConstruction, threads, log }
      const ready = await buildEngine(adapter, record, { dataset, k, q, params, values: efs, log, buildLabel: `m ${m}, efConstruction ${efConstruction}` })
      if (ready) live.push(ready)
    }
    await runSweep({ live, dataset, gt, k, runs, log, limits: { stopRecall: STOP_RECALL, minQps: MIN_QPS, budgetSeconds: ENGINE_BUDGET_SECONDS } })
  } finally {
    for (const e of live) await closeQuietly(e.adapter, log)
  }

  // QPS at fixed recall, per engine and mode; vecdex against the best peer at each level.
  for (const e of engines) {
    if (!e.points?.length) continue
    e.fixedRecall = fixedRecallTable(e.points, TARGETS)
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
    md.push(...sweepLines(e, { k, q, param: 'efSearch' }))
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
