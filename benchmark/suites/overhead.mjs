// Suite `overhead`: what the JS binding adds to one synchronous search on a small index. The
// same query is searched in a tight loop through the public API, through the raw native class
// (preallocated outputs), and inside Rust alone (the raw native class's measureRustSearchNanos,
// which no public class offers); rounds alternate so all three see the same machine state.

import { createRequire } from 'node:module'
import path from 'node:path'
import { repoRoot } from '../datasets.mjs'
import { collectGarbage, fmt, median, table } from '../report.mjs'

export const name = 'overhead'
export const defaultDataset = 'clustered-1k-128'
export const summary = 'sync single-query overhead of the binding over the Rust search (target ≤ 2 µs)'

const ITERATIONS = 4_000
/** A round lasts at most about this long: larger indexes (e.g. --dataset) get fewer iterations. */
const ROUND_BUDGET_SECONDS = 0.5
/** Many short rounds, each measuring all three paths back to back: the machine's speed drifts
 * by tens of percent over seconds here, so overheads are medians of per-round (paired) differences. */
const ROUNDS = 41
const TARGET_US = 2

function nanosPerCall(fn, iterations) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) fn()
  return Number(process.hrtime.bigint() - start) / iterations
}

/**
 * The native search that FlatIndex.searchSync makes (searchIntoSyncFast through a search
 * handle) with a preallocated output buffer: `capacity` u64 keys, then `capacity` f32
 * distances, then one u32 count per query, from byte `offset`.
 */
function rawBindingCall(native, dataset, keys, query, k, stride) {
  const index = new native.NativeFlatIndex(dataset.dim, dataset.metric)
  index.addSync(keys, dataset.base)
  const handle = index.searchHandle()
  const bytes = new Uint8Array(stride * 12 + 8)
  const keysView = new BigUint64Array(bytes.buffer, 0, stride)
  const call = () => native.searchIntoSyncFast(handle, query, k, 0, true, null, null, bytes, 0, stride)
  try {
    if (call() === stride) return { index, form: 'searchIntoSyncFast(handle, queries, k, 0, true, null, null, out, 0, capacity)', call, keys: () => keysView }
    return { index, call: null, reason: 'native searchIntoSyncFast returned an unexpected stride' }
  } catch (error) {
    return { index, call: null, reason: `native searchIntoSyncFast failed (${error?.message ?? error})` }
  }
}

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { k, log } = ctx
  const dataset = ctx.load({ queries: 1 })
  const { n, dim } = dataset
  const vecdex = await import('vecdex')
  const native = createRequire(path.join(repoRoot, 'package.json'))('./index.js')
  log(`overhead: ${dataset.name} (${dataset.metric}), n ${n}, dim ${dim}, k ${k}; ${ROUNDS} rounds of up to ${ITERATIONS} calls`)

  const keys = new BigUint64Array(n).map((_, i) => BigInt(i))
  const index = new vecdex.FlatIndex({ dimensions: dim, metric: dataset.metric })
  index.addSync(keys, dataset.base)
  const query = dataset.queries.slice(0, dim)
  const stride = Math.min(k, n)

  let sink = 0
  const api = () => {
    sink += index.searchSync(query, { k }).k
  }
  const raw = rawBindingCall(native, dataset, keys, query, k, stride)
  const binding = raw.call ?? (() => {})
  // Warm-up (JIT, caches, branch predictors), which also sizes the rounds.
  const perCall = nanosPerCall(api, 200)
  const iterations = Math.max(100, Math.min(ITERATIONS, Math.floor((ROUND_BUDGET_SECONDS * 1e9) / perCall)))
  if (iterations < ITERATIONS) log(`overhead: ${fmt(perCall / 1e3)} µs per call: ${iterations} calls per round instead of ${ITERATIONS}`)
  nanosPerCall(api, iterations)
  if (raw.call) nanosPerCall(binding, iterations)
  raw.index.measureRustSearchNanos(query, k, iterations)

  const samples = { api: [], binding: [], rust: [] }
  for (let r = 0; r < ROUNDS; r++) {
    collectGarbage()
    samples.api.push(nanosPerCall(api, iterations))
    if (raw.call) samples.binding.push(nanosPerCall(binding, iterations))
    samples.rust.push(raw.index.measureRustSearchNanos(query, k, iterations))
  }
  const check = index.searchSync(query, { k })
  const agrees = raw.call ? check.keys.every((key, i) => key === raw.keys()[i]) : undefined
  index.close()
  raw.index.close()

  const rust = median(samples.rust)
  const rows = [
    { what: 'FlatIndex.searchSync(query, { k }) — public API', key: 'api' },
    { what: 'native searchIntoSyncFast — binding only, preallocated outputs', key: 'binding' },
    { what: 'Rust search alone (measureRustSearchNanos)', key: 'rust' },
  ].filter((r) => samples[r.key].length > 0).map((r) => ({
    ...r,
    medianNs: median(samples[r.key]),
    minNs: Math.min(...samples[r.key]),
    maxNs: Math.max(...samples[r.key]),
    overheadUs: median(samples[r.key].map((ns, round) => ns - samples.rust[round])) / 1e3,
    overheadMinUs: (Math.min(...samples[r.key]) - Math.min(...samples.rust)) / 1e3,
  }))
  const apiOverheadUs = rows[0].overheadUs
  const pass = apiOverheadUs <= TARGET_US

  const md = []
  md.push(`## overhead — ${dataset.name} (${dataset.metric}, n ${fmt(n)}, dim ${dim}, k ${k}; ${ROUNDS} rounds × ${fmt(iterations)} calls of each path)`)
  md.push('')
  md.push(
    table(
      ['call', 'median µs/call', 'min µs', 'max µs', 'over Rust µs (median of paired rounds)', 'over Rust µs (minima)', 'Rust share'],
      rows.map((r) => [r.what, fmt(r.medianNs / 1e3), fmt(r.minNs / 1e3), fmt(r.maxNs / 1e3), r.key === 'rust' ? '–' : fmt(r.overheadUs), r.key === 'rust' ? '–' : fmt(r.overheadMinUs), `${fmt((rust / r.medianNs) * 100)}%`]),
    ),
  )
  md.push('')
  const rawRow = rows.find((r) => r.key === 'binding')
  md.push(
    `**Binding overhead of searchSync: ${fmt(apiOverheadUs)} µs per call — ${pass ? 'PASS' : 'FAIL'} (target ≤ ${TARGET_US} µs).** ` +
      `(Difference of minima, less sensitive to other load: ${fmt(rows[0].overheadMinUs)} µs.) ` +
      (rawRow ? `Raw binding alone: ${fmt(rawRow.overheadUs)} µs (${raw.form}); results of both paths ${agrees ? 'agree' : 'DIFFER'}.` : `Raw binding row skipped: ${raw.reason}.`),
  )
  return {
    datasetName: dataset.name,
    markdown: md.join('\n'),
    json: {
      dataset: { name: dataset.name, metric: dataset.metric, n, dim, source: dataset.source },
      k,
      iterations,
      rounds: ROUNDS,
      samplesNs: samples,
      rows,
      overheadUs: apiOverheadUs,
      targetUs: TARGET_US,
      pass,
      rawBinding: raw.form ?? raw.reason,
      resultsAgree: agrees,
      sink,
    },
  }
}
