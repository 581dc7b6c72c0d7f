// The main job: index the real GloVe 6B 100d word vectors in an HNSW graph, print the nearest
// words to a few query words, and show recall against exact search next to the speed of both.
// Recall is measured on held-out words: 1,000 words are left out of both indexes and used as
// queries, so no query finds itself (a query that is in the index is its own nearest neighbour,
// which inflates recall). Every figure printed is measured by this run, on the machine named in
// its first line.
//
//   npm ci && npm run demo [word ...]
import os from 'node:os'
import { FlatIndex, HnswIndex, capabilities } from 'vecdex'
import { loadGloveAll } from '../benchmark/datasets.mjs'

const QUERY_WORDS = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['king', 'paris', 'computer', 'guitar', 'einstein', 'sushi']
const NEIGHBOURS = 8
const K = 10
const RECALL_QUERIES = 1000
const seconds = (start) => ((performance.now() - start) / 1000).toFixed(2)

const caps = capabilities()
console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${caps.arch}; vecdex pool ${caps.threads} threads, kernels ${caps.kernels.paddedRows} (graph walk) / ${caps.kernels.blockedScan} (exact scan)`)
const t0 = performance.now()
const { words, dim, vectors } = loadGloveAll((message) => console.log(message))
const row = new Map(words.map((word, i) => [word, i]))
console.log(`GloVe 6B ${dim}d: ${words.length.toLocaleString()} words loaded in ${seconds(t0)} s`)

// Held-out queries: every (words / 1,000)-th word, never one of the words shown above.
const shown = new Set(QUERY_WORDS.map((w) => row.get(w)).filter((r) => r !== undefined))
const stride = Math.floor(words.length / RECALL_QUERIES)
const heldOut = Array.from({ length: RECALL_QUERIES }, (_, i) => i * stride + 1).map((r) => (shown.has(r) ? r + 1 : r))
const isHeldOut = new Uint8Array(words.length)
for (const r of heldOut) isHeldOut[r] = 1
const baseRows = Uint32Array.from({ length: words.length - heldOut.length })
for (let r = 0, j = 0; r < words.length; r++) if (!isHeldOut[r]) baseRows[j++] = r
const baseVectors = new Float32Array(baseRows.length * dim)
baseRows.forEach((r, j) => baseVectors.set(vectors.subarray(r * dim, (r + 1) * dim), j * dim))

// Keys are row numbers; the stream ingests in native batches with a progress callback.
function* batches() {
  const batch = 50_000
  for (let start = 0; start < baseRows.length; start += batch) {
    const end = Math.min(start + batch, baseRows.length)
    yield { keys: baseRows.subarray(start, end), vectors: baseVectors.subarray(start * dim, end * dim) }
  }
}
const progress = ({ added }) => process.stdout.isTTY && process.stdout.write(`\rindexed ${added.toLocaleString()} vectors`)

const index = new HnswIndex({ dimensions: dim, metric: 'cosine', m: 16, efConstruction: 128 })
const t1 = performance.now()
await index.addStream(batches(), { batchSize: 65_536, onProgress: progress })
const stats = index.stats()
console.log(
  `${process.stdout.isTTY ? '\r' : ''}HNSW: ${index.size.toLocaleString()} vectors linked in ${seconds(t1)} s on ${caps.threads} threads ` +
    `(m 16, efConstruction 128; ${stats.levels} layers, mean degree ${stats.meanDegree.toFixed(1)}, ${(index.memoryBytes / 2 ** 20).toFixed(0)} MiB)`,
)
const exact = new FlatIndex({ dimensions: dim, metric: 'cosine' })
await exact.add(baseRows, baseVectors)

const known = QUERY_WORDS.filter((w) => row.has(w))
for (const missing of QUERY_WORDS.filter((w) => !row.has(w))) console.log(`"${missing}" is not in the vocabulary`)
const vectorOf = (r) => vectors.subarray(r * dim, (r + 1) * dim)
console.log('\nnearest words (HNSW, efSearch 128; cosine distance; * = not in the exact top list):')
for (const word of known) {
  const q = vectorOf(row.get(word))
  const truth = new Set(exact.searchSync(q, { k: NEIGHBOURS + 1 }).get(0).numberKeys())
  const hits = index.searchSync(q, { k: NEIGHBOURS + 1, efSearch: 128 }).get(0)
  const list = []
  hits.numberKeys().forEach((key, j) => {
    if (key !== row.get(word) && list.length < NEIGHBOURS) list.push(`${words[key]} ${hits.distances[j].toFixed(3)}${truth.has(key) ? '' : '*'}`)
  })
  console.log(`  ${word.padEnd(10)} → ${list.join(', ')}`)
}

// Recall@10 against exact search over the same base, and single-query speed on this thread,
// for the held-out words.
const queries = heldOut.map(vectorOf)
const timed = (search) => {
  const start = performance.now()
  const rows = queries.map((q) => Array.from(search(q).keys))
  return { rows, qps: queries.length / ((performance.now() - start) / 1000) }
}
const truth = timed((q) => exact.searchSync(q, { k: K }))
console.log(`\nrecall@${K} against exact search, ${RECALL_QUERIES.toLocaleString()} held-out words (not in the index), one query at a time on this thread:`)
console.log(`  exact (FlatIndex)      recall 1.000   ${Math.round(truth.qps).toLocaleString().padStart(7)} queries/s`)
for (const efSearch of [32, 64, 128, 256]) {
  timed((q) => index.searchSync(q, { k: K, efSearch })) // warm-up
  const run = timed((q) => index.searchSync(q, { k: K, efSearch }))
  let hits = 0
  run.rows.forEach((keys, i) => {
    const want = new Set(truth.rows[i])
    hits += keys.filter((key) => want.has(key)).length
  })
  const recall = hits / (RECALL_QUERIES * K)
  console.log(
    `  HNSW efSearch ${String(efSearch).padEnd(8)} recall ${recall.toFixed(3)}   ${Math.round(run.qps).toLocaleString().padStart(7)} queries/s  (${(run.qps / truth.qps).toFixed(0)}× exact)`,
  )
}
index.close()
exact.close()
