// Issue 17, "single query and batch are unambiguous": a single query is exactly `dimensions`
// numbers (one point cloud for a MultiVectorIndex), a batch goes to the batch methods
// (searchBatch, searchBatchSync, searchExactBatch, searchExactBatchSync), and add counts vectors
// by its keys. Anything else is a typed error naming both lengths, from every index kind and
// both twins (the sync one throws, the async one rejects), and nothing is added.
//
// Before, `hnsw.search(new Float32Array(8), { k })` on a 4-d index returned 2 result rows, a
// 768-value embedding sent to a 384-d index gave two meaningless rows, and `add([4], eight
// numbers)` said "1 keys for 2 vectors" with ERR_INVALID_ARGUMENT.
import { describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, MultiVectorIndex, type SearchResults, VecdexError } from '../dist/index.js'
import { randomMatrix } from './helpers'

type VectorIndex = FlatIndex | HnswIndex
type Options = { k: number; filter?: number[]; efSearch?: number }

const VECTOR_KINDS: [string, (dimensions: number) => VectorIndex][] = [
  ['FlatIndex', (dimensions) => new FlatIndex({ dimensions, metric: 'l2sq' })],
  ['HnswIndex', (dimensions) => new HnswIndex({ dimensions, metric: 'l2sq', seed: 7 })],
]

/** One twin of each search method: how to call it with one query and with a batch. */
interface Twin {
  name: string
  sync: boolean
  one: (index: VectorIndex, query: unknown, options: Options) => SearchResults | Promise<SearchResults>
  batch: (index: VectorIndex, queries: unknown, options: Options) => SearchResults | Promise<SearchResults>
  /** The batch method an error about a single query should point at. */
  batchName: string
}

const TWINS: Twin[] = [
  { name: 'async', sync: false, one: (i, q, o) => i.search(q as never, o), batch: (i, q, o) => i.searchBatch(q as never, o), batchName: 'searchBatch' },
  { name: 'sync', sync: true, one: (i, q, o) => i.searchSync(q as never, o), batch: (i, q, o) => i.searchBatchSync(q as never, o), batchName: 'searchBatchSync' },
]

/**
 * The error of `call`: a sync twin must throw, an async one must return a promise that rejects
 * (never throw); either way a VecdexError. A call that succeeds fails the test, with what it
 * returned (the old behaviour: a wrong-length query answered as a batch).
 */
async function failure(call: () => unknown, sync: boolean): Promise<{ code: string; message: string }> {
  let returned: unknown
  try {
    returned = call()
  } catch (error) {
    expect(sync, `the async twin threw synchronously: ${String(error)}`).toBe(true)
    return described(error)
  }
  expect(sync, 'the sync twin returned instead of throwing').toBe(false)
  expect(returned).toBeInstanceOf(Promise)
  try {
    returned = await returned
  } catch (error) {
    return described(error)
  }
  const rows = (returned as SearchResults | undefined)?.length
  throw new Error(`expected an error, got success${rows === undefined ? '' : ` with ${rows} result rows`}`)
}

function described(error: unknown): { code: string; message: string } {
  expect(error).toBeInstanceOf(VecdexError)
  const { code, message } = error as VecdexError
  return { code, message }
}

/** The rows of a result as plain data (only the valid hits). */
function rowsOf(results: SearchResults) {
  return [...results].map((row) => ({ keys: [...row.keys], distances: [...row.distances] }))
}

const D = 4
const N = 300
const BASE = randomMatrix(N, D, 1)
const QUERIES = randomMatrix(6, D, 2)
const KEYS = Array.from({ length: N }, (_, i) => i * 2 + 1)
const row = (matrix: Float32Array, i: number, dimensions = D) => matrix.slice(i * dimensions, (i + 1) * dimensions)

async function filled(make: (dimensions: number) => VectorIndex): Promise<VectorIndex> {
  const index = make(D)
  await index.add(KEYS, BASE)
  return index
}

