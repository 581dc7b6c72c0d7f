import { afterAll, describe, expect, it } from 'vitest'
import { capabilities, HnswIndex, type HnswIndexOptions, SearchResults } from '../dist/index.js'
import { loadSift, randomMatrix, refDistance, rng } from './helpers'
import { childRows, clusteredMatrix, exactSearch, pickRows, recallOf, removeMatrices, row, runChild, sample, selfHitRate, seqKeys, writeMatrix } from './hnsw-helpers'

const sift = loadSift()
if (!sift) console.warn('skipping the HNSW parallel-build test on SIFT: ../shared/data/ngt-sift not found')

afterAll(removeMatrices)

/** Threads of this process's pool: a build here is parallel when there are at least 2. */
const threads = capabilities().threads

/**
 * Builds with the default pool (one `add` of everything, linked in parallel) and searches
 * `queries`. With fewer than 2 threads here, the build runs in a child with VECDEX_THREADS=2 so
 * it is parallel all the same.
 */
async function parallelBuild(base: Float32Array, queries: Float32Array, dim: number, options: HnswIndexOptions, k: number, efSearch: number): Promise<SearchResults> {
  if (threads >= 2) {
    using index = new HnswIndex(options)
    await index.add(seqKeys(base.length / dim), base)
    return index.searchBatch(queries, { k, efSearch })
  }
  const child = await runChild(writeMatrix(base, 'base'), writeMatrix(queries, 'queries'), dim, [{ options, k, efSearch }], 2)
  expect(child.threads).toBe(2)
  return childRows(child.builds[0])
}

