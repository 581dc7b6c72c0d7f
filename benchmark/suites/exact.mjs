// Suite `exact`: batch exact search, every engine on the same data and queries, with recall
// against an independent ground truth and the machine's sgemm throughput as the ceiling. Every
// peer runs at its best documented configuration (all threads, inputs converted before the
// timer, the cheapest metric that gives the same ranking); the adapters say how in `batchNote`.

import { readyAdapters } from '../adapters/index.mjs'
import { groundTruth, recallAtK } from '../groundtruth.mjs'
import { blasSummary, measureSgemm } from '../machine.mjs'
import { collectGarbage, fmt, fmtBytes, fmtPercent, fmtRatio, median, table, timeIt } from '../report.mjs'
import { minilmBuildable } from '../minilm-data.mjs'

export const name = 'exact'
/** Real transformer embeddings where they can be built (a source checkout), else GloVe. */
export const defaultDataset = () => (minilmBuildable() ? 'wordnet-minilm' : 'glove-100k')
export const summary = 'batch exact search: median QPS of 5 runs, recall@k, GFLOP/s vs numpy sgemm, vecdex vs best peer'

/** Longest a peer may spend on its timed runs; slower peers get fewer runs (at least one). */
const RUN_BUDGET_SECONDS = 60

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { k, threads, log } = ctx
  const dataset = ctx.load({ queries: ctx.queries ?? 1000 })
  const { q, n, dim } = dataset
  const flops = 2 * q * n * dim
  log(`exact: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}, ${q} queries, k ${k}, ${threads} threads`)
  const gt = await groundTruth(dataset, k, { log })
  const sgemm = await measureSgemm({ threads, shapes: [[q, n, dim]], log })
  if (!sgemm.available) log(`sgemm: unavailable (${sgemm.reason})`)
  const sgemmShape = sgemm.available ? sgemm.shapes[0].gflops : undefined
  const sgemmSquare = sgemm.available ? sgemm.square.gflops : undefined

  const engines = []
  for await (const adapter of readyAdapters(ctx.peers, engines, log)) {
    try {
      collectGarbage()
      log(`${adapter.name}: building…`)
      const build = await timeIt(() => adapter.build(dataset, { threads, mode: 'batch' }))
      // Input conversion to the engine's own form happens here, untimed (see each batchNote).
      const queries = adapter.prepareQueries ? await adapter.prepareQueries(dataset.queries, q) : dataset.queries
      const warm = await timeIt(() => adapter.searchBatch(queries, q, k))
      const recall = recallAtK(warm.value, gt, k)
      const wanted = ctx.runs ?? 5
      const runs = Math.max(1, Math.min(wanted, Math.floor(RUN_BUDGET_SECONDS / Math.max(warm.seconds, 1e-9))))
      log(`${adapter.name}: warm-up ${fmt(warm.seconds)} s, recall ${fmtPercent(recall, 2)}; ${runs} timed run(s)…`)
      const seconds = []
      for (let r = 0; r < runs; r++) seconds.push((await timeIt(() => adapter.searchBatch(queries, q, k))).seconds)
      const s = median(seconds)
      engines.push({
        name: adapter.name,
        version: adapter.version,
        call: adapter.batchNote,
        buildSeconds: build.seconds,
        runs,
        seconds,
        medianSeconds: s,
        qps: q / s,
        gflops: flops / s / 1e9,
        recall,
        memoryBytes: adapter.memoryBytes?.(),
        ofSgemmShape: sgemmShape ? flops / s / 1e9 / sgemmShape : undefined,
        ofSgemmSquare: sgemmSquare ? flops / s / 1e9 / sgemmSquare : undefined,
      })
    } catch (error) {
      log(`${adapter.name}: failed — ${error?.stack ?? error}`)
      engines.push({ name: adapter.name, error: String(error?.message ?? error) })
    } finally {
      adapter.close()
    }
  }

  const measured = engines.filter((e) => e.qps)
  const vecdex = measured.find((e) => e.name === 'vecdex')
  const peers = measured.filter((e) => e.name !== 'vecdex')
  const bestPeer = peers.reduce((best, e) => (!best || e.qps > best.qps ? e : best), null)
  const ratios = {
    vecdexOverBestPeer: vecdex && bestPeer ? vecdex.qps / bestPeer.qps : undefined,
    bestPeer: bestPeer?.name,
    perPeer: Object.fromEntries(peers.map((p) => [p.name, vecdex ? vecdex.qps / p.qps : undefined])),
    vecdexOfSgemmShape: vecdex?.ofSgemmShape,
    vecdexOfSgemmSquare: vecdex?.ofSgemmSquare,
  }

  const md = []
  md.push(`## exact — ${dataset.name} (${dataset.metric}, n ${fmt(n)}, dim ${dim}, ${q} queries, k ${k}, ${threads} threads)`)
  md.push('')
  md.push(
    table(
      ['engine', 'version', `QPS (median of runs)`, 'QPS range', 'ms / batch', `recall@${k}`, 'GFLOP/s', '% of sgemm (same shape)', '% of sgemm 4096³', 'vecdex ×', 'runs', 'build s', 'memory'],
      engines.map((e) =>
        e.qps
          ? [e.name, e.version, fmt(e.qps), `${fmt(q / Math.max(...e.seconds))}–${fmt(q / Math.min(...e.seconds))}`, fmt(e.medianSeconds * 1e3), fmtPercent(e.recall, 2), fmt(e.gflops), fmtPercent(e.ofSgemmShape), fmtPercent(e.ofSgemmSquare), e.name === 'vecdex' ? '1×' : vecdex ? fmtRatio(vecdex.qps / e.qps) : '–', e.runs, fmt(e.buildSeconds), fmtBytes(e.memoryBytes)]
          : [e.name, '', e.skipped ? 'skipped' : 'failed', '', '', '', '', '', '', '', '', '', ''],
      ),
    ),
  )
  md.push('')
  if (vecdex && bestPeer) md.push(`**vecdex / best peer (${bestPeer.name}): ${fmtRatio(ratios.vecdexOverBestPeer)} QPS.**`)
  if (sgemm.available) {
    md.push(
      `sgemm (numpy ${sgemm.blas?.numpy}, ${blasSummary(sgemm)}, best of 5): Q·Bᵀ ${q}×${n}×${dim} ${fmt(sgemmShape)} GFLOP/s into a preallocated result (${fmt(sgemm.shapes[0].gflopsAllocating)} allocating it), 4096³ ${fmt(sgemmSquare)} GFLOP/s` +
        (vecdex ? `; vecdex reaches ${fmtPercent(vecdex.ofSgemmShape)} and ${fmtPercent(vecdex.ofSgemmSquare)} of them.` : '.'),
    )
  } else {
    md.push(`sgemm: unavailable (${sgemm.reason}).`)
  }
  md.push('')
  md.push(`GFLOP/s = 2·q·n·dim / seconds (the dense work of an exact scan); sgemm writes the whole q×n distance matrix, the engines keep only the top k. Ground truth: float64 JS scan (${gt.source}); recall counts ties within 1e-5 of the k-th distance.`)
  md.push(`Every engine runs at its best documented configuration: all ${threads} threads; the queries converted to the form it takes (number[] rows for hnswlib-node and faiss-node, unit rows for usearch under cosine) before the timer; usearch scans cosine data as MetricKind.IP on rows normalised once (not MetricKind.Cos, which recomputes both norms per pair); hnswlib-node, which searches one query per call on the calling thread, runs one index copy per thread in worker threads. How each was called:`)
  for (const e of engines) {
    if (e.qps) md.push(`- ${e.name}: ${e.call}`)
    else md.push(`- ${e.name}: ${e.skipped ? `skipped — ${e.skipped}` : `failed — ${e.error}`}`)
  }
  return {
    datasetName: dataset.name,
    markdown: md.join('\n'),
    json: {
      dataset: { name: dataset.name, metric: dataset.metric, n, q, dim, source: dataset.source },
      k,
      threads,
      groundTruth: gt.source,
      sgemm,
      engines,
      ratios,
    },
  }
}
