// Issue 16, finding 6: `searchSync` sizes its results by what the index can return
// (queries × min(k, size)), not by queries × k, and both twins of every index kind give the
// same results, or the same typed error, for the same call: huge k on a small index, many
// queries, and more results than one search returns (queries × min(k, size) above 2^28).
import { describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, MultiVectorIndex, type SearchResults } from '../dist/index.js'
import { randomMatrix } from './helpers'

const MAX_RESULT_CELLS = 2 ** 28

type Single = FlatIndex | HnswIndex

const SINGLE_KINDS: [string, (dimensions: number) => Single][] = [
  ['FlatIndex', (dimensions) => new FlatIndex({ dimensions, metric: 'l2sq' })],
  ['HnswIndex', (dimensions) => new HnswIndex({ dimensions, metric: 'l2sq', seed: 3 })],
  ['FlatIndex sq8', (dimensions) => new FlatIndex({ dimensions, metric: 'l2sq', quantization: 'sq8', trainingSize: 1 })],
  ['HnswIndex sq8', (dimensions) => new HnswIndex({ dimensions, metric: 'l2sq', quantization: 'sq8', trainingSize: 1, seed: 3 })],
]

/** The results as plain data, row by row (only the valid hits: padding is not compared); of a
 * huge batch (only where an error was expected), just its shape. */
function plain(r: SearchResults) {
  if (r.length > 10_000) return { k: r.k, length: r.length }
  return { k: r.k, length: r.length, rows: [...r].map((q) => ({ keys: [...q.keys], distances: [...q.distances] })) }
}

/** Runs both twins; returns their results, or their errors as { code, message }. */
async function twins(sync: () => SearchResults, async: () => Promise<SearchResults>) {
  const outcome = async (run: () => SearchResults | Promise<SearchResults>) => {
    try {
      return { ok: plain(await run()) }
    } catch (error) {
      const e = error as { name?: string; code?: string; message?: string }
      return { error: { name: e.name, code: e.code, message: e.message } }
    }
  }
  return [await outcome(sync), await outcome(async)] as const
}

async function filled(make: (dimensions: number) => Single, size: number, dimensions: number, seed: number) {
  const index = make(dimensions)
  if (size > 0) await index.add(Array.from({ length: size }, (_, i) => i * 3 + 1), randomMatrix(size, dimensions, seed))
  return index
}

describe.each(SINGLE_KINDS)('%s: searchSync and search agree', (_, make) => {
  const SIZES = [0, 1, 7, 50]
  const QUERIES = [1, 3, 300]
  const KS = (size: number) => [...new Set([1, Math.max(1, size), size + 1, 1024, 1025, 100_000, 4_294_967_295])]

  for (const size of SIZES) {
    it(`size ${size}: every (queries, k) gives the same results in both twins, stride min(k, size)`, async () => {
      const dimensions = 5
      using index = await filled(make, size, dimensions, 10 + size)
      for (const queries of QUERIES) {
        const matrix = randomMatrix(queries, dimensions, 100 + queries)
        for (const k of KS(size)) {
          const [sync, asynchronous] = await twins(
            () => index.searchBatchSync(matrix, { k }),
            () => index.searchBatch(matrix, { k }),
          )
          expect(sync, `queries ${queries}, k ${k}`).toEqual(asynchronous)
          if (size === 0) continue // an untrained compressed index refuses: the same error twice
          expect(sync.ok?.k, `queries ${queries}, k ${k}`).toBe(Math.min(k, size))
          expect(sync.ok?.length).toBe(queries)
        }
      }
    })
  }

  it('many queries with k ≤ 1024 on a small index: sized by the index, not by queries × k', async () => {
    // Each product queries × k × 12 bytes is over 4 GiB (more than one typed array holds),
    // while the index returns a few hits per query.
    for (const [queries, k, size] of [
      [360_000, 1024, 7],
      [400_000, 1000, 3],
      [524_288, 700, 2],
    ]) {
      using index = await filled(make, size, 1, queries)
      const matrix = randomMatrix(queries, 1, 5)
      const sync = index.searchBatchSync(matrix, { k })
      const asynchronous = await index.searchBatch(matrix, { k })
      expect(sync.k).toBe(size)
      expect(sync.length).toBe(queries)
      expect(sync.keys.length).toBe(queries * size)
      expect(asynchronous.k).toBe(size)
      // Compare a sample of rows (all of them would be slow in plain JS).
      for (const q of [0, 1, queries >> 1, queries - 1]) {
        expect([...sync.get(q).keys]).toEqual([...asynchronous.get(q).keys])
        expect([...sync.get(q).distances]).toEqual([...asynchronous.get(q).distances])
      }
    }
  })

  it('more results than one search returns: the same typed error from both twins, nothing allocated', async () => {
    for (const [size, k, extraRows] of [
      [64, 64, 1],
      [64, 4_294_967_295, 1],
      [64, 1000, 7],
      [256, 300, 1],
    ]) {
      using index = await filled(make, size, 1, size)
      const columns = Math.min(k, size)
      const queries = MAX_RESULT_CELLS / columns + extraRows
      const matrix = new Float32Array(queries).fill(0.5)
      const [sync, asynchronous] = await twins(
        () => index.searchBatchSync(matrix, { k }),
        () => index.searchBatch(matrix, { k }),
      )
      expect(sync.error?.code, `size ${size}, k ${k}`).toBe('ERR_INVALID_ARGUMENT')
      expect(sync.error?.name).toBe('VecdexError')
      expect(sync).toEqual(asynchronous)
      // Just at the limit is allowed (checked on fewer rows: a smaller k keeps it cheap).
      const ok = index.searchBatchSync(matrix.subarray(0, 1000), { k })
      expect(ok.k).toBe(columns)
    }
  })
})

