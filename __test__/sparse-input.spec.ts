// Issue 16, finding 7: a hole in a sparse array (`[a, , b]`, `new Array(n)`, `delete rows[i]`)
// is an error (ERR_INVALID_ARGUMENT) wherever vectors, rows, tokens, documents, offsets or keys
// come in, never a zero vector, an empty document or a zero offset: rows and queries of every
// index kind, batches, stream items, multi-vector token rows, FDE clouds, distances. A refused
// write leaves the index unchanged.
import { describe, expect, it } from 'vitest'
import { chamfer, distance, distanceMatrix, distanceMatrixSync, FdeEncoder, FlatIndex, HnswIndex, MultiVectorIndex } from '../dist/index.js'
import { expectCode } from './helpers'

const DIM = 3

/** How a sparse array is made: `new Array(n)` filled except at the holes, or a full array
 * with `delete`d elements, or an array literal with elisions. */
const MAKERS: [string, <T>(values: T[], holes: number[]) => T[]][] = [
  [
    'new Array(n)',
    <T>(values: T[], holes: number[]) => {
      const out = new Array<T>(values.length)
      values.forEach((v, i) => {
        if (!holes.includes(i)) out[i] = v
      })
      return out
    },
  ],
  [
    'delete',
    <T>(values: T[], holes: number[]) => {
      const out = [...values]
      for (const i of holes) delete out[i]
      return out
    },
  ],
  [
    'length past the end',
    <T>(values: T[], holes: number[]) => {
      // Holes made by assigning past the end (`a[5] = x` on a shorter array).
      const out: T[] = []
      values.forEach((v, i) => {
        if (!holes.includes(i)) out[i] = v
      })
      out.length = values.length
      return out
    },
  ],
]

/** Hole positions in an array of `n` elements: first, middle, last, several, every one. */
function positions(n: number): number[][] {
  const all = [[0], [n >> 1], [n - 1], [0, n - 1], [1, 2], Array.from({ length: n }, (_, i) => i)]
  return all.filter((p) => p.every((i) => i < n)).filter((p, i, a) => a.findIndex((q) => q.join() === p.join()) === i)
}

/** Every sparse variant of `values`: (description, sparse array). */
function sparseVariants<T>(values: T[]): [string, T[]][] {
  const out: [string, T[]][] = []
  for (const [how, make] of MAKERS) for (const holes of positions(values.length)) out.push([`${how}, holes at ${holes.join(',')}`, make(values, holes)])
  return out
}

const rows = (n: number, seed = 1) => Array.from({ length: n }, (_, i) => Array.from({ length: DIM }, (_, j) => seed + i + j / 10))

type Single = FlatIndex | HnswIndex
const SINGLE_KINDS: [string, () => Single][] = [
  ['FlatIndex', () => new FlatIndex({ dimensions: DIM, metric: 'l2sq' })],
  ['HnswIndex', () => new HnswIndex({ dimensions: DIM, metric: 'l2sq' })],
]

