// Suite `eventloop`: async batch searches must leave the event loop free. Waves of 8 concurrent
// `index.search(100 queries)` run for at least 2 s while monitorEventLoopDelay samples the loop.

import { monitorEventLoopDelay } from 'node:perf_hooks'
import { gloveAvailable } from '../datasets.mjs'
import { collectGarbage, fmt, percentile, table } from '../report.mjs'

export const name = 'eventloop'
export const defaultDataset = () => (gloveAvailable() ? 'glove-100k' : 'clustered-100k-100')
export const summary = 'event-loop delay during 8 concurrent async batch searches (target p99 < 10 ms)'

const CONCURRENCY = 8
const BATCH = 100
const MIN_SECONDS = 2
const MIN_WAVES = 3
const TARGET_P99_MS = 10

const ms = (ns) => ns / 1e6

function delayStats(h) {
  return { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max), meanMs: ms(h.mean), samples: h.count }
}

/** Event-loop delay while `work` runs. */
async function monitored(work) {
  const h = monitorEventLoopDelay({ resolution: 1 })
  h.enable()
  const start = process.hrtime.bigint()
  const value = await work()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  h.disable()
  return { ...delayStats(h), seconds, value }
}

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { k, threads, log } = ctx
  const dataset = ctx.load({ queries: ctx.queries ?? CONCURRENCY * BATCH })
  const { n, dim, q } = dataset
  const vecdex = await import('vecdex')
  log(`eventloop: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}; waves of ${CONCURRENCY} × search(${BATCH} queries, k ${k}) for ≥ ${MIN_SECONDS} s`)

  const index = new vecdex.FlatIndex({ dimensions: dim, metric: dataset.metric })
  await index.add(
    new BigUint64Array(n).map((_, i) => BigInt(i)),
    dataset.base,
  )
  const batches = Array.from({ length: CONCURRENCY }, (_, b) => {
    const out = new Float32Array(BATCH * dim)
    for (let i = 0; i < BATCH; i++) {
      const row = (b * BATCH + i) % q
      out.set(dataset.queries.subarray(row * dim, (row + 1) * dim), i * dim)
    }
    return out
  })
  await Promise.all(batches.map((b) => index.search(b, { k }))) // warm-up
  collectGarbage()

  const idle = await monitored(() => new Promise((resolve) => setTimeout(resolve, 500)))
  const latencies = []
  const busy = await monitored(async () => {
    let waves = 0
    const start = performance.now()
    while (waves < MIN_WAVES || performance.now() - start < MIN_SECONDS * 1e3) {
      await Promise.all(
        batches.map(async (b) => {
          const t = performance.now()
          await index.search(b, { k })
          latencies.push(performance.now() - t)
        }),
      )
      waves++
    }
    return waves
  })
  const waves = busy.value
  const queries = waves * CONCURRENCY * BATCH
  const qps = queries / busy.seconds
  // For contrast: how long one blocking searchSync of a batch would hold the loop.
  const t = performance.now()
  index.searchSync(batches[0], { k })
  const blockingMs = performance.now() - t
  index.close()

  const pass = busy.p99Ms < TARGET_P99_MS
  const md = []
  md.push(`## eventloop — ${dataset.name} (${dataset.metric}, n ${fmt(n)}, dim ${dim}, k ${k}, ${threads} pool threads)`)
  md.push('')
  md.push(
    table(
      ['phase', 'seconds', 'loop delay p50 ms', 'p99 ms', 'max ms', 'mean ms', 'samples'],
      [
        ['idle (baseline, 0.5 s)', fmt(idle.seconds), fmt(idle.p50Ms), fmt(idle.p99Ms), fmt(idle.maxMs), fmt(idle.meanMs), idle.samples],
        [`${waves} waves × ${CONCURRENCY} concurrent search(${BATCH})`, fmt(busy.seconds), fmt(busy.p50Ms), fmt(busy.p99Ms), fmt(busy.maxMs), fmt(busy.meanMs), busy.samples],
      ],
    ),
  )
  md.push('')
  md.push(`**Event-loop p99 delay under load: ${fmt(busy.p99Ms)} ms — ${pass ? 'PASS' : 'FAIL'} (target < ${TARGET_P99_MS} ms).** Throughput ${fmt(qps)} queries/s (${fmt(queries)} queries); per-search latency p50 ${fmt(percentile(latencies, 50))} ms, p99 ${fmt(percentile(latencies, 99))} ms.`)
  md.push(`monitorEventLoopDelay resolution 1 ms (a sample's delay includes up to ~1 ms of timer granularity). For contrast, one blocking searchSync of ${BATCH} queries holds the loop ${fmt(blockingMs)} ms.`)
  return {
    datasetName: dataset.name,
    markdown: md.join('\n'),
    json: {
      dataset: { name: dataset.name, metric: dataset.metric, n, dim, source: dataset.source },
      k,
      threads,
      concurrency: CONCURRENCY,
      batch: BATCH,
      idle,
      busy: { ...busy, value: undefined },
      waves,
      queries,
      qps,
      searchLatencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) },
      blockingSearchSyncMs: blockingMs,
      targetP99Ms: TARGET_P99_MS,
      pass,
    },
  }
}
