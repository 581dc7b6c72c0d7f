import { describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, SearchResults } from '../dist/index.js'
import { loadMnist, loadSift, randomMatrix, refDistance, type RefMetric } from './helpers'
import { clusteredMatrix, exactSearch, pickRows, recallOf, row, sample, selfHitRate, seqKeys } from './hnsw-helpers'
import { hooks } from './trace-hooks'

const sift = loadSift()
const mnist = loadMnist()
if (!sift) console.warn('skipping HNSW SIFT tests: ../shared/data/ngt-sift not found')
if (!mnist) console.warn('skipping HNSW MNIST tests: ../shared/data/mnist not found')

const metrics: RefMetric[] = ['cosine', 'dot', 'l2sq']

/**
 * Every returned distance equals FlatIndex's (exact) distance for the same key, and the float64
 * reference distance, within float tolerance.
 */
function expectDistancesMatchFlat(got: SearchResults, flat: FlatIndex, queries: Float32Array, dim: number, metric: RefMetric, vectorOf: (key: number) => ArrayLike<number>, rows: number) {
  for (let q = 0; q < rows; q++) {
    const hit = got.get(q)
    const query = row(queries, dim, q)
    const exact = flat.searchSync(query, { k: hit.keys.length, filter: hit.keys })
    const flatDistance = new Map<bigint, number>()
    exact.get(0).keys.forEach((key, i) => flatDistance.set(key, exact.get(0).distances[i]))
    hit.keys.forEach((key, i) => {
      const want = flatDistance.get(key)
      expect(want, `query ${q}: FlatIndex knows key ${key}`).toBeDefined()
      const tol = 1e-4 * Math.max(1, Math.abs(want!))
      expect(Math.abs(hit.distances[i] - want!), `query ${q}, key ${key}: HNSW ${hit.distances[i]} vs flat ${want}`).toBeLessThanOrEqual(tol)
      const ref = refDistance(query, vectorOf(Number(key)), metric)
      expect(Math.abs(hit.distances[i] - ref), `query ${q}, key ${key}: HNSW ${hit.distances[i]} vs float64 ${ref}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(ref)))
    })
  }
}

/** Recall@10 at each efSearch, on a built index. */
async function recallCurve(index: HnswIndex, exact: SearchResults, queries: Float32Array, dim: number, metric: RefMetric, vectorOf: (key: number) => ArrayLike<number>, efs: number[]) {
  const curve: number[] = []
  for (const efSearch of efs) curve.push(recallOf(await index.searchBatch(queries, { k: 10, efSearch }), exact, queries, dim, metric, vectorOf, 10))
  return curve
}

function expectNonDecreasing(curve: number[], efs: number[]) {
  for (let i = 1; i < curve.length; i++) {
    expect(curve[i], `recall at efSearch ${efs[i]} (${curve[i]}) below that at ${efs[i - 1]} (${curve[i - 1]}); curve ${curve}`).toBeGreaterThanOrEqual(curve[i - 1])
  }
}

describe.skipIf(!mnist)('HNSW recall on real MNIST digits (9,800 indexed × 784, 200 held out)', () => {
  it('recall@10 ≥ 0.95 at efSearch 128, rising with efSearch; distances equal FlatIndex', async () => {
    const { images, dim, count } = mnist!
    const n = count - 200
    const base = images.subarray(0, n * dim)
    const queries = images.subarray(n * dim)
    const keys = seqKeys(n)
    const vectorOf = (key: number) => row(base, dim, key)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    await index.add(keys, base)
    expect(index.size).toBe(n)
    const exact = await exactSearch(base, keys, dim, 'l2sq', queries, 10)
    const efs = [10, 16, 32, 64, 128, 256]
    const curve = await recallCurve(index, exact, queries, dim, 'l2sq', vectorOf, efs)
    expect(curve[efs.indexOf(128)], `recall curve ${curve}`).toBeGreaterThanOrEqual(0.95)
    expectNonDecreasing(curve, efs)
    using flat = new FlatIndex({ dimensions: dim, metric: 'l2sq' })
    flat.addSync(keys, base)
    expectDistancesMatchFlat(await index.searchBatch(queries, { k: 10, efSearch: 128 }), flat, queries, dim, 'l2sq', vectorOf, 20)
  })
})

describe.skipIf(!sift)('HNSW recall on real SIFT descriptors (4,800 indexed × 128, 200 held out)', () => {
  for (const metric of ['l2sq', 'cosine'] as RefMetric[]) {
    it(`recall@10 ≥ 0.95 at efSearch 128, rising with efSearch (${metric})`, async () => {
      const { base: all, dim } = sift!
      const n = all.length / dim - 200
      const base = all.subarray(0, n * dim)
      const queries = all.subarray(n * dim)
      const keys = seqKeys(n)
      const vectorOf = (key: number) => row(base, dim, key)
      using index = new HnswIndex({ dimensions: dim, metric, m: 16, efConstruction: 128 })
      await index.add(keys, base)
      const exact = await exactSearch(base, keys, dim, metric, queries, 10)
      const efs = [10, 32, 64, 128, 256]
      const curve = await recallCurve(index, exact, queries, dim, metric, vectorOf, efs)
      expect(curve[efs.indexOf(128)], `recall curve ${curve}`).toBeGreaterThanOrEqual(0.95)
      expectNonDecreasing(curve, efs)
      using flat = new FlatIndex({ dimensions: dim, metric })
      flat.addSync(keys, base)
      expectDistancesMatchFlat(await index.searchBatch(queries, { k: 10, efSearch: 128 }), flat, queries, dim, metric, vectorOf, 20)
    })
  }
})

describe('HNSW recall on seeded synthetic data', () => {
  for (const metric of metrics) {
    it(`recall@10 ≥ 0.95 and exact distances (${metric}, dim 37, 3,000 vectors)`, async () => {
      const dim = 37 // odd: rows are padded to 48 inside
      const n = 3000
      const base = randomMatrix(n, dim, 101)
      const queries = randomMatrix(100, dim, 102)
      const keys = seqKeys(n, 1000) // keys differ from row numbers
      const vectorOf = (key: number) => row(base, dim, key - 1000)
      using index = new HnswIndex({ dimensions: dim, metric, seed: 5 })
      await index.add(keys, base)
      const exact = await exactSearch(base, keys, dim, metric, queries, 10)
      const got = await index.searchBatch(queries, { k: 10, efSearch: 128 })
      expect(recallOf(got, exact, queries, dim, metric, vectorOf, 10)).toBeGreaterThanOrEqual(0.95)
      // The blocking single-query path returns the same as the parallel batch path.
      for (let q = 0; q < 100; q += 7) {
        const one = index.searchSync(row(queries, dim, q), { k: 10, efSearch: 128 }).get(0)
        expect(Array.from(one.keys)).toEqual(Array.from(got.get(q).keys))
        expect(Array.from(one.distances)).toEqual(Array.from(got.get(q).distances))
      }
      using flat = new FlatIndex({ dimensions: dim, metric })
      flat.addSync(keys, base)
      expectDistancesMatchFlat(got, flat, queries, dim, metric, vectorOf, 30)
    })
  }

  it('clustered data with exact duplicates: recall ≥ 0.95 and every vector finds itself (or its twin)', async () => {
    const dim = 24
    const n = 4000
    const base = clusteredMatrix(n, dim, 40, 7, 40)
    const keys = seqKeys(n)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    await index.add(keys, base)
    const queries = clusteredMatrix(150, dim, 40, 7, 0, 1007) // same centres, fresh noise
    const exact = await exactSearch(base, keys, dim, 'l2sq', queries, 10)
    const got = await index.searchBatch(queries, { k: 10, efSearch: 128 })
    expect(recallOf(got, exact, queries, dim, 'l2sq', (key) => row(base, dim, key), 10)).toBeGreaterThanOrEqual(0.95)
    const self = selfHitRate(await index.searchBatch(base, { k: 1, efSearch: 128 }), keys)
    expect(self.rate, `missed keys ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
  })

  it('efSearch: the index default applies when a call gives none, and is at least k', async () => {
    const dim = 16
    const n = 2000
    const base = randomMatrix(n, dim, 11)
    const queries = randomMatrix(30, dim, 12)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq', efSearch: 20 })
    expect(index.efSearch).toBe(20)
    index.addSync(seqKeys(n), base)
    const byDefault = index.searchBatchSync(queries, { k: 10 })
    const explicit = index.searchBatchSync(queries, { k: 10, efSearch: 20 })
    expect(Array.from(byDefault.keys)).toEqual(Array.from(explicit.keys))
    // k above efSearch: still k hits, as good as efSearch = k.
    const exact = await exactSearch(base, seqKeys(n), dim, 'l2sq', queries, 60)
    const wide = index.searchBatchSync(queries, { k: 60, efSearch: 1 })
    expect(wide.k).toBe(60)
    expect(recallOf(wide, exact, queries, dim, 'l2sq', (key) => row(base, dim, key), 60)).toBeGreaterThanOrEqual(0.95)
  })

  it('reports its parameters, with the documented defaults', () => {
    using defaults = new HnswIndex({ dimensions: 8 })
    expect([defaults.m, defaults.efConstruction, defaults.efSearch, defaults.metric, defaults.dimensions]).toEqual([16, 128, 64, 'cosine', 8])
    using custom = new HnswIndex({ dimensions: 8, metric: 'dot', m: 4, efConstruction: 40, efSearch: 7 })
    expect([custom.m, custom.efConstruction, custom.efSearch, custom.metric]).toEqual([4, 40, 7, 'dot'])
  })
})

describe('HNSW result shape', () => {
  it('k above the size returns what there is, sorted and exact', async () => {
    const dim = 3
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    const base = new Float32Array([0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 0, 0, 6, 0, 0])
    index.addSync([10, 11, 12, 13, 14, 15, 16], base)
    const r = await index.searchBatch([[2.1, 0, 0], [7, 0, 0]], { k: 50 })
    expect(r.k).toBe(7)
    expect(Array.from(r.counts)).toEqual([7, 7])
    expect(r.get(0).numberKeys()).toEqual([12, 13, 11, 14, 10, 15, 16])
    expect(r.get(1).numberKeys()).toEqual([16, 15, 14, 13, 12, 11, 10])
    expect(Array.from(r.get(1).distances)).toEqual([1, 4, 9, 16, 25, 36, 49])
    // Beyond the sync path's preallocated width (k > 1024) as well.
    const sync = index.searchSync([7, 0, 0], { k: 1_000_000 })
    expect(sync.get(0).numberKeys()).toEqual([16, 15, 14, 13, 12, 11, 10])
    // Removed keys do not count.
    expect(index.removeSync([16, 10])).toBe(2)
    const after = index.searchSync([7, 0, 0], { k: 50 })
    expect(after.k).toBe(5)
    expect(after.get(0).numberKeys()).toEqual([15, 14, 13, 12, 11])
  })

  it('an empty index returns no hits', async () => {
    using index = new HnswIndex({ dimensions: 4 })
    const r = index.searchSync([1, 2, 3, 4], { k: 5 })
    expect(r.k).toBe(0)
    expect(r.get(0).keys.length).toBe(0)
    expect((await index.searchBatch([[1, 2, 3, 4], [4, 3, 2, 1]], { k: 5 })).counts).toEqual(new Uint32Array([0, 0]))
    expect(index.stats()).toMatchObject({ size: 0, tombstones: 0, levels: 0, nodesPerLevel: [], meanDegree: 0 })
  })

  it('a cosine vector is stored normalised and finds itself at distance 0', () => {
    using index = new HnswIndex({ dimensions: 3, metric: 'cosine' })
    index.addSync([1, 2, 3], [[3, 0, 4], [0, 1, 0], [1, 1, 1]])
    const stored = index.get(1)!
    expect(stored[0]).toBeCloseTo(0.6, 6)
    expect(stored[2]).toBeCloseTo(0.8, 6)
    const hit = index.searchSync([30, 0, 40], { k: 3 }).get(0)
    expect(hit.keys[0]).toBe(1n)
    expect(hit.distances[0]).toBeGreaterThanOrEqual(0)
    expect(hit.distances[0]).toBeLessThan(1e-6)
  })

  it('accepts the full 64-bit key range', () => {
    using index = new HnswIndex({ dimensions: 2, metric: 'l2sq' })
    const max = 2n ** 64n - 2n // the largest key an index stores (2^64 − 1 pads results)
    index.addSync(new BigUint64Array([max, 2n ** 53n + 1n, 0n]), [[1, 1], [2, 2], [3, 3]])
    expect(index.searchSync([1, 1], { k: 1 }).get(0).keys[0]).toBe(max)
    expect(index.contains(2n ** 53n + 1n)).toBe(true)
    expect(new Set(index.keys())).toEqual(new Set([max, 2n ** 53n + 1n, 0n]))
  })
})

describe('HNSW upsert, remove, slot reuse and compaction', () => {
  const dim = 16
  const n = 3000

  it('adding an existing key replaces its vector', async () => {
    const base = randomMatrix(n, dim, 21)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    await index.add(seqKeys(n), base)
    // One key moved far away from the data (values in [-1, 1]).
    const far = new Float32Array(dim).fill(10)
    await index.add([5], far)
    expect(index.size).toBe(n)
    expect(Array.from(index.get(5)!)).toEqual(Array.from(far))
    const atNew = index.searchSync(far, { k: 1 }).get(0)
    expect(atNew.numberKeys()).toEqual([5])
    expect(atNew.distances[0]).toBe(0)
    const atOld = index.searchSync(row(base, dim, 5), { k: 10, efSearch: 128 }).get(0)
    expect(atOld.numberKeys()).not.toContain(5)
    expect(atOld.distances[0]).toBeGreaterThan(0)

    // A batch of 600 upserts: the keys get other keys' old vectors, shifted a little.
    const moved = sample(n, 600, 22)
    const replacement = new Float32Array(600 * dim)
    moved.forEach((key, i) => {
      const source = row(base, dim, (key * 7 + 13) % n)
      for (let d = 0; d < dim; d++) replacement[i * dim + d] = source[d] + 0.05
    })
    await index.add(moved, replacement)
    expect(index.size).toBe(n)
    const keys = index.keys()
    expect(keys.length).toBe(n)
    expect(new Set(keys).size).toBe(n)
    moved.forEach((key, i) => expect(Array.from(index.get(key)!)).toEqual(Array.from(row(replacement, dim, i))))
    const self = selfHitRate(await index.searchBatch(replacement, { k: 1, efSearch: 128 }), moved)
    expect(self.rate, `upserted keys not found at their new vectors: ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
    // Their old vectors no longer find them at distance ~0.
    const old = await index.searchBatch(pickRows(base, dim, moved), { k: 5, efSearch: 128 })
    moved.forEach((key, i) => {
      const hit = old.get(i)
      hit.keys.forEach((got, j) => {
        if (got === BigInt(key)) expect(hit.distances[j], `key ${key} still at its old vector`).toBeGreaterThan(1e-3)
      })
    })
    const stats = index.stats()
    expect(stats.nodesPerLevel[0]).toBe(stats.size + stats.tombstones + stats.freeSlots)
  })

  it('upsert under cosine stores the new vector normalised', () => {
    using index = new HnswIndex({ dimensions: 2, metric: 'cosine' })
    index.addSync([1, 2], [[1, 0], [0, 1]])
    index.addSync([1], [[0, -5]])
    expect(Array.from(index.get(1)!)).toEqual([0, -1])
    expect(index.searchSync([0, -1], { k: 1 }).get(0).numberKeys()).toEqual([1])
    expect(index.searchSync([1, 0], { k: 2 }).get(0).distances[0]).toBeCloseTo(1, 6) // nothing left at (1, 0)
  })

  it('removed keys never appear; recall on the rest stays ≥ 0.95 before and after compact()', async () => {
    const base = randomMatrix(n, dim, 31)
    const queries = randomMatrix(200, dim, 32)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    await index.add(seqKeys(n), base)
    const removed = sample(n, 900, 33) // 30 %
    const gone = new Set(removed.map(BigInt))
    expect(await index.remove(removed.slice(0, 450))).toBe(450)
    expect(index.removeSync(new Set(removed.slice(450)))).toBe(450)
    expect(index.removeSync(removed.slice(0, 10))).toBe(0) // already gone
    expect(index.size).toBe(n - 900)
    for (const key of removed.slice(0, 50)) {
      expect(index.contains(key)).toBe(false)
      expect(index.get(key)).toBeUndefined()
    }
    expect(index.keys().some((key) => gone.has(key))).toBe(false)
    expect(index.stats().tombstones).toBe(900)

    const live = Array.from({ length: n }, (_, i) => i).filter((i) => !gone.has(BigInt(i)))
    const exact = await exactSearch(pickRows(base, dim, live), live, dim, 'l2sq', queries, 10)
    const vectorOf = (key: number) => row(base, dim, key)
    const check = async (when: string) => {
      const got = await index.searchBatch(queries, { k: 10, efSearch: 128 })
      for (const hit of got) for (const key of hit.keys) if (gone.has(key)) expect.fail(`${when}: removed key ${key} returned`)
      expect(recallOf(got, exact, queries, dim, 'l2sq', vectorOf, 10), when).toBeGreaterThanOrEqual(0.95)
      // The removed vectors themselves, as queries: never their own key.
      const selfOfRemoved = index.searchBatchSync(pickRows(base, dim, removed.slice(0, 100)), { k: 3, efSearch: 64 })
      for (const hit of selfOfRemoved) for (const key of hit.keys) if (gone.has(key)) expect.fail(`${when}: removed key ${key} returned`)
    }
    await check('with tombstones')
    const detached = await index.compact()
    expect(detached).toBe(900)
    await check('after compact()')
    expect(index.size).toBe(n - 900)
    const stats = index.stats()
    expect(stats.nodesPerLevel[0]).toBe(stats.size + stats.tombstones + stats.freeSlots)
    // Every live key still finds itself after compaction.
    const self = selfHitRate(await index.searchBatch(pickRows(base, dim, live), { k: 1, efSearch: 128 }), live)
    expect(self.rate, `missed ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
  })

  it('compactSync() relinks too, and a removed key can be added again', async () => {
    const base = randomMatrix(n, dim, 41)
    using index = new HnswIndex({ dimensions: dim, metric: 'cosine' })
    index.addSync(seqKeys(n), base)
    const removed = sample(n, 1500, 42) // half
    index.removeSync(removed)
    expect(index.compactSync()).toBe(1500)
    const live = Array.from({ length: n }, (_, i) => i).filter((i) => !removed.includes(i))
    const queries = randomMatrix(100, dim, 43)
    const exact = await exactSearch(pickRows(base, dim, live), live, dim, 'cosine', queries, 10)
    const got = index.searchBatchSync(queries, { k: 10, efSearch: 128 })
    expect(recallOf(got, exact, queries, dim, 'cosine', (key) => row(base, dim, key), 10)).toBeGreaterThanOrEqual(0.95)
    // Re-adding removed keys with their old vectors makes them findable again.
    const back = removed.slice(0, 300)
    index.addSync(back, pickRows(base, dim, back))
    expect(index.size).toBe(n - 1500 + 300)
    const self = selfHitRate(index.searchBatchSync(pickRows(base, dim, back), { k: 1, efSearch: 128 }), back)
    expect(self.rate, `missed ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
  })

  it('new keys reuse removed slots (compacted by the add): no new slots, memory does not grow', async () => {
    const base = randomMatrix(n, dim, 51)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    await index.add(seqKeys(n), base)
    await index.remove(sample(n, 1000, 52))
    const before = index.stats()
    expect(before.tombstones).toBe(1000)
    expect(before.freeSlots).toBe(0)
    expect(before.memoryBytes).toBe(index.memoryBytes)
    // Tombstones are a third of the slots (over a tenth): the add compacts first, then reuses.
    await index.add(seqKeys(800, 100_000), randomMatrix(800, dim, 53))
    const after = index.stats()
    expect(after.size).toBe(n - 1000 + 800)
    expect(after.tombstones).toBe(0)
    expect(after.freeSlots).toBe(200)
    expect(after.nodesPerLevel[0]).toBe(before.nodesPerLevel[0]) // no new slots
    expect(after.memoryBytes).toBeLessThanOrEqual(before.memoryBytes * 1.05)
  })

  // Vectors linked into reused slots must be as findable as in fresh ones, whether the index
  // was compacted by the caller or by the add itself.
  for (const compactFirst of [true, false]) {
    it(`vectors added into removed slots (${compactFirst ? 'after compact()' : 'no compact() in between'}) find themselves ≥ 99.9 %, recall ≥ 0.95`, async () => {
      const base = randomMatrix(n, dim, 51)
      using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
      await index.add(seqKeys(n), base)
      const removed = sample(n, 1000, 52)
      await index.remove(removed)
      if (compactFirst) expect(await index.compact()).toBe(1000)
      const fresh = randomMatrix(800, dim, 53)
      const freshKeys = seqKeys(800, 100_000)
      await index.add(freshKeys, fresh)
      expect(index.stats()).toMatchObject({ tombstones: 0, freeSlots: 200 }) // the slots were reused
      const self = selfHitRate(await index.searchBatch(fresh, { k: 1, efSearch: 128 }), freshKeys)
      expect(self.rate, `${self.misses.length} of 800 new keys not found first: ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
      // Recall over everything live (old survivors + new keys).
      const gone = new Set(removed)
      const survivors = Array.from({ length: n }, (_, i) => i).filter((i) => !gone.has(i))
      const allKeys = [...survivors, ...freshKeys]
      const all = new Float32Array(allKeys.length * dim)
      all.set(pickRows(base, dim, survivors))
      all.set(fresh, survivors.length * dim)
      const vectorOf = (key: number) => (key >= 100_000 ? row(fresh, dim, key - 100_000) : row(base, dim, key))
      const queries = randomMatrix(150, dim, 54)
      const exact = await exactSearch(all, allKeys, dim, 'l2sq', queries, 10)
      const got = await index.searchBatch(queries, { k: 10, efSearch: 128 })
      for (const hit of got) for (const key of hit.keys) if (key < 100_000n && gone.has(Number(key))) expect.fail(`removed key ${key} returned`)
      expect(recallOf(got, exact, queries, dim, 'l2sq', vectorOf, 10)).toBeGreaterThanOrEqual(0.95)
    })
  }

  it('re-embedding every key several times (upserts reuse the replaced slots) keeps every vector findable', async () => {
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    const keys = seqKeys(n)
    await index.add(keys, randomMatrix(n, dim, 55))
    const rates: string[] = []
    let worst = 1
    for (let round = 1; round <= 3; round++) {
      const data = randomMatrix(n, dim, 55 + round)
      await index.add(keys, data)
      expect(index.size).toBe(n)
      const self = selfHitRate(await index.searchBatch(data, { k: 1, efSearch: 128 }), keys)
      rates.push(`round ${round}: ${self.misses.length} missed`)
      worst = Math.min(worst, self.rate)
    }
    expect(worst, rates.join('; ')).toBeGreaterThanOrEqual(0.999)
  })
})

describe('HNSW filtered search', () => {
  const dim = 20
  const n = 5000
  const base = randomMatrix(n, dim, 61)
  const queries = randomMatrix(60, dim, 62)
  const vectorOf = (key: number) => row(base, dim, key)
  let shared: HnswIndex | undefined
  const index = () => {
    shared ??= (() => {
      const built = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
      built.addSync(seqKeys(n), base)
      return built
    })()
    return shared
  }

  const forms: [string, (keys: number[]) => unknown][] = [
    ['BigUint64Array', (keys) => BigUint64Array.from(keys.map(BigInt))],
    ['number[]', (keys) => keys],
    ['Set<number>', (keys) => new Set(keys)],
    ['Uint32Array', (keys) => Uint32Array.from(keys)],
    ['bigint[]', (keys) => keys.map(BigInt)],
  ]

  // 1 % and 10 % (the documented cases), and wide filters. With n = 5,000, m = 16 and
  // efSearch 64 the index scans the admitted vectors exactly up to ~64 % selectivity
  // (admitted² ≤ 2·m·ef·n) and walks the graph above, so 75 % and 90 % test the filtered walk.
  for (const share of [0.01, 0.1, 0.5, 0.75, 0.9]) {
    it(`recall@10 ≥ 0.95 against exact filtered results at ${share * 100} % selectivity, every hit admitted`, async () => {
      const allowed = sample(n, Math.round(n * share), 63 + share * 100)
      const admitted = new Set(allowed.map(BigInt))
      const exact = await exactSearch(base, seqKeys(n), dim, 'l2sq', queries, 10, allowed)
      for (const [form, make] of forms) {
        const filter = make(allowed) as never
        const got = await index().searchBatch(queries, { k: 10, efSearch: 64, filter })
        for (const hit of got) for (const key of hit.keys) if (!admitted.has(key)) expect.fail(`${form}: key ${key} not in the filter`)
        expect(recallOf(got, exact, queries, dim, 'l2sq', vectorOf, 10), form).toBeGreaterThanOrEqual(0.95)
        const sync = index().searchBatchSync(queries, { k: 10, efSearch: 64, filter })
        expect(Array.from(sync.keys), `${form}: sync and async agree`).toEqual(Array.from(got.keys))
      }
    })
  }

  it('scans exactly up to the documented threshold and walks the graph past it: the native hook counts each path, and both match the oracle', async () => {
    // The test hook debugCountSearchPaths counts, per query, a graph walk, an exact scan of
    // the admitted vectors, or a walk that found too few followed by a scan (rescans).
    const ef = 64
    const walkCost = 2 * index().m * ef * n
    let scanLimit = Math.floor(Math.sqrt(walkCost))
    while (scanLimit * scanLimit > walkCost) scanLimit--
    while ((scanLimit + 1) * (scanLimit + 1) <= walkCost) scanLimit++
    const rows = queries.length / dim
    // Far below, at, just past and far past the threshold admitted² ≤ 2·m·ef·n.
    const cases: [number, 'scans' | 'walks'][] = [[n / 100, 'scans'], [scanLimit, 'scans'], [scanLimit + 1, 'walks'], [n * 0.9, 'walks']]
    for (const [count, path] of cases) {
      const allowed = sample(n, count, 70 + count)
      const admitted = new Set(allowed.map(BigInt))
      const exact = await exactSearch(base, seqKeys(n), dim, 'l2sq', queries, 10, allowed)
      hooks.debugCountSearchPaths(true)
      let taken
      let batch: SearchResults
      const single: SearchResults[] = []
      try {
        // The whole batch on the pool, then each query alone on the JS thread.
        batch = await index().searchBatch(queries, { k: 10, efSearch: ef, filter: allowed })
        for (let q = 0; q < rows; q++) single.push(index().searchSync(row(queries, dim, q), { k: 10, efSearch: ef, filter: allowed }))
        taken = hooks.debugSearchPaths()
      } finally {
        hooks.debugCountSearchPaths(false)
      }
      const what = `${count} admitted of ${n} (scanned up to ${scanLimit})`
      expect(taken, what).toEqual({ walks: path === 'walks' ? 2 * rows : 0, scans: path === 'scans' ? 2 * rows : 0, rescans: 0 })
      for (const hit of batch) for (const key of hit.keys) if (!admitted.has(key)) expect.fail(`${what}: key ${key} not in the filter`)
      single.forEach((one, q) => expect(Array.from(one.get(0).keys), `${what}: query ${q} alone and in the batch`).toEqual(Array.from(batch.get(q).keys)))
      const recall = recallOf(batch, exact, queries, dim, 'l2sq', vectorOf, 10)
      if (path === 'scans') expect(recall, what).toBe(1)
      else expect(recall, what).toBeGreaterThanOrEqual(0.95)
    }
  })

  it('a filter correlated with the query region still gives recall ≥ 0.95 (queries outside the admitted region)', async () => {
    // Admit the vectors with x₀ > −0.5 (about 75 %: the graph walk); query from x₀ = −0.95,
    // where the walk starts among rejected vectors.
    const allowed = Array.from({ length: n }, (_, i) => i).filter((i) => base[i * dim] > -0.5)
    const far = Float32Array.from(queries)
    for (let q = 0; q < 60; q++) far[q * dim] = -0.95
    const exact = await exactSearch(base, seqKeys(n), dim, 'l2sq', far, 10, allowed)
    const got = await index().searchBatch(far, { k: 10, efSearch: 64, filter: allowed })
    const admitted = new Set(allowed)
    for (const hit of got) for (const key of hit.numberKeys()) if (!admitted.has(key)) expect.fail(`key ${key} not admitted`)
    expect(recallOf(got, exact, far, dim, 'l2sq', vectorOf, 10)).toBeGreaterThanOrEqual(0.95)
  })

  it('fewer admitted keys than k: counts say how many; unknown keys give zero hits', async () => {
    const r = index().searchBatchSync(queries, { k: 10, filter: [5, 6, 7, 987_654] })
    expect(r.k).toBe(10)
    for (let q = 0; q < r.length; q++) {
      expect(r.counts[q]).toBe(3)
      expect(r.get(q).numberKeys().sort((a, b) => a - b)).toEqual([5, 6, 7])
    }
    const none = await index().searchBatch(queries, { k: 10, filter: new BigUint64Array([10_000_000n, 2n ** 63n]) })
    expect(Array.from(none.counts)).toEqual(new Array(60).fill(0))
    expect(Array.from(index().searchSync(queries.subarray(0, dim), { k: 10, filter: new Set([99_999]) }).counts)).toEqual([0])
    expect(Array.from(index().searchSync(queries.subarray(0, dim), { k: 10, filter: [] }).counts)).toEqual([0])
    // Duplicates in the filter do not duplicate hits.
    const dup = index().searchSync(queries.subarray(0, dim), { k: 10, filter: [8, 8, 9, 9, 9] })
    expect(dup.get(0).numberKeys().sort()).toEqual([8, 9])
  })

  it('a filter naming removed keys never returns them', async () => {
    const dim2 = 8
    const local = randomMatrix(1000, dim2, 64)
    using small = new HnswIndex({ dimensions: dim2, metric: 'l2sq' })
    small.addSync(seqKeys(1000), local)
    const allowed = sample(1000, 100, 65)
    small.removeSync(allowed.slice(0, 40))
    const r = await small.searchBatch(randomMatrix(20, dim2, 66), { k: 80, filter: allowed })
    const gone = new Set(allowed.slice(0, 40).map(BigInt))
    for (const hit of r) {
      expect(hit.keys.length).toBe(60)
      for (const key of hit.keys) expect(gone.has(key)).toBe(false)
    }
  })
})

describe('HNSW stats, insertion orders and streams', () => {
  it('stats() describes the graph', async () => {
    const dim = 16
    const n = 3000
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq', m: 8 })
    await index.add(seqKeys(n), randomMatrix(n, dim, 71))
    let stats = index.stats()
    expect(stats.size).toBe(n)
    expect(stats.tombstones).toBe(0)
    expect(stats.levels).toBeGreaterThanOrEqual(2) // 3,000 nodes at m = 8: expected ~4 layers
    expect(stats.nodesPerLevel.length).toBe(stats.levels)
    expect(stats.nodesPerLevel[0]).toBe(n)
    for (let l = 1; l < stats.levels; l++) expect(stats.nodesPerLevel[l]).toBeLessThanOrEqual(stats.nodesPerLevel[l - 1])
    expect(stats.nodesPerLevel[stats.levels - 1]).toBeGreaterThanOrEqual(1)
    // Level i holds about n / m^i nodes: layer 1 well under half.
    expect(stats.nodesPerLevel[1]).toBeLessThan(n / 3)
    expect(stats.meanDegree).toBeGreaterThan(0)
    expect(stats.meanDegree).toBeLessThanOrEqual(2 * 8)
    expect(stats.memoryBytes).toBe(index.memoryBytes)
    expect(stats.memoryBytes).toBeGreaterThan(n * dim * 4)
    await index.remove(seqKeys(100))
    stats = index.stats()
    expect(stats.size).toBe(n - 100)
    expect(stats.tombstones).toBe(100)
    expect(stats.nodesPerLevel[0]).toBe(stats.size + stats.tombstones + stats.freeSlots)
  })

  for (const insertionOrder of ['given', 'random', 'lid'] as const) {
    it(`insertionOrder '${insertionOrder}' builds an index with recall@10 ≥ 0.95`, async () => {
      const dim = 24
      const n = 3000
      const base = clusteredMatrix(n, dim, 30, 81)
      const queries = clusteredMatrix(100, dim, 30, 81, 0, 1081)
      using index = new HnswIndex({ dimensions: dim, metric: 'cosine', insertionOrder, seed: 3 })
      await index.add(seqKeys(n), base)
      expect(index.size).toBe(n)
      const exact = await exactSearch(base, seqKeys(n), dim, 'cosine', queries, 10)
      const got = await index.searchBatch(queries, { k: 10, efSearch: 128 })
      expect(recallOf(got, exact, queries, dim, 'cosine', (key) => row(base, dim, key), 10)).toBeGreaterThanOrEqual(0.95)
      const self = selfHitRate(await index.searchBatch(base, { k: 1, efSearch: 128 }), seqKeys(n))
      expect(self.rate, `missed ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
    })
  }

  it('addStream ingests in batches; searchStream equals searchSync row for row', async () => {
    const dim = 12
    const n = 2500
    const base = randomMatrix(n, dim, 91)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    async function* vectors() {
      for (let i = 0; i < n; i++) yield row(base, dim, i)
    }
    let progress = 0
    expect(await index.addStream(vectors(), { batchSize: 600, startKey: 10, onProgress: (p) => (progress = p.added) })).toBe(n)
    expect(progress).toBe(n)
    expect(index.size).toBe(n)
    expect(Array.from(index.get(10)!)).toEqual(Array.from(row(base, dim, 0)))
    expect(index.stats().nodesPerLevel[0]).toBe(n)
    const queries = randomMatrix(300, dim, 92)
    const rows = Array.from({ length: 300 }, (_, i) => row(queries, dim, i))
    let q = 0
    for await (const batch of index.searchStream(rows, { k: 7, efSearch: 96, batchSize: 64 })) {
      for (const hit of batch) {
        const sync = index.searchSync(rows[q], { k: 7, efSearch: 96 }).get(0)
        expect(Array.from(hit.keys), `row ${q}`).toEqual(Array.from(sync.keys))
        expect(Array.from(hit.distances), `row ${q}`).toEqual(Array.from(sync.distances))
        q++
      }
    }
    expect(q).toBe(300)
    const exact = await exactSearch(base, seqKeys(n, 10), dim, 'l2sq', queries, 7)
    const got = await index.searchBatch(queries, { k: 7, efSearch: 96 })
    expect(recallOf(got, exact, queries, dim, 'l2sq', (key) => row(base, dim, key - 10), 7)).toBeGreaterThanOrEqual(0.95)
  })
})
