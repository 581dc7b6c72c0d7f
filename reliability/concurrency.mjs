/**
 * Part 4, concurrency: one HnswIndex (48-d uniform random data, l2sq: hard enough that recall
 * shows graph quality) and 8 async callers for 60 s: 4 add batches of fresh keys (1–32 vectors
 * each, `await index.add`, paced to about 40,000 vectors in all so the searches get most of the
 * pool) and 4 run `await index.search` (batches
 * of 1–32 queries, random k and efSearch, every 8th with an allow-list filter), checking each
 * result as it arrives: rows sorted, keys distinct, only keys already submitted, filters obeyed,
 * and (one search in 8) each distance recomputed from its key's vector.
 *
 * Then: every acknowledged key (its add resolved) is stored with its exact vector (get), and
 * nothing else is; a self-query of ≥ 5,000 stored vectors (k = 1, efSearch 128) finds itself;
 * recall@10 (efSearch 64) of 1,000 new queries against exact results (FlatIndex) is within
 * 0.01 of the recall of a sequential build of the same data (one add call).
 *
 * Targets: 0 failed calls or bad results; 0 acknowledged keys missing or wrong; self-query
 * top-1 rate ≥ 0.999; |recall@10 concurrent − sequential| ≤ 0.01.
 */
import { createResult, labelOf, mulberry32, progress, randInt, randomMatrix, recallAt, scaled, vecdex } from './lib/common.mjs'

export const title = 'concurrency'

const { FlatIndex, HnswIndex } = vecdex
const DIM = 48
const OPTIONS = { dimensions: DIM, metric: 'l2sq', m: 16, efConstruction: 128, seed: 7 }
const ADDERS = 4
const SEARCHERS = 4
const RECALL_QUERIES = 1000
const K = 10

/** Squared Euclidean distance in float64: the reference for the distances searches return. */
function l2sq(a, b) {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2
  return sum
}

/**
 * What is wrong with one result row, or null: more than k hits, duplicate keys, distances not
 * sorted or not finite, a key never submitted (≥ `limit`), a key outside the filter `allowed`,
 * or (when `query` is given) a distance that is not its key's.
 */