describe.each(SINGLE_KINDS)('%s: holes are refused', (_, make) => {
  it('in an array of rows: add, addSync, add over existing keys (upsert); nothing stored', async () => {
    using index = make()
    index.addSync([100, 101], rows(2, 50))
    for (const n of [1, 2, 3, 5]) {
      for (const [what, sparse] of sparseVariants(rows(n))) {
        const keys = Array.from({ length: n }, (_, i) => i + 1)
        await expectCode(() => index.addSync(keys, sparse), 'ERR_INVALID_ARGUMENT')
        await expectCode(index.add(keys, sparse), 'ERR_INVALID_ARGUMENT')
        await expectCode(() => index.addSync([100, 101, ...keys].slice(0, n), sparse), 'ERR_INVALID_ARGUMENT')
        expect(index.size, what).toBe(2)
      }
    }
    expect([...index.get(100)!]).toEqual([50, 50.1, 50.2].map(Math.fround))
  })

  it('in one vector given as number[] (holes inside a row, and a row that is all holes)', async () => {
    using index = make()
    for (const [, sparse] of sparseVariants([1, 2, 3])) {
      await expectCode(() => index.addSync(7, sparse), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.addSync([7], [sparse]), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.searchSync(sparse, { k: 1 }), 'ERR_INVALID_ARGUMENT')
    }
    // A whole batch as one flat number[] (n × DIM values), with holes.
    for (const [, sparse] of sparseVariants(rows(3).flat())) {
      await expectCode(() => index.addSync([1, 2, 3], sparse), 'ERR_INVALID_ARGUMENT')
    }
    await expectCode(() => index.addSync([1, 2, 3], new Array(3 * DIM)), 'ERR_INVALID_ARGUMENT')
    expect(index.size).toBe(0)
  })

  it('in queries: searchBatch, searchBatchSync, and searchStream items', async () => {
    using index = make()
    index.addSync([1, 2, 3], rows(3))
    for (const n of [1, 2, 4]) {
      for (const [what, sparse] of sparseVariants(rows(n))) {
        await expectCode(() => index.searchBatchSync(sparse, { k: 2 }), 'ERR_INVALID_ARGUMENT')
        await expectCode(index.searchBatch(sparse, { k: 2 }), 'ERR_INVALID_ARGUMENT')
        expect(what).toBeTruthy()
      }
    }
    // A stream item is one query: holes in it.
    for (const [, sparse] of sparseVariants(rows(1)[0])) {
      const stream = async () => {
        for await (const _ of index.searchStream([rows(1)[0], sparse], { k: 2, batchSize: 2 })) {
          // drain
        }
      }
      await expectCode(stream, 'ERR_INVALID_ARGUMENT')
    }
    await expectCode(() => index.searchSync(new Array(DIM), { k: 1 }), 'ERR_INVALID_ARGUMENT')
  })

  it('in addStream items: bare vectors, { key, vector }, { keys, vectors } batches; nothing from the batch stored', async () => {
    for (const [what, sparse] of sparseVariants([1, 2, 3])) {
      using index = make()
      await expectCode(index.addStream([sparse]), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.addStream([{ key: 5, vector: sparse }]), 'ERR_INVALID_ARGUMENT')
      expect(index.size, what).toBe(0)
    }
    for (const [what, sparse] of sparseVariants(rows(3))) {
      using index = make()
      await expectCode(index.addStream([{ keys: [1, 2, 3], vectors: sparse }]), 'ERR_INVALID_ARGUMENT')
      expect(index.size, what).toBe(0)
    }
  })

  it('in keys and filters (a hole is not key 0)', async () => {
    using index = make()
    index.addSync([0, 1, 2], rows(3))
    for (const [, sparse] of sparseVariants([4, 5, 6])) {
      await expectCode(() => index.addSync(sparse, rows(3)), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.add(sparse, rows(3)), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.removeSync(sparse), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.searchSync(rows(1)[0], { k: 1, filter: sparse }), 'ERR_INVALID_ARGUMENT')
    }
    expect(index.size).toBe(3)
  })
})

describe('FlatIndex and HnswIndex: holes in a training sample', () => {
  it.each([
    ['FlatIndex', () => new FlatIndex({ dimensions: DIM, quantization: 'sq8' })],
    ['HnswIndex', () => new HnswIndex({ dimensions: DIM, quantization: 'sq8' })],
  ] as const)('%s train / trainSync', async (_, make) => {
    using index = make()
    for (const [, sparse] of sparseVariants(rows(4))) {
      await expectCode(() => index.trainSync(sparse), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.train(sparse), 'ERR_INVALID_ARGUMENT')
    }
    expect(index.isTrained).toBe(false)
  })
})

