// Suite `quant`: compressed indexes. One engine per (engine, codec): vecdex's HNSW over f32,
// f16, SQ8 (asymmetric and symmetric), SQ4, binary, PQ (m = d/4) and PCA + SQ8, each rescoring
// k × oversample candidates with its f32 vectors; usearch's i8 and b1 (no rescoring, and with a
// JS re-ranking step); LanceDB's IVF_PQ and HNSW-SQ with refineFactor; faiss SQ8/PQ when it
// installs. For each: bytes per vector of the searched codes and of the rows kept for
// rescoring, training time (apart from the build), build time, and the recall@k–QPS sweep of
// the ann suite (same turn-taking, same two modes, same interpolation), summed up as QPS at
// recall 0.90 and 0.95, with the acceptance figures of the compression issue checked at the end.

import { CODEC_HELP, codecsPerEngine, readyQuantAdapters } from '../adapters/quant/index.mjs'
import { groundTruth } from '../groundtruth.mjs'
import { fmt, fmtBytes, fmtRatio, table } from '../report.mjs'
import { CHUNK, MODES, WARMUP_QUERIES, buildEngine, closeQuietly, fixedRecallTable, fmtAt, qpsAtRecall, sweepLines, runSweep } from '../sweep.mjs'
import { DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_M } from './ann.mjs'
import { minilmBuildable } from '../minilm-data.mjs'

export const name = 'quant'
/** Real transformer embeddings where they can be built (a source checkout), else GloVe. */
export const defaultDataset = () => (minilmBuildable() ? 'wordnet-minilm' : 'glove-100k')
export const summary = 'compressed indexes (f16, SQ8, SQ4, binary, PQ, PCA) against f32 and peers at similar code size: code and whole-index bytes per vector, training and build time, recall@k after rescoring, QPS at recall 0.90/0.95'

export const DEFAULT_RUNS = 3
/** Recall levels of the summary table. */
export const TARGETS = [0.9, 0.95]
/** Base rows given to train() (the first ones; every dataset's base is in random order). */
export const TRAINING_ROWS = 32_768
/** An engine's sweep ends at the first value whose recall reaches this… */
const STOP_RECALL = 0.99
/** …or whose 1-thread QPS falls below this… */
const MIN_QPS = 100
/** …or once its timed searches have taken this long in total… */
const ENGINE_BUDGET_SECONDS = 45
/** …or once its recall has risen by less than `gain` over the last `points` steps. */
const PLATEAU = { points: 2, gain: 0.002 }

/** Acceptance figures of the compression issue. */
const MEMORY_LIMITS = { sq8: 0.27, sq4: 0.14, binary: 0.04, pq: 0.07 }
const RECALL_CODECS = ['sq8', 'sq4', 'pq']
const RECALL_MIN = 0.95
const RECALL_DATASETS = ['glove-100k', 'fashion-mnist']
const SPEEDUP_MIN = 1.3

/** The codec name without its @oversample suffix. */
const baseCodec = (codec) => String(codec ?? '').replace(/@.*$/, '')

