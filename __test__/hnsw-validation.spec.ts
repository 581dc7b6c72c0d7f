import { describe, expect, it } from 'vitest'
import { HnswIndex, VecdexError } from '../dist/index.js'
import { expectCode, randomMatrix } from './helpers'
import { row, selfHitRate, seqKeys } from './hnsw-helpers'
import { checksAfterAbort, hooks, WORKERS } from './trace-hooks'

/** A small cosine index of 3-d vectors under keys 1 and 2. */
function makeIndex() {
  const index = new HnswIndex({ dimensions: 3, metric: 'cosine' })
  index.addSync([1, 2], [[1, 0, 0], [0, 1, 0]])
  return index
}

/** Everything a failed call must leave unchanged. */
function snapshot(index: HnswIndex) {
  const { size, tombstones, nodesPerLevel } = index.stats()
  return { size, tombstones, nodesPerLevel, keys: Array.from(index.keys()).sort() }
}

describe('HnswIndex options', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['m = 1', { m: 1 }],
    ['m = 257', { m: 257 }],
    ['m = 1.5', { m: 1.5 }],
    ['m = NaN', { m: NaN }],
    ['m as a string', { m: '16' }],
    ['efConstruction = 0', { efConstruction: 0 }],
    ['efConstruction = 65537', { efConstruction: 65537 }],
    ['efSearch = 0', { efSearch: 0 }],
    ['efSearch = 65537', { efSearch: 65537 }],
    ['efSearch = -1', { efSearch: -1 }],
    ['insertionOrder unknown', { insertionOrder: 'sorted' }],
    ['insertionOrder not a string', { insertionOrder: 1 }],
    ['seed negative', { seed: -1 }],
    ['seed fractional', { seed: 0.5 }],
    ['seed above 2^53 − 1', { seed: 2 ** 53 }],
    ['seed as a bigint', { seed: 5n }],
    ['metric hamming', { metric: 'hamming' }],
    ['metric unknown', { metric: 'euclidean' }],
    ['dimensions 0', { dimensions: 0 }],
    ['dimensions 65537', { dimensions: 65537 }],
    ['dimensions fractional', { dimensions: 2.5 }],
  ]
  for (const [what, options] of bad) {
    it(`${what} → ERR_INVALID_ARGUMENT`, async () => {
      await expectCode(() => new HnswIndex({ dimensions: 4, ...options } as never), 'ERR_INVALID_ARGUMENT')
    })
  }

  it('options missing or not an object → ERR_INVALID_ARGUMENT', async () => {
    await expectCode(() => new HnswIndex(undefined as never), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new HnswIndex(16 as never), 'ERR_INVALID_ARGUMENT')
  })

  it('accepts the boundary values', () => {
    for (const options of [{ m: 2 }, { m: 256 }, { efConstruction: 1 }, { efConstruction: 65536 }, { efSearch: 1 }, { efSearch: 65536 }, { seed: 0 }, { seed: 2 ** 53 - 1 }]) {
      using index = new HnswIndex({ dimensions: 4, metric: 'l2sq', ...options })
      index.addSync([1, 2, 3], [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2]])
      expect(index.searchSync([1, 1, 1, 1.1], { k: 1 }).get(0).numberKeys()).toEqual([2])
    }
  })
})