describe('MultiVectorIndex: holes are refused', () => {
  const fde = { numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 4 }
  const make = () => new MultiVectorIndex({ dimensions: DIM, metric: 'dot', fdeMetric: 'dot', fde })
  const doc = (seed: number, tokens = 3) => rows(tokens, seed)

  it('in token rows of a document, and in the array of documents: add, addSync, addStream', async () => {
    using index = make()
    index.addSync([100], [doc(9)])
    for (const [what, tokens] of sparseVariants(doc(1, 4))) {
      await expectCode(() => index.addSync([1], [tokens]), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.add([1], [tokens]), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.addStream([{ key: 1, tokens }]), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.addSync([100], [tokens]), 'ERR_INVALID_ARGUMENT')
      expect(index.size, what).toBe(1)
    }
    for (const [what, documents] of sparseVariants([doc(1), doc(2), doc(3), doc(4)])) {
      await expectCode(() => index.addSync([1, 2, 3, 4], documents), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.add([1, 2, 3, 4], documents), 'ERR_INVALID_ARGUMENT')
      expect(index.size, what).toBe(1)
    }
    expect(index.get(100)?.length).toBe(3 * DIM)
  })

  it('in CSR offsets given as number[] (a hole is not offset 0)', async () => {
    using index = make()
    const tokens = new Float32Array(rows(4).flat())
    for (const [, offsets] of sparseVariants([0, 1, 3, 4])) {
      await expectCode(() => index.addSync([1, 2, 3], { tokens, offsets }), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.searchBatchSync({ tokens, offsets }, { k: 1 }), 'ERR_INVALID_ARGUMENT')
    }
    expect(index.size).toBe(0)
  })

  it('in query token rows: search, searchSync, searchExact, searchExactSync, and their batch twins', async () => {
    using index = make()
    index.addSync([1, 2], [doc(1), doc(5)])
    for (const [, query] of sparseVariants(doc(2, 3))) {
      await expectCode(() => index.searchSync(query, { k: 1 }), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.search(query, { k: 1 }), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.searchExactSync(query, { k: 1 }), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.searchExact(query, { k: 1 }), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.searchBatchSync([doc(3), query], { k: 1 }), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.searchBatch([doc(3), query], { k: 1 }), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => index.searchExactBatchSync([doc(3), query], { k: 1 }), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.searchExactBatch([doc(3), query], { k: 1 }), 'ERR_INVALID_ARGUMENT')
    }
  })

  it('in training samples (train, trainSync)', async () => {
    using index = new MultiVectorIndex({ dimensions: DIM, metric: 'dot', fdeMetric: 'dot', fde, quantization: 'sq8' })
    for (const [, documents] of sparseVariants([doc(1), doc(2), doc(3)])) {
      await expectCode(() => index.trainSync(documents), 'ERR_INVALID_ARGUMENT')
      await expectCode(index.train(documents), 'ERR_INVALID_ARGUMENT')
    }
    expect(index.isTrained).toBe(false)
  })
})

describe('FdeEncoder, chamfer and distances: holes are refused', () => {
  it('FDE encoding of one cloud and of many', async () => {
    const encoder = new FdeEncoder({ dimensions: DIM, numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 4 })
    for (const [, cloud] of sparseVariants(rows(3))) {
      await expectCode(() => encoder.encodeQuery(cloud), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => encoder.encodeDocument(cloud), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => encoder.encodeQueriesSync([rows(2), cloud]), 'ERR_INVALID_ARGUMENT')
      await expectCode(encoder.encodeDocuments([cloud]), 'ERR_INVALID_ARGUMENT')
      await expectCode(() => chamfer(cloud, rows(2), DIM), 'ERR_INVALID_ARGUMENT')
    }
    for (const [, clouds] of sparseVariants([rows(1), rows(2), rows(3)])) {
      await expectCode(() => encoder.encodeQueriesSync(clouds), 'ERR_INVALID_ARGUMENT')
      await expectCode(encoder.encodeDocuments(clouds), 'ERR_INVALID_ARGUMENT')
    }
  })

  it('distance of number[] vectors (a hole is neither 0 nor NaN; strings are not numbers)', async () => {
    for (const [, sparse] of sparseVariants([1, 2, 3])) {
      for (const metric of ['l2sq', 'dot', 'cosine'] as const) {
        await expectCode(() => distance(sparse, [1, 2, 3], metric), 'ERR_INVALID_ARGUMENT')
        await expectCode(() => distance([1, 2, 3], sparse, metric), 'ERR_INVALID_ARGUMENT')
      }
    }
    await expectCode(() => distance(['1', '2'] as unknown as number[], [1, 2], 'l2sq'), 'ERR_INVALID_ARGUMENT')
  })

  it('distanceMatrix rows', async () => {
    for (const [, sparse] of sparseVariants(rows(3))) {
      await expectCode(() => distanceMatrixSync(sparse, rows(2), { dimensions: DIM, metric: 'l2sq' }), 'ERR_INVALID_ARGUMENT')
      await expectCode(distanceMatrix(rows(2), sparse, { dimensions: DIM, metric: 'l2sq' }), 'ERR_INVALID_ARGUMENT')
    }
  })
})