/** @param {import('../run.mjs').SuiteContext & { codecs?: string[] }} ctx */
export async function run(ctx) {
  const { k, threads, log } = ctx
  const m = ctx.m ?? DEFAULT_M
  const efConstruction = ctx.efConstruction ?? DEFAULT_EF_CONSTRUCTION
  const runs = ctx.runs ?? DEFAULT_RUNS
  const requestedEf = ctx.ef ?? DEFAULT_EF
  const efs = [...new Set(requestedEf)].filter((ef) => ef >= k).sort((a, b) => a - b)
  const droppedEf = requestedEf.filter((ef) => ef < k)
  if (droppedEf.length) log(`quant: efSearch values below k = ${k} dropped: ${droppedEf.join(', ')}`)
  if (efs.length === 0) throw new Error(`no efSearch value ≥ k = ${k} in ${requestedEf.join(',')}`)
  const codecs = codecsPerEngine(ctx.codecs)

  const dataset = ctx.load({ queries: ctx.queries ?? 1000 })
  const { n, q, dim } = dataset
  const sampleRows = Math.min(n, TRAINING_ROWS)
  const sample = dataset.base.subarray(0, sampleRows * dim)
  log(`quant: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}, ${q} queries, k ${k}; m ${m}, efConstruction ${efConstruction}, ${threads} threads; ef ${efs.join(',')}; ${runs} runs per point; training sample ${sampleRows} rows`)
  log(`quant: codecs ${Object.entries(codecs).map(([e, c]) => `${e}: ${c.join(',') || '–'}`).join('; ')}`)
  const gt = await groundTruth(dataset, k, { log })

  const engines = []
  const live = []
  try {
    for await (const adapter of readyQuantAdapters(ctx.peers, codecs, engines, log, { threads })) {
      adapter.configure?.(dataset)
      const record = { name: adapter.name, family: adapter.family, codec: adapter.codec, version: adapter.version, notes: adapter.notes, sweepParam: adapter.sweepParam, budgetSeconds: adapter.budgetSeconds, points: [] }
      engines.push(record)
      const values = adapter.sweepValues ? adapter.sweepValues(efs, ctx.ef !== undefined, k) : efs
      const params = { m, efConstruction, threads, log, sample }
      const ready = await buildEngine(adapter, record, { dataset, k, q, params, values, log, buildLabel: adapter.setup ?? adapter.codec })
      record.setup = adapter.setup
      record.rescoreSetting = adapter.rescoreSetting
      if (!ready) continue
      ready.budgetSeconds = adapter.budgetSeconds
      try {
        record.compression = adapter.compression()
        log(`${adapter.name}: ${fmt(record.compression.codeBytes)} B/vector searched (${fmtRatio(record.compression.codeBytes / (4 * dim))} of f32), ${fmt(record.compression.rescoreBytes)} B/vector kept for rescoring`)
      } catch (error) {
        log(`${adapter.name}: compression figures unavailable — ${error?.message ?? error}`)
      }
      live.push(ready)
    }
    await runSweep({
      live,
      dataset,
      gt,
      k,
      runs,
      log,
      paramOf: (e) => e.adapter.sweepParam ?? 'ef',
      limits: { stopRecall: STOP_RECALL, minQps: MIN_QPS, budgetSeconds: ENGINE_BUDGET_SECONDS, plateau: PLATEAU },
    })
  } finally {
    for (const e of live) await closeQuietly(e.adapter, log)
  }

  for (const e of engines) {
    if (!e.points?.length) continue
    e.fixedRecall = fixedRecallTable(e.points, TARGETS)
    e.bestRecall = Math.max(...e.points.map((p) => p.recall))
  }
  const comparisons = compare(engines)
  const acceptance = accept({ dataset, engines, comparisons })

  return {
    datasetName: dataset.name,
    markdown: markdown({ dataset, k, m, efConstruction, threads, runs, efs, gt, engines, comparisons, acceptance, sampleRows }),
    json: {
      dataset: { name: dataset.name, metric: dataset.metric, n, q, dim, source: dataset.source },
      k,
      params: { m, efConstruction, threads, runs, efSearch: efs, codecs, trainingRows: sampleRows, stopRecall: STOP_RECALL, minQps: MIN_QPS, engineBudgetSeconds: ENGINE_BUDGET_SECONDS, plateau: PLATEAU, warmupQueries: WARMUP_QUERIES },
      targets: TARGETS,
      groundTruth: gt.source,
      engines,
      comparisons,
      acceptance,
    },
  }
}

/** The first measured engine of a family whose codec (without @suffix) is `codec`. */
function find(engines, family, codec, { exact = false } = {}) {
  return engines.find((e) => e.family === family && e.points?.length && (exact ? e.codec === codec : baseCodec(e.codec) === codec))
}

/** QPS ratios a ÷ b at every target and mode ("vecdex sq8 / vecdex f32 QPS@0.95"). */
function ratio(a, b, label) {
  const out = { label, a: a?.name, b: b?.name, at: {} }
  for (const mode of MODES) {
    out.at[mode.key] = {}
    for (const t of TARGETS) {
      const x = a?.fixedRecall?.[mode.key][t]
      const y = b?.fixedRecall?.[mode.key][t]
      out.at[mode.key][t] = { a: x, b: y, ratio: x && y ? x.qps / y.qps : undefined }
    }
  }
  return out
}