describe.each(VECTOR_KINDS)('%s: one query is exactly `dimensions` numbers', (_, make) => {
  for (const twin of TWINS) {
    it(`${twin.name}: a query of 8 values on a 4-d index is ERR_DIMENSION_MISMATCH pointing at ${twin.batchName} (the issue's repro)`, async () => {
      using index = await filled(make)
      for (const query of [new Float32Array(8).fill(0.5), new Float64Array(8).fill(0.5), Array.from({ length: 8 }, () => 0.5)]) {
        const error = await failure(() => twin.one(index, query, { k: 3 }), twin.sync)
        expect(error.code, query.constructor.name).toBe('ERR_DIMENSION_MISMATCH')
        expect(error.message).toMatch(/\b8\b/)
        expect(error.message).toMatch(/\b4\b/)
        expect(error.message).toContain(twin.batchName)
      }
    })

    it(`${twin.name}: a 768-value embedding on a 384-d index is ERR_DIMENSION_MISMATCH naming 768 and 384`, async () => {
      using index = make(384)
      await index.add([1, 2, 3], randomMatrix(3, 384, 3))
      const error = await failure(() => twin.one(index, randomMatrix(1, 768, 4), { k: 2 }), twin.sync)
      expect(error.code).toBe('ERR_DIMENSION_MISMATCH')
      expect(error.message).toContain('768')
      expect(error.message).toContain('384')
      expect(error.message).toContain(twin.batchName)
    })

    it(`${twin.name}: shorter, longer and empty queries are ERR_DIMENSION_MISMATCH naming both lengths`, async () => {
      using index = await filled(make)
      for (const length of [0, 1, 3, 5, 7, 12, 4 * 100]) {
        for (const query of [new Float32Array(length).fill(0.25), Array.from({ length }, () => 0.25)]) {
          const error = await failure(() => twin.one(index, query, { k: 3 }), twin.sync)
          expect(error.code, `length ${length}`).toBe('ERR_DIMENSION_MISMATCH')
          expect(error.message).toContain(`has ${length} values`)
          expect(error.message).toContain(`${D} dimensions`)
          // Only a whole multiple of the dimensions is pointed at the batch method.
          if (length > D && length % D === 0) expect(error.message).toContain(`${length / D} queries`)
          else expect(error.message).not.toContain('searchBatch')
        }
      }
      expect(index.size).toBe(N)
    })

    it(`${twin.name}: an array of rows (even of one row) is not one query: ERR_INVALID_ARGUMENT pointing at ${twin.batchName}`, async () => {
      using index = await filled(make)
      for (const rows of [[Array.from(row(QUERIES, 0))], [row(QUERIES, 0), row(QUERIES, 1)]]) {
        const error = await failure(() => twin.one(index, rows, { k: 3 }), twin.sync)
        expect(error.code).toBe('ERR_INVALID_ARGUMENT')
        expect(error.message).toContain(twin.batchName)
      }
    })

    it(`${twin.name}: a good query gives one row, the same as row i of ${twin.batchName} (rows, flat Float32Array, Float64Array, number[])`, async () => {
      using index = await filled(make)
      const options: Options = { k: 5, filter: KEYS.filter((_, i) => i % 3 !== 0) }
      const rows = Array.from({ length: 6 }, (_, i) => row(QUERIES, i))
      const byBatch = rowsOf(await twin.batch(index, QUERIES, options))
      expect(byBatch).toHaveLength(6)
      for (const form of [rows, rows.map((r) => Array.from(r)), Float64Array.from(QUERIES), Array.from(QUERIES)]) {
        expect(rowsOf(await twin.batch(index, form, options))).toEqual(byBatch)
      }
      for (let i = 0; i < 6; i++) {
        for (const query of [rows[i], Float64Array.from(rows[i]), Array.from(rows[i])]) {
          const one = await twin.one(index, query, options)
          expect(one.length).toBe(1)
          expect(rowsOf(one)).toEqual([byBatch[i]])
        }
      }
      // Both twins agree.
      const other = TWINS.find((t) => t !== twin)!
      expect(rowsOf(await other.batch(index, QUERIES, options))).toEqual(byBatch)
    })

    it(`${twin.name}: ${twin.batchName} refuses a flat batch that is not whole rows, a wrong row, and an empty batch`, async () => {
      using index = await filled(make)
      for (const length of [1, 3, 5, 10, 4 * 3 + 1]) {
        const error = await failure(() => twin.batch(index, new Float32Array(length).fill(0.5), { k: 2 }), twin.sync)
        expect(error.code, `length ${length}`).toBe('ERR_DIMENSION_MISMATCH')
        expect(error.message).toContain(String(length))
        expect(error.message).toContain(`${D}-dimensional`)
      }
      const wrongRow = await failure(() => twin.batch(index, [row(QUERIES, 0), [1, 2, 3]], { k: 2 }), twin.sync)
      expect(wrongRow.code).toBe('ERR_DIMENSION_MISMATCH')
      expect(wrongRow.message).toContain(`expected ${D} dimensions, got 3`)
      for (const empty of [[], new Float32Array(0)]) {
        expect((await failure(() => twin.batch(index, empty, { k: 2 }), twin.sync)).code).toBe('ERR_INVALID_ARGUMENT')
      }
    })
  }

  it('searchStream (batches inside) gives the rows of searchBatch, one per item', async () => {
    using index = await filled(make)
    const rows = Array.from({ length: 6 }, (_, i) => row(QUERIES, i))
    const streamed: ReturnType<typeof rowsOf> = []
    for await (const batch of index.searchStream([...rows.slice(0, 3), ...rows.slice(3).map((r) => Array.from(r))], { k: 4, batchSize: 4 })) streamed.push(...rowsOf(batch))
    expect(streamed).toEqual(rowsOf(await index.searchBatch(QUERIES, { k: 4 })))
  })

  it('searchStream: an item of 8 values on a 4-d index is ERR_DIMENSION_MISMATCH, not two queries that shift every later row', async () => {
    using index = await filled(make)
    const drain = async (items: unknown[]) => {
      let rows = 0
      for await (const batch of index.searchStream(items as Float32Array[], { k: 2, batchSize: 4 })) rows += batch.length
      return rows
    }
    for (const bad of [new Float32Array(8).fill(0.5), [1, 2, 3], [row(QUERIES, 0), row(QUERIES, 1)]]) {
      const error = await failure(() => drain([row(QUERIES, 0), bad, row(QUERIES, 2)]), false)
      expect(error.code).toBe(Array.isArray(bad) && bad.length === 2 ? 'ERR_INVALID_ARGUMENT' : 'ERR_DIMENSION_MISMATCH')
      expect(error.message).toContain('query 1')
    }
  })
})

