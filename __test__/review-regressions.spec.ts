// Regressions for defects found in review: ordering of async writes, precision far from the
// origin and at extreme magnitudes, pooled result buffers, streams and signals.
import { describe, expect, it } from 'vitest'
import { FlatIndex } from '../dist/index.js'
import { expectCode, randomMatrix } from './helpers'

describe('async operations take effect in call order', () => {
  it('add then remove of the same key, not awaited, leaves it removed', async () => {
    const index = new FlatIndex({ dimensions: 4, metric: 'l2sq' })
    for (let i = 0; i < 300; i++) {
      const added = index.add([i], [[i, 0, 0, 0]])
      const removed = index.remove([i])
      await Promise.all([added, removed])
      expect(index.contains(i)).toBe(false)
    }
  })

  it('two upserts of one key keep the later vector, and a later search sees it', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    for (let i = 0; i < 200; i++) {
      const first = index.add([7], [[i, 0]])
      const second = index.add([7], [[i, 1]])
      const search = index.search([i, 1], { k: 1 })
      await Promise.all([first, second])
      expect(Array.from(index.get(7)!)).toEqual([i, 1])
      expect((await search).get(0).distances[0]).toBe(0)
    }
  })

  it('a blocking write waits for the async writes called before it', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    const pending = index.add(Uint32Array.from({ length: 20_000 }, (_, i) => i), randomMatrix(20_000, 2, 1))
    expect(index.removeSync([5])).toBe(1)
    await pending
    expect(index.contains(5)).toBe(false)
    expect(index.size).toBe(19_999)
  })
})

describe('exactness', () => {
  it('finds every vector of a batch far from the origin (l2sq, more than 4 queries)', async () => {
    const dim = 32
    const n = 5000
    const base = randomMatrix(n, dim, 2).map((x) => 1000 + x * 0.05)
    const index = new FlatIndex({ dimensions: dim, metric: 'l2sq' })
    await index.add(Uint32Array.from({ length: n }, (_, i) => i), base)
    const rows = 50
    const results = await index.searchBatch(base.subarray(0, rows * dim), { k: 1 })
    for (let q = 0; q < rows; q++) {
      expect(results.get(q).numberKeys()).toEqual([q])
      expect(results.get(q).distances[0]).toBe(0)
    }
  })

  it('normalises tiny and huge cosine vectors, and refuses l2 vectors whose distances would overflow', async () => {
    const cosine = new FlatIndex({ dimensions: 2, metric: 'cosine' })
    cosine.addSync([1, 2], [[1e-30, 0], [1e20, 1e20]])
    expect(Array.from(cosine.get(1)!)).toEqual([1, 0])
    expect(cosine.searchSync([1, 1], { k: 1 }).get(0).numberKeys()).toEqual([2])
    expect(cosine.searchSync([1e-30, 0], { k: 1 }).get(0).numberKeys()).toEqual([1])
    const l2 = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    await expectCode(l2.add([1], [[1e20, 0]]), 'ERR_INVALID_ARGUMENT')
    await expectCode(l2.search([3e19, 3e19], { k: 1 }), 'ERR_INVALID_ARGUMENT')
  })
})

describe('pooled sync results', () => {
  it('keep working after a result buffer is transferred away', () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    index.addSync([1, 2], [[0, 0], [1, 1]])
    const first = index.searchSync([0, 0], { k: 1 })
    structuredClone(first.keys, { transfer: [first.keys.buffer] })
    expect(first.keys.length).toBe(0) // detached
    expect(index.searchSync([1, 1], { k: 1 }).get(0).numberKeys()).toEqual([2])
  })

  it('a query taken from an earlier result buffer gives the right answer', () => {
    const index = new FlatIndex({ dimensions: 1, metric: 'l2sq' })
    index.addSync([1, 2, 3], [[0], [0.5], [10]])
    const first = index.searchSync([0.4], { k: 2 })
    // first.distances lives in the pool buffer the next search writes into.
    const query = first.distances.subarray(0, 1) // 0.01 → nearest is key 1 (0)
    const again = index.searchSync(query, { k: 1 })
    expect(again.get(0).numberKeys()).toEqual([1])
  })

  it('searchSync with a large k sizes its output even while an async add grows the index', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    index.addSync(Uint32Array.from({ length: 1000 }, (_, i) => i), randomMatrix(1000, 2, 3))
    const growing = index.add(Uint32Array.from({ length: 50_000 }, (_, i) => 1000 + i), randomMatrix(50_000, 2, 4))
    for (let i = 0; i < 50; i++) {
      const r = index.searchSync([0, 0], { k: 5000 })
      expect(r.k).toBeGreaterThanOrEqual(1000)
      expect(r.counts[0]).toBe(r.k)
    }
    await growing
  })
})

describe('streams and signals', () => {
  it('searchStream with an already-aborted signal rejects at once', async () => {
    const index = new FlatIndex({ dimensions: 2 })
    index.addSync([1], [[1, 0]])
    await expectCode(index.searchStream([[1, 0]], { k: 1, signal: AbortSignal.abort() }).next(), 'ERR_ABORTED')
  })

  it('addStream refuses to wrap bare-vector keys past 2^64 − 1', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    await expectCode(index.addStream([[1, 1], [2, 2]], { startKey: 2n ** 64n - 1n }), 'ERR_INVALID_ARGUMENT')
    expect(index.contains(0)).toBe(false)
  })

  it('addStream items with a missing or non-numeric vector are typed errors', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    await expectCode(index.addStream([{ key: 1, vector: null as never }]), 'ERR_INVALID_ARGUMENT')
    await expectCode(index.addStream([{ key: 1, vector: ['1', '2'] as never }]), 'ERR_INVALID_ARGUMENT')
    await expectCode(index.addStream([{ key: 1, vector: [1, 2, 3, 4] }]), 'ERR_DIMENSION_MISMATCH')
  })
})