/** The vecdex variant of a codec (any @oversample, not @raw) that reaches the highest recall. */
function bestVariant(engines, codec) {
  return engines
    .filter((e) => e.family === 'vecdex' && baseCodec(e.codec) === codec && e.points?.length && !e.codec.endsWith('@raw'))
    .sort((a, b) => b.bestRecall - a.bestRecall)[0]
}

function compare(engines) {
  const f32 = find(engines, 'vecdex', 'f32')
  const i8 = find(engines, 'usearch', 'i8', { exact: true })
  const i8r = find(engines, 'usearch', 'i8+rescore', { exact: true })
  const pq = bestVariant(engines, 'pq')
  const binary = bestVariant(engines, 'binary')
  const rabitq = bestVariant(engines, 'rabitq')
  const pairs = []
  // Both SQ8 flavours: sq8 (symmetric, the default: quantized query) and sq8-asym (f32 query).
  for (const codec of ['sq8', 'sq8-asym']) {
    const sq8 = find(engines, 'vecdex', codec, { exact: true }) ?? bestVariant(engines, codec)
    pairs.push([sq8, f32, `vecdex ${codec} / vecdex f32`], [sq8, i8, `vecdex ${codec} / usearch i8`], [sq8, i8r, `vecdex ${codec} / usearch i8+rescore`])
  }
  const sq8 = find(engines, 'vecdex', 'sq8', { exact: true }) ?? bestVariant(engines, 'sq8')
  pairs.push(
    [sq8, find(engines, 'lancedb', 'hnsw-sq', { exact: true }), 'vecdex sq8 / lancedb hnsw-sq'],
    [pq, find(engines, 'lancedb', 'ivf-pq', { exact: true }), `vecdex ${pq?.codec} / lancedb ivf-pq`],
    [binary, find(engines, 'usearch', 'b1+rescore', { exact: true }), `vecdex ${binary?.codec} / usearch b1+rescore`],
    [rabitq, find(engines, 'lancedb', 'ivf-rq', { exact: true }), `vecdex ${rabitq?.codec} / lancedb ivf-rq`],
    [rabitq, pq, `vecdex ${rabitq?.codec} / vecdex ${pq?.codec}`],
  )
  return pairs.filter(([a, b]) => a && b).map(([a, b, label]) => ratio(a, b, label))
}

/** The acceptance figures of the compression issue, each with pass / fail / n/a and its numbers. */
function accept({ dataset, engines, comparisons }) {
  const checks = []
  const f32Bytes = 4 * dataset.dim
  for (const [codec, limit] of Object.entries(MEMORY_LIMITS)) {
    const e = engines.find((x) => x.family === 'vecdex' && baseCodec(x.codec) === codec && x.compression)
    const r = e ? e.compression.codeBytes / f32Bytes : undefined
    checks.push({
      what: `${codec} codes ≤ ${limit}× f32`,
      status: r === undefined ? 'n/a' : r <= limit ? 'pass' : 'fail',
      detail: e ? `${fmt(e.compression.codeBytes)} B ÷ ${f32Bytes} B = ${r.toFixed(4)}×; plus ${fmt(e.compression.rescoreBytes)} B/vector f32 kept for rescoring` : 'not measured',
    })
  }
  const recallApplies = RECALL_DATASETS.includes(dataset.name)
  for (const codec of RECALL_CODECS) {
    // The codec's best variant (e.g. pq at its default oversample, or pq@4).
    const e = bestVariant(engines, codec)
    const best = e?.bestRecall
    checks.push({
      what: `${codec} recall@10 after rescoring ≥ ${RECALL_MIN}${recallApplies ? '' : ' (required on GloVe 100k and Fashion-MNIST; shown for reference)'}`,
      status: best === undefined ? 'n/a' : best >= RECALL_MIN ? 'pass' : recallApplies ? 'fail' : 'below',
      detail: e ? `${e.name}: best ${best.toFixed(4)} (sweep ${e.stopReason ?? ''})` : 'not measured',
    })
  }
  for (const label of ['vecdex sq8 / vecdex f32', 'vecdex sq8-asym / vecdex f32']) {
    const c = comparisons.find((x) => x.label === label)
    for (const mode of MODES) {
      const at = c?.at[mode.key][0.95]
      let status = 'n/a'
      let detail = 'not measured'
      if (c && at) {
        if (at.ratio !== undefined) {
          status = boundedStatus(at.ratio, at.a, at.b)
          detail = `${fmtAt(at.a)} ÷ ${fmtAt(at.b)} = ${at.a?.bound ? '≥' : ''}${fmtRatio(at.ratio)}${at.a?.bound || at.b?.bound ? ' (a bound: a sweep started above 0.95; add a smaller --ef)' : ''}`
        } else detail = `${at.a ? c.b : c.a} does not reach 0.95`
      }
      checks.push({ what: `${label} QPS@0.95 ≥ ${SPEEDUP_MIN}× — ${mode.label}`, status, detail })
    }
  }
  for (const label of ['vecdex sq8 / usearch i8', 'vecdex sq8-asym / usearch i8']) {
    const c = comparisons.find((x) => x.label === label)
    const a = c && engines.find((e) => e.name === c.a)
    const b = c && engines.find((e) => e.name === c.b)
    for (const mode of MODES) {
      checks.push({ what: `${label} QPS at equal recall ≥ ${SPEEDUP_MIN}× — ${mode.label}`, ...equalRecallCheck(a, b, mode, comparisons.find((x) => x.label === `${label}+rescore`)?.at[mode.key][0.95]) })
    }
  }
  return checks
}