/** add and addSync, as calls that fail the same way. */
const ADDS: [string, boolean, (index: VectorIndex, keys: unknown, vectors: unknown) => unknown][] = [
  ['add', false, (i, k, v) => i.add(k as never, v as never)],
  ['addSync', true, (i, k, v) => i.addSync(k as never, v as never)],
]

describe.each(VECTOR_KINDS)('%s: add counts vectors by keys', (_, make) => {
  for (const [name, sync, add] of ADDS) {
    it(`${name}: one key with 8 values on a 4-d index is ERR_DIMENSION_MISMATCH naming 4 and 8 (the issue's repro), nothing added`, async () => {
      using index = await filled(make)
      const eight = Array.from({ length: 8 }, (_, i) => i + 1)
      for (const key of [[4], 4]) {
        for (const vectors of [eight, Float32Array.from(eight)]) {
          const error = await failure(() => add(index, key, vectors), sync)
          expect(error.code).toBe('ERR_DIMENSION_MISMATCH')
          expect(error.message).toContain('1 key needs 4 values (1 × 4 dimensions), got 8')
          expect(error.message).not.toContain('1 keys')
        }
      }
      expect(index.size).toBe(N)
      expect(index.contains(4)).toBe(false)
    })

    it(`${name}: flat lengths and row counts that differ from the keys are ERR_DIMENSION_MISMATCH naming both, nothing added`, async () => {
      using index = await filled(make)
      const values = (n: number) => Float32Array.from({ length: n }, (_, i) => i + 1)
      const cases: [unknown, unknown, string][] = [
        [[4, 6], values(12), '2 keys need 8 values (2 × 4 dimensions), got 12'],
        [[4, 6], values(4), '2 keys need 8 values (2 × 4 dimensions), got 4'],
        [[4, 6, 8], Array.from(values(8)), '3 keys need 12 values (3 × 4 dimensions), got 8'],
        [[4, 6], [Array.from(values(4))], '2 keys need 2 vectors, got 1'],
        [[4], [values(4), values(4)], '1 key needs 1 vector, got 2'],
        [4, [values(4), values(4)], '1 key needs 1 vector, got 2'],
      ]
      for (const [keys, vectors, message] of cases) {
        const error = await failure(() => add(index, keys, vectors), sync)
        expect(error.code, message).toBe('ERR_DIMENSION_MISMATCH')
        expect(error.message).toContain(message)
      }
      expect(index.size).toBe(N)
    })

    it(`${name}: add(key, vector), add(keys, flat) and add(keys, rows) store the same vectors`, async () => {
      const stored: number[][][] = []
      for (const [keys, vectors] of [
        [7, [1, 2, 3, 4]],
        [[7], new Float32Array([1, 2, 3, 4])],
        [[7], [[1, 2, 3, 4]]],
        [7n, Float64Array.of(1, 2, 3, 4)],
      ] as [unknown, unknown][]) {
        using index = make(D)
        await add(index, keys, vectors)
        stored.push([[...index.keys()].map(Number), [...index.get(7)!]])
      }
      for (const s of stored) expect(s).toEqual([[7], [1, 2, 3, 4]])
      using index = make(D)
      await add(index, [1, 2], new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]))
      await add(index, [3, 4], [[0, 0, 1, 0], [0, 0, 0, 1]])
      expect([...index.get(2)!]).toEqual([0, 1, 0, 0])
      expect([...index.get(4)!]).toEqual([0, 0, 0, 1])
    })
  }
})