/** searchExact with a larger k aborts the process today: vecdex-fde's TokenStore::search
 * allocates a top-k heap of capacity k per query (34 GB for k = 2^32 − 1) instead of
 * min(k, documents). Owned by the multi-vector helper; the skipped test below covers it. */
const EXACT_K_LIMIT = 100_000

describe('MultiVectorIndex: searchSync and search agree', () => {
  const dimensions = 4
  const fde = { numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 4 }

  for (const size of [0, 1, 6, 30]) {
    it(`size ${size}: every (queries, k) gives the same results in both twins`, async () => {
      using index = new MultiVectorIndex({ dimensions, fde })
      if (size > 0) {
        const docs = Array.from({ length: size }, (_, d) => randomMatrix(2 + (d % 3), dimensions, 40 + d))
        await index.add(Array.from({ length: size }, (_, d) => d + 1), docs)
      }
      for (const queries of [1, 4, 50]) {
        const clouds = Array.from({ length: queries }, (_, q) => randomMatrix(1 + (q % 2), dimensions, 700 + q))
        const tokens = new Float32Array(clouds.reduce((n, c) => n + c.length, 0))
        const offsets = new Uint32Array(queries + 1)
        let at = 0
        for (let q = 0; q < queries; q++) {
          tokens.set(clouds[q], at)
          at += clouds[q].length
          offsets[q + 1] = at / dimensions
        }
        for (const k of [...new Set([1, Math.max(1, size), size + 1, 1024, 1025, 4_294_967_295])]) {
          const batch = { tokens, offsets }
          const [sync, asynchronous] = await twins(
            () => index.searchBatchSync(batch, { k }),
            () => index.searchBatch(batch, { k }),
          )
          expect(sync, `queries ${queries}, k ${k}`).toEqual(asynchronous)
          expect(sync.ok?.k).toBe(Math.min(k, size))
          if (k > EXACT_K_LIMIT) continue // see the skipped test below
          const [exactSync, exactAsync] = await twins(
            () => index.searchExactBatchSync(batch, { k }),
            () => index.searchExactBatch(batch, { k }),
          )
          expect(exactSync).toEqual(exactAsync)
          expect(exactSync.ok?.k).toBe(Math.min(k, size))
        }
      }
    })
  }

  it('searchExact with k 2^32 − 1 on a small index answers by the index size', async () => {
    using index = new MultiVectorIndex({ dimensions, fde })
    await index.add([1, 2], [randomMatrix(2, dimensions, 1), randomMatrix(3, dimensions, 2)])
    const query = randomMatrix(2, dimensions, 3)
    const [sync, asynchronous] = await twins(
      () => index.searchExactSync(query, { k: 4_294_967_295 }),
      () => index.searchExact(query, { k: 4_294_967_295 }),
    )
    expect(sync).toEqual(asynchronous)
    expect(sync.ok?.k).toBe(2)
  })
})

describe('streams size their batch buffers by the rows that come, not by batchSize', () => {
  it.each([
    [65_536, 1 << 24, 3],
    [4096, 1 << 24, 40],
    [1, 1 << 24, 5000],
    [7, 3, 10],
  ])('dimensions %i, batchSize %i, %i rows: addStream and searchStream', async (dimensions, batchSize, n) => {
    for (const make of [() => new FlatIndex({ dimensions, metric: 'l2sq' }), () => new HnswIndex({ dimensions, metric: 'l2sq' })]) {
      using index = make()
      const data = randomMatrix(n, dimensions, n)
      const rows = Array.from({ length: n }, (_, i) => data.subarray(i * dimensions, (i + 1) * dimensions))
      expect(await index.addStream(rows, { batchSize })).toBe(n)
      expect(index.size).toBe(n)
      let seen = 0
      for await (const batch of index.searchStream(rows, { k: 1, batchSize })) {
        for (const hit of batch) expect(Number(hit.keys[0])).toBe(seen++)
      }
      expect(seen).toBe(n)
    }
  })
})
