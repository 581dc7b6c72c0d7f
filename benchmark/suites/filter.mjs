// Suite `filter`: HNSW search with an allow-list of keys, at selectivities from 50% down to
// 0.1%. vecdex applies the list inside the graph walk, and scans the admitted vectors exactly
// when its rule says that is cheaper (admitted² ≤ 2·m·efSearch·n); hnswlib-node, where it
// installs, takes a JS callback per candidate. Recall@k is against an exact float64 scan of the
// admitted vectors only; queries run one at a time on the JS thread.

import { groundTruth, recallAtK } from '../groundtruth.mjs'
import { mulberry32 } from '../datasets.mjs'
import { loadPeer, loadVecdex, rowKeys } from '../adapters/common.mjs'
import { fmt, median, table } from '../report.mjs'
import { minilmBuildable } from '../minilm-data.mjs'

export const name = 'filter'
/** Real transformer embeddings where they can be built (a source checkout), else GloVe. */
export const defaultDataset = () => (minilmBuildable() ? 'wordnet-minilm' : 'glove-100k')
export const summary = 'filtered HNSW search: recall@k and QPS with allow-lists of 50% … 0.1% of the keys (vecdex; hnswlib-node with a filter callback)'

const SELECTIVITIES = [0.5, 0.2, 0.1, 0.01, 0.001]
const EFS = [64, 128]
const M = 16
const EF_CONSTRUCTION = 128
const RUNS = 3
const BUDGET_SECONDS = 5

/** A seeded sample of `count` distinct rows of `0 … n − 1`, ascending. */
function sampleRows(n, count, seed) {
  const rand = mulberry32(seed)
  const order = Int32Array.from({ length: n }, (_, i) => i)
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (n - i))
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  return order.slice(0, count).sort()
}

/** The dataset restricted to `rows` (its ground truth is the filtered exact answer). */
function restrict(dataset, rows, label) {
  const { dim } = dataset
  const base = new Float32Array(rows.length * dim)
  rows.forEach((r, i) => base.set(dataset.base.subarray(r * dim, (r + 1) * dim), i * dim))
  return { ...dataset, name: `${dataset.name}-${label}`, n: rows.length, base }
}

/**
 * Runs `search(i)` over the queries RUNS times; median QPS and the first run's results. A slow
 * engine stops after BUDGET_SECONDS: its first run then covers only the first queries (recall
 * is computed over those), and it is not repeated.
 */
function timeQueries(q, search) {
  let first
  const qps = []
  for (let run = 0; run < RUNS; run++) {
    const out = []
    const start = performance.now()
    for (let i = 0; i < q; i++) {
      out.push(search(i))
      if (performance.now() - start > BUDGET_SECONDS * 1000) break
    }
    qps.push(out.length / ((performance.now() - start) / 1000))
    first ??= out
    if (out.length < q) break
  }
  return { qps: median(qps), rows: first, queries: first.length }
}

