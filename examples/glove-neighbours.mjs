// The main job: index the real GloVe 6B 100d word vectors and print the nearest words to a few
// query words, with the search speed. Exact search (FlatIndex) for now; HNSW will follow.
//
//   npm ci && npm run demo
import { FlatIndex, capabilities } from 'vecdex'
import { loadGloveAll } from '../benchmark/datasets.mjs'

const QUERY_WORDS = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['king', 'paris', 'computer', 'guitar', 'einstein', 'sushi']
const NEIGHBOURS = 8

const t0 = performance.now()
const { words, dim, vectors } = loadGloveAll((message) => console.log(message))
const row = new Map(words.map((word, i) => [word, i]))
console.log(`GloVe 6B ${dim}d: ${words.length.toLocaleString()} words loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

const index = new FlatIndex({ dimensions: dim, metric: 'cosine' })
const t1 = performance.now()
// Keys are row numbers; the stream ingests in native batches with a progress callback.
await index.addStream(
  (function* () {
    const batch = 50_000
    for (let start = 0; start < words.length; start += batch) {
      const end = Math.min(start + batch, words.length)
      yield { keys: Uint32Array.from({ length: end - start }, (_, i) => start + i), vectors: vectors.subarray(start * dim, end * dim) }
    }
  })(),
  { batchSize: 65_536, onProgress: ({ added }) => process.stdout.isTTY && process.stdout.write(`\rindexed ${added.toLocaleString()} vectors`) },
)
console.log(`${process.stdout.isTTY ? '\r' : ''}indexed ${index.size.toLocaleString()} vectors in ${((performance.now() - t1) / 1000).toFixed(2)} s, ${(index.memoryBytes / 2 ** 20).toFixed(0)} MiB native memory`)

const known = QUERY_WORDS.filter((w) => row.has(w))
for (const missing of QUERY_WORDS.filter((w) => !row.has(w))) console.log(`"${missing}" is not in the vocabulary`)
const queries = new Float32Array(known.length * dim)
known.forEach((word, i) => queries.set(vectors.subarray(row.get(word) * dim, (row.get(word) + 1) * dim), i * dim))
const results = await index.search(queries, { k: NEIGHBOURS + 1 })
console.log('\nnearest words (cosine distance, exact search):')
known.forEach((word, i) => {
  const hits = results.get(i)
  const list = []
  hits.numberKeys().forEach((key, j) => {
    if (key !== row.get(word) && list.length < NEIGHBOURS) list.push(`${words[key]} ${hits.distances[j].toFixed(3)}`)
  })
  console.log(`  ${word.padEnd(10)} → ${list.join(', ')}`)
})

// Speed: one batch of 1,000 words on the thread pool, and single queries on the calling thread.
const batchRows = Array.from({ length: 1000 }, (_, i) => (i * 7919) % words.length)
const batch = new Float32Array(batchRows.length * dim)
batchRows.forEach((r, i) => batch.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim))
await index.search(batch, { k: 10 }) // warm-up
const batchTimes = []
for (let run = 0; run < 3; run++) {
  const start = performance.now()
  await index.search(batch, { k: 10 })
  batchTimes.push(performance.now() - start)
}
batchTimes.sort((a, b) => a - b)
const singleTimes = []
for (let i = 0; i < 50; i++) {
  const start = performance.now()
  index.searchSync(batch.subarray(i * dim, (i + 1) * dim), { k: 10 })
  singleTimes.push(performance.now() - start)
}
singleTimes.sort((a, b) => a - b)
const caps = capabilities()
const batchMs = batchTimes[1]
console.log(
  `\nspeed: batch of 1,000 queries (k = 10) in ${batchMs.toFixed(0)} ms = ${Math.round(1000 / (batchMs / 1000)).toLocaleString()} queries/s ` +
    `(${((2 * 1000 * index.size * dim) / (batchMs / 1000) / 1e9).toFixed(0)} GFLOP/s); single query ${singleTimes[25].toFixed(2)} ms (median)`,
)
console.log(`kernels: scan ${caps.scanKernel}, simsimd ${caps.simsimdBackends.join('/') || 'serial'}, ${caps.threads} threads`)
index.close()