function problemOf({ keys, distances }, { k, limit, allowed, query, row }) {
  const list = [...keys]
  if (list.length > k) return `${list.length} hits for k = ${k}`
  if (new Set(list).size !== list.length) return 'duplicate keys'
  if (distances.some((d, i) => !Number.isFinite(d) || (i > 0 && d < distances[i - 1]))) return 'distances not sorted or not finite'
  const unknown = list.find((key) => key >= limit)
  if (unknown !== undefined) return `key ${unknown} never submitted`
  if (allowed && list.some((key) => !allowed.has(Number(key)))) return 'a key outside the filter'
  if (query && list.some((key, i) => Math.abs(l2sq(query, row(Number(key))) - distances[i]) > 1e-4 * Math.max(1, distances[i]))) {
    return "a distance that is not its key's"
  }
  return null
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function run({ scale }) {
  const r = createResult()
  const durationMs = scaled(60_000, scale)
  const target = scaled(40_000, scale)
  const pool = Math.ceil(target * 1.5)
  const data = randomMatrix(pool, DIM, 31)
  const queries = randomMatrix(RECALL_QUERIES, DIM, 32)
  const row = (i) => data.subarray(i * DIM, (i + 1) * DIM)
  const index = new HnswIndex(OPTIONS)

  const counts = { addCalls: 0, addedVectors: 0, searchCalls: 0, searchedQueries: 0, filteredSearches: 0, failedCalls: 0, badResults: 0 }
  const acknowledged = []
  let issued = 0
  const started = performance.now()
  const end = started + durationMs

  async function adder(seed) {
    const next = mulberry32(seed)
    while (performance.now() < end && issued < pool) {
      // Pace: stay near `target` vectors over the whole duration.
      const ahead = (issued / target) * durationMs - (performance.now() - started)
      if (ahead > 0) await sleep(Math.min(ahead, end - performance.now()))
      if (performance.now() >= end) break
      const start = issued
      const n = Math.min(randInt(next, 1, 32), pool - start)
      issued += n
      const keys = Uint32Array.from({ length: n }, (_, i) => start + i)
      try {
        await index.add(keys, data.subarray(start * DIM, (start + n) * DIM))
        counts.addCalls++
        counts.addedVectors += n
        for (const key of keys) acknowledged.push(key)
      } catch (error) {
        counts.failedCalls++
        r.fail(`add of keys ${start}..${start + n - 1}: ${labelOf(error)}`)
      }
    }
  }

  async function searcher(seed) {
    const next = mulberry32(seed)
    while (performance.now() < end) {
      const n = randInt(next, 1, 32)
      const first = randInt(next, 0, RECALL_QUERIES - n)
      const k = randInt(next, 1, 20)
      const options = { k, efSearch: randInt(next, k, 128) }
      let allowed
      if (counts.searchCalls % 8 === 7 && acknowledged.length > 0) {
        allowed = new Set(Array.from({ length: 200 }, () => acknowledged[Math.floor(next() * acknowledged.length)]))
        options.filter = [...allowed]
        counts.filteredSearches++
      }
      const verify = counts.searchCalls % 8 === 3 // recompute distances on one search in 8
      try {
        const results = await index.searchBatch(queries.subarray(first * DIM, (first + n) * DIM), options)
        const limit = issued // a hit must be a key submitted before the search resolved
        counts.searchCalls++
        counts.searchedQueries += n
        for (let q = 0; q < n; q++) {
          const query = queries.subarray((first + q) * DIM, (first + q + 1) * DIM)
          const problem = problemOf(results.get(q), { k, limit, allowed, query: verify ? query : null, row })
          if (problem) {
            counts.badResults++
            r.fail(`search (k ${k}, efSearch ${options.efSearch}${allowed ? ', filtered' : ''}) row ${q}: ${problem}`)
          }
        }
      } catch (error) {
        counts.failedCalls++
        r.fail(`search: ${labelOf(error)}`)
      }
    }
  }

  const ticker = setInterval(() => progress(`${((performance.now() - started) / 1000).toFixed(0)} s: ${counts.addedVectors} vectors added in ${counts.addCalls} calls, ${counts.searchedQueries} queries in ${counts.searchCalls} calls`), 15_000)
  await Promise.all([
    ...Array.from({ length: ADDERS }, (_, i) => adder(100 + i)),
    ...Array.from({ length: SEARCHERS }, (_, i) => searcher(200 + i)),
  ])
  clearInterval(ticker)
  const seconds = (performance.now() - started) / 1000

  // Every acknowledged key holds its exact vector, and the index holds nothing else.
  let missing = 0
  for (const key of acknowledged) {
    const stored = index.get(key)
    if (!stored || !stored.every((v, d) => v === data[key * DIM + d])) {
      if (missing++ < 5) r.fail(`acknowledged key ${key}: ${stored ? 'wrong vector' : 'missing'}`)
    }
  }
  const size = index.size

  // Self-query of a sample of stored vectors.
  const next = mulberry32(9)
  const sampleSize = Math.min(acknowledged.length, scaled(10_000, scale, Math.min(5000, acknowledged.length)))
  const sample = Array.from({ length: sampleSize }, () => acknowledged[Math.floor(next() * acknowledged.length)])
  const sampleVectors = new Float32Array(sampleSize * DIM)
  sample.forEach((key, i) => sampleVectors.set(row(key), i * DIM))
  const self = await index.searchBatch(sampleVectors, { k: 1, efSearch: 128 })
  let selfHits = 0
  for (let i = 0; i < sampleSize; i++) {
    const hit = self.get(i)
    if (hit.keys.length > 0 && (Number(hit.keys[0]) === sample[i] || hit.distances[0] === 0)) selfHits++
  }
  const selfRate = selfHits / sampleSize

  // Recall@10 against exact results, concurrent build versus a sequential one of the same data.
  const storedKeys = Uint32Array.from(acknowledged).sort()
  const storedVectors = new Float32Array(storedKeys.length * DIM)
  storedKeys.forEach((key, i) => storedVectors.set(row(key), i * DIM))
  const flat = new FlatIndex({ dimensions: DIM, metric: 'l2sq' })
  flat.addSync(storedKeys, storedVectors)
  const exact = await flat.searchBatch(queries, { k: K })
  const sequential = new HnswIndex(OPTIONS)
  const buildStarted = performance.now()
  await sequential.add(storedKeys, storedVectors)
  const buildSeconds = (performance.now() - buildStarted) / 1000
  const recallConcurrent = recallAt(await index.searchBatch(queries, { k: K, efSearch: 64 }), exact, K)
  const recallSequential = recallAt(await sequential.searchBatch(queries, { k: K, efSearch: 64 }), exact, K)
  for (const i of [index, sequential, flat]) i.close()

  for (const [name, value] of Object.entries(counts)) r.figure(name, value)
  r.figure('seconds', seconds)
  r.figure('acknowledgedKeys', acknowledged.length)
  r.figure('indexSize', size)
  r.figure('missingOrWrongKeys', missing)
  r.figure('selfQuerySample', sampleSize)
  r.figure('selfQueryTop1Rate', selfRate)
  r.figure('recallConcurrent', recallConcurrent)
  r.figure('recallSequential', recallSequential)
  r.figure('sequentialBuildSeconds', buildSeconds)
  r.line(`${ADDERS} adders + ${SEARCHERS} searchers for ${seconds.toFixed(1)} s on HNSW (${DIM}-d, l2sq, m 16, efConstruction 128)`)
  r.line(`adds: ${counts.addCalls} calls, ${counts.addedVectors} vectors; searches: ${counts.searchCalls} calls (${counts.filteredSearches} filtered), ${counts.searchedQueries} queries`)
  r.line(`keys acknowledged ${acknowledged.length}, index size ${size}, missing or wrong ${missing}`)
  r.line(`self-query top-1 (efSearch 128): ${selfHits}/${sampleSize} = ${selfRate.toFixed(5)}`)
  r.line(`recall@${K} of ${RECALL_QUERIES} queries (efSearch 64): concurrent ${recallConcurrent.toFixed(4)}, sequential ${recallSequential.toFixed(4)} (built in ${buildSeconds.toFixed(1)} s)`)
  r.check('failed calls', counts.failedCalls, '==', 0)
  r.check('bad search results during the run', counts.badResults, '==', 0)
  r.check('acknowledged keys missing or wrong', missing, '==', 0)
  r.check('index size − acknowledged keys', size - acknowledged.length, '==', 0)
  r.check('self-query sample', sampleSize, '>=', Math.min(5000, acknowledged.length))
  r.check('self-query top-1 rate', selfRate, '>=', 0.999)
  r.check('|recall@10 concurrent − sequential|', Math.abs(recallConcurrent - recallSequential), '<=', 0.01)
  return r.result
}