describe('MultiVectorIndex: one query is one point cloud', () => {
  const fde = { numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 4 }
  const docs = Array.from({ length: 40 }, (_, d) => randomMatrix(2 + (d % 4), D, 100 + d))
  const clouds = Array.from({ length: 5 }, (_, q) => randomMatrix(1 + (q % 3), D, 300 + q))
  const csr = () => {
    const offsets = new Uint32Array(clouds.length + 1)
    clouds.forEach((c, q) => (offsets[q + 1] = offsets[q] + c.length / D))
    const tokens = new Float32Array(offsets[clouds.length] * D)
    clouds.forEach((c, q) => tokens.set(c, offsets[q] * D))
    return { tokens, offsets }
  }
  const filled = async () => {
    const index = new MultiVectorIndex({ dimensions: D, fde })
    await index.add(docs.map((_, d) => d + 1), docs)
    return index
  }

  type Multi = MultiVectorIndex
  /** Each search method's twins, with their batch methods. */
  const METHODS: { name: string; sync: boolean; one: (i: Multi, q: unknown) => unknown; batch: (i: Multi, q: unknown) => unknown; batchName: string }[] = [
    { name: 'search', sync: false, one: (i, q) => i.search(q as never, { k: 5 }), batch: (i, q) => i.searchBatch(q as never, { k: 5 }), batchName: 'searchBatch' },
    { name: 'searchSync', sync: true, one: (i, q) => i.searchSync(q as never, { k: 5 }), batch: (i, q) => i.searchBatchSync(q as never, { k: 5 }), batchName: 'searchBatchSync' },
    { name: 'searchExact', sync: false, one: (i, q) => i.searchExact(q as never, { k: 5 }), batch: (i, q) => i.searchExactBatch(q as never, { k: 5 }), batchName: 'searchExactBatch' },
    { name: 'searchExactSync', sync: true, one: (i, q) => i.searchExactSync(q as never, { k: 5 }), batch: (i, q) => i.searchExactBatchSync(q as never, { k: 5 }), batchName: 'searchExactBatchSync' },
  ]

  for (const method of METHODS) {
    it(`${method.name}: a batch (CSR or an array of clouds) is ERR_INVALID_ARGUMENT pointing at ${method.batchName}`, async () => {
      using index = await filled()
      const asRows = clouds.map((c) => Array.from({ length: c.length / D }, (_, t) => Array.from(row(c, t))))
      for (const batch of [csr(), { tokens: clouds[0], offsets: [0, clouds[0].length / D] }, asRows]) {
        const error = await failure(() => method.one(index, batch), method.sync)
        expect(error.code).toBe('ERR_INVALID_ARGUMENT')
        expect(error.message).toContain(method.batchName)
      }
    })

    it(`${method.name}: tokens that are not whole ${D}-dimensional rows are ERR_DIMENSION_MISMATCH, one query or a batch`, async () => {
      using index = await filled()
      for (const length of [3, 10]) {
        expect((await failure(() => method.one(index, new Float32Array(length).fill(0.5)), method.sync)).code).toBe('ERR_DIMENSION_MISMATCH')
        const batch = { tokens: new Float32Array(length).fill(0.5), offsets: [0, 1] }
        const error = await failure(() => method.batch(index, batch), method.sync)
        expect(error.code).toBe('ERR_DIMENSION_MISMATCH')
        expect(error.message).toContain(String(length))
      }
    })

    it(`${method.batchName}: one cloud, an empty batch or empty offsets are ERR_INVALID_ARGUMENT`, async () => {
      using index = await filled()
      const rows = Array.from({ length: 2 }, (_, t) => Array.from(row(clouds[1], t)))
      for (const bad of [clouds[1], rows, [], { tokens: new Float32Array(0), offsets: [0] }]) {
        expect((await failure(() => method.batch(index, bad), method.sync)).code).toBe('ERR_INVALID_ARGUMENT')
      }
    })

    it(`${method.name}: one cloud gives one row, the same as row i of ${method.batchName} (CSR or an array of clouds)`, async () => {
      using index = await filled()
      const byBatch = rowsOf((await method.batch(index, csr())) as SearchResults)
      expect(byBatch).toHaveLength(clouds.length)
      expect(rowsOf((await method.batch(index, clouds)) as SearchResults)).toEqual(byBatch)
      for (let q = 0; q < clouds.length; q++) {
        const asRows = Array.from({ length: clouds[q].length / D }, (_, t) => Array.from(row(clouds[q], t)))
        for (const cloud of [clouds[q], asRows]) {
          const one = (await method.one(index, cloud)) as SearchResults
          expect(one.length).toBe(1)
          expect(rowsOf(one)).toEqual([byBatch[q]])
        }
      }
    })
  }

  for (const [name, sync] of [
    ['add', false],
    ['addSync', true],
  ] as const) {
    const add = (index: Multi, keys: unknown, documents: unknown) => (sync ? index.addSync(keys as never, documents as never) : index.add(keys as never, documents as never))

    it(`${name}: document counts that differ from the keys are ERR_DIMENSION_MISMATCH naming both, nothing added`, async () => {
      using index = await filled()
      const cases: [unknown, unknown, string][] = [
        [[100, 101], [docs[0]], '2 keys need 2 documents, got 1'],
        [[100], [docs[0], docs[1]], '1 key needs 1 document, got 2'],
        [[100, 101], csr(), `2 keys need 2 documents, got ${clouds.length}`],
      ]
      for (const [keys, documents, message] of cases) {
        const error = await failure(() => add(index, keys, documents), sync)
        expect(error.code, message).toBe('ERR_DIMENSION_MISMATCH')
        expect(error.message).toContain(message)
      }
      // One key (not an array) takes one document: a list of documents is refused.
      expect((await failure(() => add(index, 100, [docs[0], docs[1]].map((d) => [Array.from(row(d, 0))])), sync)).code).toBe('ERR_INVALID_ARGUMENT')
      expect(index.size).toBe(docs.length)
    })

    it(`${name}: add(key, document) stores what add([key], [document]) stores`, async () => {
      using one = new MultiVectorIndex({ dimensions: D, fde })
      using many = new MultiVectorIndex({ dimensions: D, fde })
      const asRows = Array.from({ length: docs[3].length / D }, (_, t) => Array.from(row(docs[3], t)))
      await add(one, 7, docs[3])
      await add(one, 8n, asRows)
      await add(many, [7, 8], [docs[3], docs[3]])
      expect([...one.keys()].sort()).toEqual([7n, 8n])
      expect(one.get(7)).toEqual(many.get(7))
      expect(one.get(8)).toEqual(many.get(8))
    })
  }
})
