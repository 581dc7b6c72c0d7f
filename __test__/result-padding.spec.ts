// Rows with fewer hits than their k columns are padded with SearchResults.NO_KEY (2^64 − 1) and
// +Infinity: a key no index accepts, so padding never reads as a hit on a real key (it was key
// 0, a valid key, before). Adding that key is ERR_INVALID_ARGUMENT; looking it up, removing it
// or filtering by it finds nothing.
import { describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, MultiVectorIndex, SearchResults, VecdexError } from '../dist/index.js'
import { expectCode, randomMatrix } from './helpers'

const DIM = 4
const NO_KEY = 2n ** 64n - 1n

/** Row 0 holds `hits` hits, then padding. */
function expectPadded(results: SearchResults, hits: number) {
  expect(results.counts[0]).toBe(hits)
  for (let c = hits; c < results.k; c++) {
    expect(results.keys[c], `key at column ${c}`).toBe(NO_KEY)
    expect(results.distances[c], `distance at column ${c}`).toBe(Infinity)
  }
  for (let c = 0; c < hits; c++) expect(results.keys[c]).not.toBe(NO_KEY)
  expect(Array.from(results.keys.subarray(0, results.k))).not.toContain(0n)
  expect(results.get(0).keys.length).toBe(hits)
}

const cloud = (seed: number) => randomMatrix(3, DIM, seed)

const indexes = {
  FlatIndex: () => new FlatIndex({ dimensions: DIM, metric: 'l2sq' }),
  HnswIndex: () => new HnswIndex({ dimensions: DIM, metric: 'l2sq' }),
}

describe('padding of rows shorter than k', () => {
  it('the padding key is 2^64 − 1', () => {
    expect(SearchResults.NO_KEY).toBe(NO_KEY)
  })

  for (const [name, make] of Object.entries(indexes)) {
    it(`${name}: sync and async searches pad with NO_KEY and +Infinity, never key 0`, async () => {
      using index = make()
      index.addSync([0, 1, 2, 3, 4], randomMatrix(5, DIM, 1)) // key 0 is stored
      const filter = [3, 4]
      expectPadded(index.searchSync(randomMatrix(1, DIM, 2), { k: 5, filter }), 2)
      expectPadded(await index.search(randomMatrix(1, DIM, 2), { k: 5, filter }), 2)
      expectPadded(index.searchSync(randomMatrix(1, DIM, 2), { k: 5, filter: [NO_KEY] }), 0)
    })
  }

  it('MultiVectorIndex: search and searchExact pad with NO_KEY', async () => {
    using index = new MultiVectorIndex({ dimensions: DIM, metric: 'dot' })
    index.addSync([0, 1, 2], [cloud(1), cloud(2), cloud(3)])
    expectPadded(index.searchSync(cloud(4), { k: 3, filter: [2] }), 1)
    expectPadded(await index.search(cloud(4), { k: 3, filter: [2] }), 1)
    expectPadded(index.searchExactSync(cloud(4), { k: 3, filter: [2] }), 1)
  })
})

describe('the reserved key', () => {
  for (const [name, make] of Object.entries(indexes)) {
    it(`${name}: adding it is ERR_INVALID_ARGUMENT and adds nothing; reads, removes and filters are harmless`, async () => {
      using index = make()
      index.addSync([1], randomMatrix(1, DIM, 1))
      for (const add of [() => index.addSync([2, NO_KEY], randomMatrix(2, DIM, 2)), () => index.add([NO_KEY], randomMatrix(1, DIM, 3)), () => index.addStream([{ key: NO_KEY, vector: randomMatrix(1, DIM, 4) }])]) {
        await expectCode(add, 'ERR_INVALID_ARGUMENT')
        const error = await Promise.resolve().then(add).then(
          () => undefined,
          (e: unknown) => e,
        )
        expect((error as VecdexError).message).toMatch(/key 18446744073709551615 is reserved/)
      }
      expect(index.size).toBe(1)
      expect(index.contains(NO_KEY)).toBe(false)
      expect(index.get(NO_KEY)).toBeUndefined()
      expect(index.removeSync([NO_KEY])).toBe(0)
      expect(await index.remove([NO_KEY])).toBe(0)
    })
  }

  it('MultiVectorIndex: adding it is ERR_INVALID_ARGUMENT', async () => {
    using index = new MultiVectorIndex({ dimensions: DIM, metric: 'dot' })
    await expectCode(() => index.addSync([NO_KEY], [cloud(1)]), 'ERR_INVALID_ARGUMENT')
    await expectCode(index.add([5, NO_KEY], [cloud(1), cloud(2)]), 'ERR_INVALID_ARGUMENT')
    expect(index.size).toBe(0)
    expect(index.removeSync([NO_KEY])).toBe(0)
  })
})
