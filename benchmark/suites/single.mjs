// Suite `single`: one query at a time over a large f32 index. A single-query exact scan reads
// every vector once, so it is bound by memory bandwidth: we compare the bytes it reads per
// second with the machine's read bandwidth measured in the same run (1 and --threads threads).

import { createRequire } from 'node:module'
import path from 'node:path'
import { readyAdapters } from '../adapters/index.mjs'
import { repoRoot } from '../datasets.mjs'
import { groundTruth, recallAtK } from '../groundtruth.mjs'
import { collectGarbage, fmt, fmtPercent, fmtRate, fmtRatio, median, percentile, table, timeIt } from '../report.mjs'

export const name = 'single'
export const defaultDataset = 'clustered-1m-128'
export const summary = 'single-query exact search (f32): median ms/query, bytes read per second vs measured memory bandwidth'

const BANDWIDTH_BYTES = 512 * 2 ** 20
const WARMUP = 3
/** Peers slower than vecdex run at most this many queries, and stop after PEER_BUDGET_SECONDS. */
const PEER_QUERIES = 20
const PEER_BUDGET_SECONDS = 20

/** Times `searchOne` query by query; returns per-query seconds and the keys found. */
function timeQueries(adapter, dataset, count, k, budgetSeconds = Infinity) {
  const { dim } = dataset
  for (let i = 0; i < Math.min(WARMUP, count); i++) adapter.searchOne(dataset.queries.subarray(i * dim, (i + 1) * dim), k)
  const seconds = []
  const rows = []
  let total = 0
  for (let i = 0; i < count && total < budgetSeconds; i++) {
    const query = dataset.queries.slice(i * dim, (i + 1) * dim)
    const start = process.hrtime.bigint()
    const keys = adapter.searchOne(query, k)
    const s = Number(process.hrtime.bigint() - start) / 1e9
    seconds.push(s)
    total += s
    rows.push(Array.from(keys, Number))
  }
  return { seconds, rows }
}

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { k, threads, log } = ctx
  const dataset = ctx.load({ queries: ctx.queries ?? 50 })
  const { n, dim, q } = dataset
  const bytesPerQuery = n * dim * 4
  log(`single: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}, ${q} queries, k ${k}, ${threads} threads, ${fmt(bytesPerQuery / 2 ** 20)} MiB per scan`)
  const gt = await groundTruth(dataset, k, { log })
  const native = createRequire(path.join(repoRoot, 'package.json'))('./index.js')

  const engines = []
  let vecdexMs
  for await (const adapter of readyAdapters(ctx.peers, engines, log, (a) => Boolean(a.searchOne))) {
    try {
      collectGarbage()
      log(`${adapter.name}: building…`)
      const build = await timeIt(() => adapter.build(dataset, { threads, mode: 'single' }))
      const isVecdex = adapter.name === 'vecdex'
      const count = isVecdex ? q : Math.min(q, PEER_QUERIES)
      log(`${adapter.name}: ${count} single queries…`)
      const { seconds, rows } = timeQueries(adapter, dataset, count, k, isVecdex ? Infinity : PEER_BUDGET_SECONDS)
      const ms = median(seconds) * 1e3
      if (isVecdex) vecdexMs = ms
      engines.push({
        name: adapter.name,
        version: adapter.version,
        call: adapter.singleNote,
        threads: adapter.name === 'hnswlib' ? 1 : threads,
        buildSeconds: build.seconds,
        queries: seconds.length,
        medianMs: ms,
        minMs: Math.min(...seconds) * 1e3,
        p90Ms: percentile(seconds, 90) * 1e3,
        bytesPerSecond: bytesPerQuery / (ms / 1e3),
        recall: recallAtK(rows, gt, k),
      })
    } catch (error) {
      log(`${adapter.name}: failed — ${error?.stack ?? error}`)
      engines.push({ name: adapter.name, error: String(error?.message ?? error) })
    } finally {
      adapter.close()
    }
  }

  collectGarbage()
  const bandwidth = []
  for (const t of [...new Set([1, 2, threads])].filter((t) => t <= threads || t === 1)) {
    log(`read bandwidth: ${fmt(BANDWIDTH_BYTES / 2 ** 20)} MiB on ${t} thread(s), best of 5…`)
    bandwidth.push({ threads: t, bytesPerSecond: native.measureReadBandwidth(BANDWIDTH_BYTES, t, 5) })
  }
  for (const e of engines) {
    if (!e.medianMs) continue
    e.ofBandwidth = Object.fromEntries(bandwidth.map((b) => [`${b.threads}`, e.bytesPerSecond / b.bytesPerSecond]))
    e.vecdexSpeedup = vecdexMs ? e.medianMs / vecdexMs : undefined
  }

  const md = []
  md.push(`## single — ${dataset.name} (${dataset.metric}, f32, n ${fmt(n)}, dim ${dim}, k ${k}, ${threads} threads; ${fmt(bytesPerQuery / 2 ** 20)} MiB read per query)`)
  md.push('')
  const bwHeads = bandwidth.map((b) => `% of read BW ${b.threads}T`)
  md.push(
    table(
      ['engine', 'call', 'threads', 'queries', 'median ms/query', 'p90 ms', 'effective read', ...bwHeads, 'vecdex ×', `recall@${k}`],
      engines.map((e) =>
        e.medianMs
          ? [e.name, e.call, e.threads, e.queries, fmt(e.medianMs), fmt(e.p90Ms), fmtRate(e.bytesPerSecond), ...bandwidth.map((b) => fmtPercent(e.ofBandwidth[`${b.threads}`])), e.name === 'vecdex' ? '1×' : fmtRatio(e.vecdexSpeedup), fmtPercent(e.recall, 2)]
          : [e.name, e.skipped ? 'skipped' : 'failed', '', '', '', '', '', ...bandwidth.map(() => ''), '', ''],
      ),
    ),
  )
  md.push('')
  md.push(`Read bandwidth (measureReadBandwidth, ${fmt(BANDWIDTH_BYTES / 2 ** 20)} MiB, best of 5, same run): ${bandwidth.map((b) => `${b.threads} thread${b.threads > 1 ? 's' : ''} ${fmtRate(b.bytesPerSecond)}`).join(', ')}.`)
  md.push(`Effective read = n·dim·4 bytes / median seconds per query. Peers run at most ${PEER_QUERIES} queries (${PEER_BUDGET_SECONDS} s budget); hnswlib's BruteforceSearch is single-threaded.`)
  for (const e of engines) if (!e.medianMs) md.push(`- ${e.name}: ${e.skipped ? `skipped — ${e.skipped}` : `failed — ${e.error}`}`)
  return {
    datasetName: dataset.name,
    markdown: md.join('\n'),
    json: {
      dataset: { name: dataset.name, metric: dataset.metric, n, q, dim, source: dataset.source },
      k,
      threads,
      bytesPerQuery,
      groundTruth: gt.source,
      bandwidth,
      engines,
    },
  }
}