describe('HNSW parallel build (the default pool)', () => {
  it(`links one add in parallel on ${threads} threads: every vector's self-query finds it (≥ 99.9 %)`, async () => {
    // Clustered vectors with 50 exact duplicates (a twin at distance 0 counts as found).
    const dim = 32
    const n = 8000
    const base = clusteredMatrix(n, dim, 50, 1, 50)
    const options = { dimensions: dim, metric: 'l2sq', m: 16, efConstruction: 100, seed: 9 } as const
    const self = selfHitRate(await parallelBuild(base, base, dim, options, 1, 128), seqKeys(n))
    expect(self.rate, `${self.misses.length} keys not found first: ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
  })

  it.skipIf(!sift)('on real SIFT (5,000 × 128, cosine): every vector finds itself (≥ 99.9 %)', async () => {
    const { base, dim } = sift!
    const n = base.length / dim
    const self = selfHitRate(await parallelBuild(base, base, dim, { dimensions: dim, metric: 'cosine' }, 1, 128), seqKeys(n))
    expect(self.rate, `${self.misses.length} keys not found first: ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
  })
})

describe('HNSW parallel vs sequential build, and determinism (child processes with VECDEX_THREADS=1)', () => {
  const dim = 24
  const n = 6000
  const base = randomMatrix(n, dim, 201)
  const queries = randomMatrix(300, dim, 202)
  const builds = [
    { options: { dimensions: dim, metric: 'l2sq' as const, m: 12, efConstruction: 100, seed: 42 }, k: 10, efSearch: 128 },
    { options: { dimensions: dim, metric: 'cosine' as const, m: 10, efConstruction: 80, seed: 7, insertionOrder: 'random' as const }, k: 10, efSearch: 128 },
  ]
  let children: Promise<Awaited<ReturnType<typeof runChild>>[]> | undefined
  /** Two sequential builds of each configuration, in two processes at once (started once). */
  const sequential = () => {
    children ??= (() => {
      const basePath = writeMatrix(base, 'base')
      const queriesPath = writeMatrix(queries, 'queries')
      return Promise.all([runChild(basePath, queriesPath, dim, builds, 1), runChild(basePath, queriesPath, dim, builds, 1)])
    })()
    return children
  }

  it('recall@10 of the parallel build is within 0.01 of a sequential build with the same parameters', async () => {
    const [child] = await sequential()
    expect(child.threads).toBe(1)
    const vectorOf = (key: number) => row(base, dim, key)
    for (const [i, build] of builds.entries()) {
      const metric = build.options.metric
      const exact = await exactSearch(base, seqKeys(n), dim, metric, queries, 10)
      const serial = recallOf(childRows(child.builds[i]), exact, queries, dim, metric, vectorOf, 10)
      const parallel = recallOf(await parallelBuild(base, queries, dim, build.options, build.k, build.efSearch), exact, queries, dim, metric, vectorOf, 10)
      expect(serial, `sequential recall (${metric})`).toBeGreaterThanOrEqual(0.95)
      expect(parallel, `parallel recall (${metric})`).toBeGreaterThanOrEqual(0.95)
      expect(Math.abs(parallel - serial), `parallel ${parallel} vs sequential ${serial} (${metric})`).toBeLessThanOrEqual(0.01)
    }
  })

  it('two sequential builds with the same seed give identical graphs and results', async () => {
    const [a, b] = await sequential()
    expect(b.threads).toBe(1)
    for (const i of builds.keys()) {
      expect(a.builds[i].stats, `build ${i}: stats`).toEqual(b.builds[i].stats)
      expect(a.builds[i].counts).toEqual(b.builds[i].counts)
      expect(a.builds[i].keys, `build ${i}: keys`).toEqual(b.builds[i].keys)
      expect(a.builds[i].distances, `build ${i}: distances`).toEqual(b.builds[i].distances)
    }
    // The two configurations differ, so equal results are not an accident of the data.
    expect(a.builds[0].keys).not.toEqual(a.builds[1].keys)
  })
})

describe('HNSW concurrent add and search', () => {
  it('searches during async adds (new keys and upserts) never throw, duplicate or invent keys; all vectors found after', async () => {
    const dim = 24
    const first = 3000
    const batches = 4
    const perBatch = 1500
    const upserts = 600
    const base = randomMatrix(first, dim, 301)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq', m: 12, efConstruction: 80 })
    index.addSync(seqKeys(first), base)

    // Current (and, during an upsert, previous) vectors of every key, for checking distances.
    const vectors = new Map<number, Float32Array[]>()
    for (let i = 0; i < first; i++) vectors.set(i, [row(base, dim, i)])
    const newBatches = Array.from({ length: batches }, (_, b) => ({ keys: seqKeys(perBatch, 10_000 + b * perBatch), data: randomMatrix(perBatch, dim, 310 + b) }))
    for (const batch of newBatches) batch.keys.forEach((key, i) => vectors.set(key, [row(batch.data, dim, i)]))
    const upsertKeys = sample(first, upserts, 320)
    const upsertData = randomMatrix(upserts, dim, 321)
    upsertKeys.forEach((key, i) => vectors.get(key)!.push(row(upsertData, dim, i)))
    const removed = sample(first, 200, 322).filter((key) => !upsertKeys.includes(key))
    const gone = new Set(removed.map(BigInt))

    let removalDone = false
    const checkRows = (results: SearchResults, queries: Float32Array, k: number, what: string) => {
      for (let q = 0; q < results.length; q++) {
        const hit = results.get(q)
        expect(hit.keys.length, what).toBeLessThanOrEqual(k)
        if (new Set(hit.keys).size !== hit.keys.length) expect.fail(`${what}: a key twice in one row: ${hit.keys}`)
        for (let j = 0; j < hit.keys.length; j++) {
          const key = Number(hit.keys[j])
          const known = vectors.get(key)
          if (!known) expect.fail(`${what}: key ${key} was never added`)
          if (removalDone && gone.has(hit.keys[j])) expect.fail(`${what}: key ${key} returned after its removal resolved`)
          // The distance is that of the key's vector (old or new during an upsert).
          const query = row(queries, dim, q)
          const ok = known!.some((v) => Math.abs(refDistance(query, v, 'l2sq') - hit.distances[j]) <= 1e-4 * Math.max(1, hit.distances[j]))
          if (!ok) expect.fail(`${what}: key ${key} at distance ${hit.distances[j]}, not that of its vector`)
          if (j > 0 && hit.distances[j - 1] > hit.distances[j]) expect.fail(`${what}: row not sorted`)
        }
      }
    }

    // All writes are issued at once; they run in call order, searches go on meanwhile.
    let pendingWrites = batches + 2
    const writes = [
      ...newBatches.map((batch) => index.add(batch.keys, batch.data)),
      index.add(upsertKeys, upsertData),
      index.remove(removed),
    ].map((p) => p.finally(() => pendingWrites--))
    writes[writes.length - 1].then(() => (removalDone = true))

    const next = rng(330)
    let duringWrites = 0
    let newKeysSeenDuringWrites = 0
    const asyncChecks: Promise<void>[] = []
    const pool = randomMatrix(256, dim, 331)
    for (let round = 0; pendingWrites > 0 || round < 5; round++) {
      for (let i = 0; i < 10; i++) {
        const q = Math.floor(next() * 256)
        const query = row(pool, dim, q)
        const k = i === 0 ? 2000 : 10 // k beyond the sync path's preallocated width now and then
        const pending = pendingWrites > 0
        const results = index.searchSync(query, { k, efSearch: i % 2 ? 32 : 128 })
        checkRows(results, query, k, 'searchSync')
        if (pending) {
          duringWrites++
          if (results.get(0).keys.some((key) => key >= 10_000n)) newKeysSeenDuringWrites++
        }
      }
      // Async searches are not awaited here: they queue behind the writes issued before them
      // (read-your-writes) while the blocking searches above go on.
      if (round % 4 === 0) {
        const start = Math.floor(next() * 240)
        const queries = pool.subarray(start * dim, (start + 16) * dim)
        asyncChecks.push(index.searchBatch(queries, { k: 10, efSearch: 64 }).then((r) => checkRows(r, queries, 10, 'search')))
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    await Promise.all(asyncChecks)
    expect(asyncChecks.length).toBeGreaterThan(1)
    await Promise.all(writes)
    expect(duringWrites, 'blocking searches ran while the writes were pending').toBeGreaterThan(20)
    expect(newKeysSeenDuringWrites, 'blocking searches saw keys of batches committed while others were pending').toBeGreaterThan(0)

    // Afterwards: exact size, every live vector finds itself, removed and replaced vectors do not.
    const live = [...vectors.keys()].filter((key) => !gone.has(BigInt(key)))
    expect(index.size).toBe(live.length)
    expect(new Set(index.keys()).size).toBe(live.length)
    const current = new Float32Array(live.length * dim)
    live.forEach((key, i) => {
      const versions = vectors.get(key)!
      current.set(versions[versions.length - 1], i * dim)
    })
    const self = selfHitRate(await index.searchBatch(current, { k: 1, efSearch: 128 }), live)
    expect(self.rate, `${self.misses.length} keys not found first: ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
    for (const key of upsertKeys.slice(0, 50)) expect(Array.from(index.get(key)!)).toEqual(Array.from(vectors.get(key)![1]))
    const oldOfUpserts = index.searchBatchSync(pickRows(base, dim, upsertKeys), { k: 3, efSearch: 64 })
    upsertKeys.forEach((key, i) => {
      const hit = oldOfUpserts.get(i)
      hit.keys.forEach((got, j) => {
        if (got === BigInt(key)) expect(hit.distances[j], `key ${key} still at its old vector`).toBeGreaterThan(1e-3)
      })
    })
    const exact = await exactSearch(current, live, dim, 'l2sq', pool, 10)
    const got = await index.searchBatch(pool, { k: 10, efSearch: 128 })
    const byKey = new Map(live.map((key, i) => [key, i]))
    expect(recallOf(got, exact, pool, dim, 'l2sq', (key) => row(current, dim, byKey.get(key)!), 10)).toBeGreaterThanOrEqual(0.95)
  })

  it('many async adds issued together end up in one sound graph', async () => {
    const dim = 16
    using index = new HnswIndex({ dimensions: dim, metric: 'cosine' })
    const parts = Array.from({ length: 8 }, (_, b) => ({ keys: seqKeys(700, b * 700), data: randomMatrix(700, dim, 400 + b) }))
    await Promise.all(parts.map((part) => index.add(part.keys, part.data)))
    expect(index.size).toBe(5600)
    const all = new Float32Array(5600 * dim)
    parts.forEach((part, b) => all.set(part.data, b * 700 * dim))
    const self = selfHitRate(await index.searchBatch(all, { k: 1, efSearch: 128 }), seqKeys(5600))
    expect(self.rate, `missed ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
  })
})
