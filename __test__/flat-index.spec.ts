import { describe, expect, it } from 'vitest'
import { FlatIndex, SearchResults } from '../dist/index.js'
import { expectSameNeighbours, randomMatrix, referenceScan, refDistance, type RefMetric } from './helpers'

const metrics: RefMetric[] = ['cosine', 'dot', 'l2sq']

describe('FlatIndex basics', () => {
  it('adds, gets, contains, removes and reports size and memory', async () => {
    const index = new FlatIndex({ dimensions: 4, metric: 'l2sq' })
    expect(index.size).toBe(0)
    const empty = index.memoryBytes
    await index.add([10, 20, 30], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    expect(index.size).toBe(3)
    expect(index.memoryBytes).toBeGreaterThan(empty)
    expect(index.contains(20)).toBe(true)
    expect(index.contains(21n)).toBe(false)
    expect(Array.from(index.get(30)!)).toEqual([9, 10, 11, 12])
    expect(index.get(31)).toBeUndefined()
    expect(await index.remove([20, 99])).toBe(1)
    expect(index.removeSync(20)).toBe(0)
    expect(index.size).toBe(2)
    expect(index.contains(20)).toBe(false)
    expect(Array.from(index.keys()).sort()).toEqual([10n, 30n])
    // The vector moved into the removed slot is still found under its own key.
    expect(Array.from(index.get(30)!)).toEqual([9, 10, 11, 12])
    index.close()
  })

  it('upserts: adding an existing key replaces its vector', () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    index.addSync([1, 2], new Float32Array([0, 0, 5, 5]))
    index.addSync(1, [10, 10])
    expect(index.size).toBe(2)
    expect(Array.from(index.get(1)!)).toEqual([10, 10])
    const hit = index.searchSync([9, 9], { k: 1 }).get(0)
    expect(hit.numberKeys()).toEqual([1])
    expect(hit.distances[0]).toBeCloseTo(2, 5)
  })

  it('normalises cosine vectors and returns 0 for the vector itself', () => {
    const index = new FlatIndex({ dimensions: 3 })
    index.addSync([7], [[3, 0, 4]])
    const stored = index.get(7)!
    expect(stored[0]).toBeCloseTo(0.6, 6)
    expect(stored[2]).toBeCloseTo(0.8, 6)
    const r = index.searchSync([30, 0, 40], { k: 1 })
    expect(r.get(0).distances[0]).toBeCloseTo(0, 6)
  })

  it('accepts every key form, including the full 64-bit range', () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    const max = 2n ** 64n - 2n // the largest key an index stores (2^64 − 1 pads results)
    index.addSync(new BigUint64Array([max, 2n ** 53n + 1n]), [[1, 1], [2, 2]])
    index.addSync(new Uint32Array([4294967295, 0]), [[3, 3], [4, 4]])
    index.addSync([Number.MAX_SAFE_INTEGER], [[5, 5]])
    index.addSync(new Set([11n]), [[6, 6]])
    expect(index.contains(max)).toBe(true)
    expect(index.contains(2n ** 53n + 1n)).toBe(true)
    expect(index.contains(4294967295)).toBe(true)
    expect(index.contains(Number.MAX_SAFE_INTEGER)).toBe(true)
    const r = index.searchSync([1, 1], { k: 1 })
    expect(r.get(0).keys[0]).toBe(max)
    expect(() => r.get(0).numberKeys()).toThrow(/does not fit/)
    expect(index.searchSync([5, 5], { k: 1 }).get(0).numberKeys()).toEqual([Number.MAX_SAFE_INTEGER])
  })

  it('returns what there is when k exceeds the index', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    index.addSync([1, 2, 3], [[0, 0], [1, 0], [2, 0]])
    const r = await index.searchBatch([[0, 0], [2, 0]], { k: 1_000_000 })
    expect(r).toBeInstanceOf(SearchResults)
    expect(r.k).toBe(3)
    expect(r.length).toBe(2)
    expect(r.get(0).numberKeys()).toEqual([1, 2, 3])
    expect(r.get(1).numberKeys()).toEqual([3, 2, 1])
    expect([...r].length).toBe(2)
    const empty = new FlatIndex({ dimensions: 2 })
    const none = empty.searchSync([1, 0], { k: 5 })
    expect(none.k).toBe(0)
    expect(none.get(0).keys.length).toBe(0)
  })

  for (const metric of metrics) {
    it(`batch search equals a plain float64 scan (${metric}, odd sizes)`, async () => {
      const dim = 65
      const base = randomMatrix(513, dim, 42)
      const queries = randomMatrix(17, dim, 43)
      const index = new FlatIndex({ dimensions: dim, metric })
      await index.add(Uint32Array.from({ length: 513 }, (_, i) => i), base)
      const k = 10
      const want = referenceScan(base, queries, dim, k, metric)
      const got = await index.searchBatch(queries, { k })
      const sync = index.searchBatchSync(queries, { k })
      expect(sync.keys).toEqual(got.keys)
      for (let q = 0; q < 17; q++) {
        const query = queries.subarray(q * dim, (q + 1) * dim)
        expectSameNeighbours(got.get(q), want[q], (i) => refDistance(query, base.subarray(i * dim, (i + 1) * dim), metric))
      }
    })
  }

  it('large batch search (parallel tiles) equals the reference scan', async () => {
    const dim = 100
    const n = 20_000
    const base = randomMatrix(n, dim, 7)
    const queries = randomMatrix(40, dim, 8)
    const index = new FlatIndex({ dimensions: dim, metric: 'cosine' })
    await index.add(Uint32Array.from({ length: n }, (_, i) => i), base)
    const want = referenceScan(base, queries, dim, 10, 'cosine')
    const got = await index.searchBatch(queries, { k: 10 })
    for (let q = 0; q < 40; q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim)
      expectSameNeighbours(got.get(q), want[q], (i) => refDistance(query, base.subarray(i * dim, (i + 1) * dim), 'cosine'))
    }
  })
})