/**
 * `a` against `b` at every recall both reach among 0.90, 0.95 and `b`'s best recall (usearch i8
 * never reaches 0.95: its own ceiling is then the highest equal-recall point). Passes when each
 * of those ratios is at least SPEEDUP_MIN.
 */
function equalRecallCheck(a, b, mode, rescoredAt95) {
  if (!a?.points?.length || !b?.points?.length) return { status: 'n/a', detail: 'not measured' }
  const ceiling = Math.floor(Math.min(a.bestRecall, b.bestRecall) * 1e4) / 1e4
  const levels = [...new Set([...TARGETS.filter((t) => t <= ceiling), ceiling < 0.95 ? ceiling : undefined].filter((t) => t !== undefined))]
  const at = levels.map((t) => ({ t, x: qpsAtRecall(a.points, t, mode.qps), y: qpsAtRecall(b.points, t, mode.qps) })).filter((r) => r.x && r.y)
  if (at.length === 0) return { status: 'n/a', detail: 'no recall level both reach' }
  const statuses = at.map((r) => boundedStatus(r.x.qps / r.y.qps, r.x, r.y))
  const status = statuses.includes('fail') ? 'fail' : statuses.every((s) => s === 'pass') ? 'pass' : 'inconclusive (bound)'
  const parts = at.map((r) => {
    const own = r.t === ceiling && !TARGETS.includes(r.t)
    return `at ${r.t.toFixed(own ? 4 : 2)}${own ? ` (${b.name}'s best)` : ''}: ${fmtAt(r.x)} ÷ ${fmtAt(r.y)} = ${r.x.bound ? '≥' : ''}${fmtRatio(r.x.qps / r.y.qps)}`
  })
  if (at.some((r) => r.x.bound)) parts.push(`≥: ${a.name}'s sweep starts above that recall, so its QPS there is at least its first point's`)
  if (b.bestRecall < 0.95) parts.push(`${b.name} never reaches 0.95 (best ${b.bestRecall.toFixed(4)})`)
  if (rescoredAt95?.ratio !== undefined) parts.push(`against usearch i8+rescore at 0.95: ${fmtRatio(rescoredAt95.ratio)}`)
  return { status, detail: parts.join('; ') }
}

/**
 * pass / fail for a QPS ratio x ÷ y against SPEEDUP_MIN, where either side may be a bound
 * ("atLeast": the sweep started above the recall level, so the QPS there is at least that).
 * A bound on x only makes the ratio a lower bound: enough to pass, not to fail. A bound on y
 * makes it an upper bound: enough to fail, not to pass.
 */
function boundedStatus(ratio, x, y) {
  if (ratio >= SPEEDUP_MIN) return y?.bound ? 'inconclusive (bound)' : 'pass'
  return x?.bound ? 'inconclusive (bound)' : 'fail'
}

function markdown({ dataset, k, m, efConstruction, threads, runs, efs, gt, engines, comparisons, acceptance, sampleRows }) {
  const { n, q, dim } = dataset
  const f32Bytes = 4 * dim
  const built = engines.filter((e) => e.build)
  const measured = engines.filter((e) => e.points?.length)
  const md = []
  md.push(`## quant — ${dataset.name} (${dataset.metric}, n ${fmt(n)}, dim ${dim}, ${q} queries, k ${k}; m ${m}, efConstruction ${efConstruction}, --threads ${threads})`)
  md.push('')
  md.push(`f32 = ${f32Bytes} B per vector (4 · ${dim}). Codes = the form the graph / lists are searched on; rescore = full-precision bytes per vector kept for rescoring; index = the engine's whole index ÷ n, the figure to compare for memory: every vecdex codec keeps the f32 rows in memory beside its codes, so its index is larger than the f32 one. QPS at recall@${k} = 0.90 / 0.95, interpolated from the sweep ("≥": the first sweep point is already above it; "—": never reached).`)
  md.push('')
  const rows = engines.map((e) => {
    if (!e.build) return [e.name, e.skipped ? `skipped: ${e.skipped}` : `failed: ${e.error ?? '?'}`, '', '', '', '', '', '', '', '', '', '', '']
    const c = e.compression
    const at = (mode, t) => (e.fixedRecall ? fmtAt(e.fixedRecall[mode][t]) : '—')
    return [
      e.name,
      c ? fmt(c.codeBytes) : '–',
      c ? `${(c.codeBytes / f32Bytes).toFixed(3)}×` : '–',
      c ? fmt(c.rescoreBytes) : '–',
      e.memory?.bytes ? fmt(e.memory.bytes / n) : '–',
      e.train ? (e.train.needed === false ? '–' : fmt(e.train.seconds)) : e.family === 'lancedb' ? 'in build' : '–',
      fmt(e.build.seconds),
      e.bestRecall !== undefined ? e.bestRecall.toFixed(4) : '–',
      at('single', 0.9),
      at('single', 0.95),
      at('batch', 0.9),
      at('batch', 0.95),
      e.rescoreSetting ?? '',
    ]
  })
  md.push(
    table(
      ['engine / codec', 'codes B/vec', 'codes ÷ f32 rows', 'rescore B/vec', 'index B/vec', 'train s', 'build s', `best recall@${k}`, 'QPS@0.90 1-thr', 'QPS@0.95 1-thr', 'QPS@0.90 batch', 'QPS@0.95 batch', 'rescoring'],
      rows,
    ),
  )
  md.push('')

  md.push('### Ratios at equal recall')
  md.push('')
  if (comparisons.length === 0) md.push('No pair of engines to compare was measured.')
  for (const c of comparisons) {
    const parts = []
    for (const mode of MODES) {
      for (const t of TARGETS) {
        const at = c.at[mode.key][t]
        const value = at.ratio !== undefined ? `${at.a?.bound || at.b?.bound ? '~' : ''}${fmtRatio(at.ratio)}` : !at.a ? `— (${c.a} below ${t})` : `— (${c.b} below ${t})`
        parts.push(`${t.toFixed(2)} ${mode.key === 'single' ? '1-thr' : 'batch'} ${value}`)
      }
    }
    md.push(`- **${c.label} QPS**: ${parts.join('; ')}`)
  }
  md.push('')

  md.push('### Acceptance (compression issue)')
  md.push('')
  md.push(table(['check', 'result', 'figures'], acceptance.map((a) => [a.what, a.status === 'pass' ? '**pass**' : a.status === 'fail' ? '**FAIL**' : a.status, a.detail])))
  md.push('')

  md.push(`### Recall@${k} and QPS per sweep point`)
  md.push('')
  for (const e of measured) {
    md.push(`#### ${e.name} ${e.version ?? ''}`)
    md.push('')
    md.push(...sweepLines(e, { k, q, param: e.sweepParam ?? 'ef' }))
  }

  md.push('### Set-up per engine')
  md.push('')
  // How each engine is driven, once per engine family; then each codec's own settings.
  const families = [...new Set(engines.map((e) => e.family ?? e.name))]
  for (const family of families) {
    const members = engines.filter((e) => (e.family ?? e.name) === family)
    const skipped = members.find((e) => e.skipped)
    if (skipped) {
      md.push(`- **${family}**: skipped — ${skipped.skipped}`)
      continue
    }
    const noted = members.filter((e) => e.notes)
    const notes = [...new Set(noted.map((e) => `build: ${e.notes.build}; 1 thread: ${e.notes.single}; batch: ${e.notes.batch}`))]
    md.push(`- **${family}** ${members[0].version ?? ''}: ${notes.join(' / ')}.`)
    for (const e of members) {
      if (!e.build) {
        md.push(`  - ${e.name}: failed — ${e.error ?? 'unknown error'}`)
        continue
      }
      const phases = e.build.phases ? ` Build parts: ${Object.entries(e.build.phases).map(([p, s]) => `${p} ${fmt(s)} s`).join(', ')}.` : ''
      const mem = e.memory ? ` Index ${fmtBytes(e.memory.bytes)} (${e.memory.source}).` : ''
      const sizes = e.compression ? ` Sizes: ${e.compression.source}.` : ''
      md.push(`  - ${e.name}: ${e.setup ?? ''}.${e.notes?.other ? ` ${e.notes.other}.` : ''}${phases}${mem}${sizes}${e.error ? ` Error: ${e.error}.` : ''}`)
    }
  }
  md.push('')

  md.push('### Method')
  md.push('')
  md.push(`- Same data, queries and metric for every engine; HNSW engines build with m ${m} and efConstruction ${efConstruction}; keys are base row numbers. Ground truth: exact float64 JS scan (${gt.source}); recall@${k} counts ties within 1e-5 of the k-th true distance. Recall is measured on the engines' final results, i.e. after rescoring where they rescore.`)
  md.push(`- Training: vecdex (and faiss) train on the first ${fmt(sampleRows)} base rows with an explicit train() call, timed apart ("train s"); then all ${fmt(n)} rows are added ("build s"). LanceDB trains inside createIndex (its build time); usearch has nothing to train. "–": the codec needs no training.`)
  md.push(`- Sweep: efSearch ${efs.join(', ')} for the HNSW engines (LanceDB HNSW-SQ: a coarser list unless --ef is given; LanceDB IVF_PQ: nprobes). vecdex's compressed indexes and usearch +rescore walk the graph with max(efSearch, k × oversample) candidates and rescore k × oversample: their sweep points below efSearch = k × oversample lower the oversample to ⌊efSearch / k⌋ (labels "efSearch ×oversample"), so their curve has a low-recall end too; from there on efSearch grows at the codec's oversample. LanceDB HNSW-SQ is swept the same way with its refineFactor in place of the oversample. At each step ${runs} runs per mode, the engines taking turns: in a 1-thread run every ${CHUNK} queries (rotating who goes first), then each engine's batch in a rotating order. QPS = ${q} queries / median run time. ${WARMUP_QUERIES} untimed warm-up queries per engine after its build.`)
  md.push(`- An engine's sweep stops once recall ≥ ${STOP_RECALL}, its 1-thread QPS < ${MIN_QPS}, after ${ENGINE_BUDGET_SECONDS} s of timed searches (LanceDB: ${engines.find((e) => e.budgetSeconds)?.budgetSeconds ?? '–'} s, its queries being slow), or when recall has risen by less than ${PLATEAU.gain} over the last ${PLATEAU.points} steps; "best recall" is the highest recall of the sweep.`)
  md.push(`- QPS at fixed recall: log(QPS) interpolated linearly in recall between the two consecutive sweep points that bracket the level. Ratios marked "~" involve a bound.`)
  md.push(`- Memory: "codes" and "rescore" per vector come from each engine's own figures (vecdex compressionStats(): codeSize, vectorBytes ÷ n) or, for the peers, from the code format (usearch i8: d bytes, b1: d/8; LanceDB PQ: numSubVectors bytes, SQ: d bytes; the f32 rows LanceDB refines with live in the table, on disk). "index" is the engine's whole index (vecdex memoryBytes, usearch serialised size, LanceDB index files) ÷ n: graph links and row ids included.`)
  md.push(`- Codecs: ${CODEC_HELP}.`)
  return md.join('\n')
}