// Each row: what is wrong, the call, the code it must produce.
const table: [string, (i: HnswIndex) => unknown, string][] = [
  ['efSearch 0 per search', (i) => i.search([1, 0, 0], { k: 1, efSearch: 0 }), 'ERR_INVALID_ARGUMENT'],
  ['efSearch 0 per searchSync', (i) => i.searchSync([1, 0, 0], { k: 1, efSearch: 0 }), 'ERR_INVALID_ARGUMENT'],
  ['efSearch 65537 per search', (i) => i.search([1, 0, 0], { k: 1, efSearch: 65537 }), 'ERR_INVALID_ARGUMENT'],
  ['efSearch 65537 per searchSync', (i) => i.searchSync([1, 0, 0], { k: 1, efSearch: 65537 }), 'ERR_INVALID_ARGUMENT'],
  ['efSearch fractional', (i) => i.searchSync([1, 0, 0], { k: 1, efSearch: 1.5 }), 'ERR_INVALID_ARGUMENT'],
  ['efSearch as a string', (i) => i.search([1, 0, 0], { k: 1, efSearch: '64' as never }), 'ERR_INVALID_ARGUMENT'],
  ['efSearch 0 in searchStream', (i) => i.searchStream([[1, 0, 0]], { k: 1, efSearch: 0 }).next(), 'ERR_INVALID_ARGUMENT'],
  ['k = 0', (i) => i.search([1, 0, 0], { k: 0 }), 'ERR_INVALID_ARGUMENT'],
  ['k fractional', (i) => i.searchSync([1, 0, 0], { k: 2.5 }), 'ERR_INVALID_ARGUMENT'],
  ['query with too few dimensions', (i) => i.search([1, 0], { k: 1 }), 'ERR_DIMENSION_MISMATCH'],
  ['sync query with too many dimensions', (i) => i.searchSync(new Float32Array(4), { k: 1 }), 'ERR_DIMENSION_MISMATCH'],
  ['vector of the wrong length', (i) => i.add([3], [[1, 2, 3, 4]]), 'ERR_DIMENSION_MISMATCH'],
  ['batch not a whole number of rows', (i) => i.addSync([3, 4], new Float32Array(5)), 'ERR_DIMENSION_MISMATCH'],
  ['one bad row in a batch', (i) => i.add([3, 4, 5], [[1, 1, 1], [1, 1], [2, 2, 2]]), 'ERR_DIMENSION_MISMATCH'],
  ['NaN in a vector (async)', (i) => i.add([3, 4], [[1, 1, 1], [NaN, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['NaN in a vector (sync)', (i) => i.addSync([3], new Float32Array([1, NaN, 1])), 'ERR_INVALID_ARGUMENT'],
  ['Infinity in a vector', (i) => i.add([3], [[Infinity, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['NaN in a query', (i) => i.search([NaN, 0, 0], { k: 1 }), 'ERR_INVALID_ARGUMENT'],
  ['NaN in a sync query', (i) => i.searchSync([0, NaN, 0], { k: 1 }), 'ERR_INVALID_ARGUMENT'],
  ['zero vector under cosine (async)', (i) => i.add([3, 4], [[1, 1, 1], [0, 0, 0]]), 'ERR_ZERO_VECTOR'],
  ['zero vector under cosine (sync)', (i) => i.addSync([3], [[0, 0, 0]]), 'ERR_ZERO_VECTOR'],
  ['zero query under cosine', (i) => i.search([0, 0, 0], { k: 1 }), 'ERR_ZERO_VECTOR'],
  ['zero sync query under cosine', (i) => i.searchSync([0, 0, 0], { k: 1 }), 'ERR_ZERO_VECTOR'],
  ['zero vector upserting a present key', (i) => i.add([1], [[0, 0, 0]]), 'ERR_ZERO_VECTOR'],
  ['duplicate key in one batch (async)', (i) => i.add([5, 6, 5], [[1, 1, 1], [1, 2, 1], [1, 1, 2]]), 'ERR_INVALID_ARGUMENT'],
  ['duplicate key in one batch (sync)', (i) => i.addSync([5n, 5n], [[1, 1, 1], [1, 1, 2]]), 'ERR_INVALID_ARGUMENT'],
  ['duplicate of a present key in one batch', (i) => i.add([1, 1], [[1, 1, 1], [1, 1, 2]]), 'ERR_INVALID_ARGUMENT'],
  ['more keys than vectors', (i) => i.add([5, 6], [[1, 1, 1]]), 'ERR_DIMENSION_MISMATCH'],
  ['fewer keys than vectors', (i) => i.addSync([5], [[1, 1, 1], [2, 2, 2]]), 'ERR_DIMENSION_MISMATCH'],
  ['empty batch', (i) => i.add([], new Float32Array(0)), 'ERR_INVALID_ARGUMENT'],
  ['negative key', (i) => i.add([-1], [[1, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['bad filter key', (i) => i.search([1, 0, 0], { k: 1, filter: [1.5] }), 'ERR_INVALID_ARGUMENT'],
  ['filter of the wrong type', (i) => i.searchSync([1, 0, 0], { k: 1, filter: 'abc' as never }), 'ERR_INVALID_ARGUMENT'],
  ['signal of the wrong type', (i) => i.compact({ signal: {} as never }), 'ERR_INVALID_ARGUMENT'],
]

describe('HnswIndex bad input table', () => {
  for (const [what, call, code] of table) {
    it(`${what} → ${code}, nothing changed`, async () => {
      using index = makeIndex()
      const before = snapshot(index)
      await expectCode(async () => call(index), code)
      expect(snapshot(index)).toEqual(before)
      // Still usable afterwards.
      expect(index.searchSync([1, 0.1, 0], { k: 1 }).get(0).numberKeys()).toEqual([1])
    })
  }

  it('errors are VecdexError instances with a code', async () => {
    using index = makeIndex()
    let error: unknown
    try {
      await index.add([7], [[1, 2]])
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(VecdexError)
    expect((error as VecdexError).code).toBe('ERR_DIMENSION_MISMATCH')
  })

  it('a zero vector is fine under l2sq and dot', () => {
    for (const metric of ['l2sq', 'dot'] as const) {
      using index = new HnswIndex({ dimensions: 3, metric })
      index.addSync([1, 2], [[0, 0, 0], [1, 1, 1]])
      expect(index.size).toBe(2)
      expect(index.searchSync([0, 0, 0], { k: 2 }).get(0).keys.length).toBe(2)
    }
  })

  it('a failed batch in a large index adds nothing and takes no slot', async () => {
    const dim = 8
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    index.addSync(seqKeys(500), randomMatrix(500, dim, 1))
    const before = snapshot(index)
    const batch = randomMatrix(300, dim, 2)
    batch[299 * dim + 3] = NaN // the last row is bad
    await expectCode(index.add(seqKeys(300, 1000), batch), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.addSync(seqKeys(300, 1000), batch), 'ERR_INVALID_ARGUMENT')
    expect(snapshot(index)).toEqual(before)
    expect(index.contains(1000)).toBe(false)
  })
})

describe('HnswIndex lifecycle', () => {
  it('close() is idempotent; every later call throws or rejects with ERR_CLOSED', async () => {
    const index = makeIndex()
    index.close()
    index.close()
    expect(index.closed).toBe(true)
    await expectCode(index.search([1, 0, 0], { k: 1 }), 'ERR_CLOSED')
    await expectCode(() => index.searchSync([1, 0, 0], { k: 1 }), 'ERR_CLOSED')
    await expectCode(() => index.searchSync([1, 0, 0], { k: 1, efSearch: 10, filter: [1] }), 'ERR_CLOSED')
    await expectCode(index.add([3], [[1, 1, 1]]), 'ERR_CLOSED')
    await expectCode(() => index.addSync([3], [[1, 1, 1]]), 'ERR_CLOSED')
    await expectCode(index.remove([1]), 'ERR_CLOSED')
    await expectCode(() => index.removeSync([1]), 'ERR_CLOSED')
    await expectCode(index.compact(), 'ERR_CLOSED')
    await expectCode(() => index.compactSync(), 'ERR_CLOSED')
    await expectCode(() => index.stats(), 'ERR_CLOSED')
    await expectCode(() => index.get(1), 'ERR_CLOSED')
    await expectCode(() => index.contains(1), 'ERR_CLOSED')
    await expectCode(() => index.keys(), 'ERR_CLOSED')
    await expectCode(() => index.size, 'ERR_CLOSED')
    await expectCode(() => index.memoryBytes, 'ERR_CLOSED')
    await expectCode(index.addStream([]), 'ERR_CLOSED')
    await expectCode(index.searchStream([[1, 0, 0]], { k: 1 }).next(), 'ERR_CLOSED')
  })

  it('`using` closes the index at scope end', () => {
    let escaped: HnswIndex
    {
      using index = makeIndex()
      escaped = index
      expect(escaped.closed).toBe(false)
    }
    expect(escaped.closed).toBe(true)
    expect(() => escaped.searchSync([1, 0, 0], { k: 1 })).toThrow(VecdexError)
  })

  it('a search and an add in flight during close() finish normally', async () => {
    const dim = 16
    const n = 4000
    const base = randomMatrix(n, dim, 3)
    const index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    index.addSync(seqKeys(n), base)
    const search = index.searchBatch(base, { k: 1, efSearch: 64 })
    const add = index.add(seqKeys(500, n), randomMatrix(500, dim, 4))
    index.close()
    const self = selfHitRate(await search, seqKeys(n))
    expect(self.rate).toBeGreaterThanOrEqual(0.999)
    await expect(add).resolves.toBeUndefined()
    await expectCode(index.search(base.subarray(0, dim), { k: 1 }), 'ERR_CLOSED')
  })

  it('an already aborted signal rejects with ERR_ABORTED and changes nothing', async () => {
    const dim = 8
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    index.addSync(seqKeys(200), randomMatrix(200, dim, 5))
    const before = snapshot(index)
    const signal = AbortSignal.abort()
    await expectCode(index.add(seqKeys(100, 1000), randomMatrix(100, dim, 6), { signal }), 'ERR_ABORTED')
    await expectCode(index.add([0, 1], randomMatrix(2, dim, 7), { signal }), 'ERR_ABORTED') // upserts too
    await expectCode(index.searchBatch(randomMatrix(3, dim, 8), { k: 2, signal }), 'ERR_ABORTED')
    await expectCode(index.compact({ signal }), 'ERR_ABORTED')
    await expectCode(index.addStream([randomMatrix(1, dim, 9)], { signal }), 'ERR_ABORTED')
    await expectCode(index.searchStream([randomMatrix(1, dim, 9)], { k: 1, signal }).next(), 'ERR_ABORTED')
    expect(snapshot(index)).toEqual(before)
    expect(Array.from(index.get(0)!)).toEqual(Array.from(row(randomMatrix(200, dim, 5), dim, 0)))
  })

  it('aborting an add while it links rejects with ERR_ABORTED, adds none of it, and the index stays sound', async () => {
    const dim = 16
    const n = 2000
    const base = randomMatrix(n, dim, 10)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq' })
    index.addSync(seqKeys(n), base)
    const batch = randomMatrix(30_000, dim, 11)
    const batchKeys = seqKeys(30_000, 100_000)
    const controller = new AbortController()
    // Count the add's checks (one per node linked); nothing stops it but the signal.
    hooks.debugTraceAborts(true)
    try {
      const pending = index.add(batchKeys, batch, { signal: controller.signal })
      // Aborted once linking is under way (a check per node linked; the first two come before):
      // about 30,000 nodes are left then; each thread stops at its next node (and one chunk of
      // nodes it may have taken up meanwhile).
      expect(await checksAfterAbort(pending, controller, () => hooks.debugAbortChecks() >= 50)).toBeLessThanOrEqual(2 * WORKERS)
    } finally {
      hooks.debugTraceAborts(false)
    }
    expect(index.size).toBe(n)
    expect(index.contains(100_000)).toBe(false)
    expect(index.contains(129_999)).toBe(false)
    // Half-linked nodes are never returned.
    const r = await index.searchBatch(batch.subarray(0, 500 * dim), { k: 5, efSearch: 64 })
    for (const hit of r) for (const key of hit.keys) expect(key).toBeLessThan(BigInt(n))
    // The original vectors still find themselves.
    const self = selfHitRate(await index.searchBatch(base, { k: 1, efSearch: 128 }), seqKeys(n))
    expect(self.rate, `missed ${self.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
    // A later add works, and its vectors find themselves.
    const again = batch.subarray(0, 3000 * dim)
    await index.add(batchKeys.subarray(0, 3000), again)
    expect(index.size).toBe(n + 3000)
    const selfAgain = selfHitRate(await index.searchBatch(again, { k: 1, efSearch: 128 }), batchKeys.subarray(0, 3000))
    expect(selfAgain.rate, `missed ${selfAgain.misses.slice(0, 20)}`).toBeGreaterThanOrEqual(0.999)
  })
})