describe('filtered search', () => {
  const dim = 8
  const n = 2000
  const base = randomMatrix(n, dim, 3)
  const queries = randomMatrix(5, dim, 4)

  function filteredReference(allowed: number[], metric: RefMetric, k: number) {
    const sub = new Float32Array(allowed.length * dim)
    allowed.forEach((key, i) => sub.set(base.subarray(key * dim, (key + 1) * dim), i * dim))
    return referenceScan(sub, queries, dim, k, metric).map((row) => row.map((h) => ({ index: allowed[h.index], distance: h.distance })))
  }

  for (const [label, allowed] of [
    ['sparse (exact scan of admitted keys)', Array.from({ length: 20 }, (_, i) => i * 97)],
    ['dense (filtered tile scan)', Array.from({ length: 1500 }, (_, i) => i + 300)],
  ] as const) {
    for (const metric of metrics) {
      it(`admits only allowed keys: ${label}, ${metric}`, async () => {
        const index = new FlatIndex({ dimensions: dim, metric })
        index.addSync(Uint32Array.from({ length: n }, (_, i) => i), base)
        const want = filteredReference([...allowed], metric, 10)
        for (const filter of [Uint32Array.from(allowed), new Set(allowed), [...allowed].map(BigInt)]) {
          const got = await index.searchBatch(queries, { k: 10, filter })
          for (let q = 0; q < 5; q++) {
            const query = queries.subarray(q * dim, (q + 1) * dim)
            expectSameNeighbours(got.get(q), want[q], (i) => refDistance(query, base.subarray(i * dim, (i + 1) * dim), metric))
          }
        }
      })
    }
  }

  it('returns fewer hits when the filter admits fewer than k, and none for unknown keys', () => {
    const index = new FlatIndex({ dimensions: dim, metric: 'l2sq' })
    index.addSync(Uint32Array.from({ length: n }, (_, i) => i), base)
    const r = index.searchBatchSync(queries, { k: 10, filter: [5, 6, 7, 123456] })
    expect(r.k).toBe(10)
    for (let q = 0; q < 5; q++) {
      expect(r.counts[q]).toBe(3)
      expect(r.get(q).numberKeys().sort((a, b) => a - b)).toEqual([5, 6, 7])
    }
    const none = index.searchBatchSync(queries, { k: 10, filter: [999999] })
    expect(Array.from(none.counts)).toEqual([0, 0, 0, 0, 0])
  })
})