/** @param {import('../run.mjs').SuiteContext} ctx */
export async function run(ctx) {
  const { k, log } = ctx
  const dataset = ctx.load({ queries: ctx.queries ?? 500 })
  const { n, q, dim } = dataset
  log(`filter: ${dataset.name} (${dataset.metric}), n ${n}, ${q} queries, k ${k}; m ${M}, efConstruction ${EF_CONSTRUCTION}`)
  const queryRows = Array.from({ length: q }, (_, i) => dataset.queries.subarray(i * dim, (i + 1) * dim))

  const vecdexLoaded = await loadVecdex()
  if (vecdexLoaded.error) throw new Error(vecdexLoaded.error)
  const vecdex = new vecdexLoaded.module.HnswIndex({ dimensions: dim, metric: dataset.metric, m: M, efConstruction: EF_CONSTRUCTION })
  await vecdex.add(rowKeys(n), dataset.base)
  log('vecdex: built')

  const hnswlibLoaded = ctx.peers === 'all' || ctx.peers.split(',').includes('hnswlib') ? loadPeer('hnswlib-node') : { error: 'not requested' }
  let hnswlib = null
  if (hnswlibLoaded.error) log(`hnswlib: skipped — ${hnswlibLoaded.error}`)
  else {
    const space = { cosine: 'cosine', l2sq: 'l2', dot: 'ip' }[dataset.metric]
    hnswlib = new hnswlibLoaded.module.HierarchicalNSW(space, dim)
    hnswlib.initIndex(n, M, EF_CONSTRUCTION, 100)
    for (let i = 0; i < n; i++) hnswlib.addPoint(Array.from(dataset.base.subarray(i * dim, (i + 1) * dim)), i)
    log('hnswlib: built')
  }
  const hnswlibQueries = hnswlib ? queryRows.map((r) => Array.from(r)) : []

  const points = []
  for (const selectivity of SELECTIVITIES) {
    const count = Math.max(k, Math.round(selectivity * n))
    const rows = sampleRows(n, count, 7 + count)
    const gt = await groundTruth(restrict(dataset, rows, `allow-${count}`), k, { log })
    // Results come back as base rows; the ground truth numbers the admitted rows 0 … count − 1.
    const position = new Map(Array.from(rows, (r, i) => [r, i]))
    const toAdmitted = (keys) => Array.from(keys, (key) => position.get(Number(key)) ?? -1)
    const filter = new vecdexLoaded.module.KeyFilter(rows)
    const allowed = new Set(rows)
    for (const efSearch of EFS) {
      const exactScan = count * count <= 2 * M * efSearch * n
      const mine = timeQueries(q, (i) => toAdmitted(vecdex.searchSync(queryRows[i], { k, efSearch, filter }).get(0).keys))
      const point = { selectivity, admitted: count, efSearch, vecdexPath: exactScan ? 'exact scan' : 'graph walk', vecdexRecall: recallAtK(mine.rows, gt, k), vecdexQps: mine.qps }
      if (hnswlib) {
        hnswlib.setEf(efSearch)
        const theirs = timeQueries(q, (i) => toAdmitted(hnswlib.searchKnn(hnswlibQueries[i], k, (label) => allowed.has(label)).neighbors))
        Object.assign(point, { hnswlibRecall: recallAtK(theirs.rows, gt, k), hnswlibQps: theirs.qps, hnswlibQueries: theirs.queries })
      }
      log(`allow ${count} (${selectivity * 100}%), ef ${efSearch}: vecdex ${point.vecdexPath} recall ${fmt(point.vecdexRecall, 4)} ${fmt(point.vecdexQps)} QPS` + (hnswlib ? `; hnswlib recall ${fmt(point.hnswlibRecall, 4)} ${fmt(point.hnswlibQps)} QPS` : ''))
      points.push(point)
    }
  }
  vecdex.close()

  const header = ['admitted', 'efSearch', 'vecdex path', 'vecdex recall@' + k, 'vecdex QPS', ...(hnswlib ? ['hnswlib recall@' + k, 'hnswlib QPS', 'QPS ratio'] : [])]
  const body = points.map((p) => [
    `${p.admitted.toLocaleString('en-US')} (${p.selectivity * 100}%)`,
    p.efSearch,
    p.vecdexPath,
    fmt(p.vecdexRecall, 4),
    fmt(p.vecdexQps),
    ...(hnswlib ? [fmt(p.hnswlibRecall, 4) + (p.hnswlibQueries < q ? ` (${p.hnswlibQueries} q)` : ''), fmt(p.hnswlibQps), `${fmt(p.vecdexQps / p.hnswlibQps)}×`] : []),
  ])
  const markdown = [
    `## filter — ${dataset.name} (${dataset.metric}, n ${n.toLocaleString('en-US')}, ${q} queries, k ${k}; m ${M}, efConstruction ${EF_CONSTRUCTION})`,
    '',
    table(header, body),
    '',
    '- Allow-lists: seeded random samples of the base rows, passed to vecdex as a KeyFilter built once per list (its slot set is cached while the index does not change) and to hnswlib-node as a callback on a Set. Ground truth: exact float64 scan of the admitted rows.',
    `- A slow engine stops a point after ${BUDGET_SECONDS} s: "(N q)" marks recall and QPS over the first N queries only.`,
    `- vecdex path: its rule scans the admitted vectors exactly when admitted² ≤ 2·m·efSearch·n, else walks the graph and keeps only admitted nodes; QPS is the median of ${RUNS} runs, one query at a time on the JS thread.`,
  ].join('\n')
  return { datasetName: dataset.name, markdown, json: { dataset: { name: dataset.name, n, q, dim, metric: dataset.metric }, k, m: M, efConstruction: EF_CONSTRUCTION, points } }
}
