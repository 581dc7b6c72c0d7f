import { describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, KeyFilter, VecdexError } from '../dist/index.js'
import { randomMatrix } from './helpers'
import { pickRows, row, sample, seqKeys } from './hnsw-helpers'

const dim = 12
const n = 3000

/** Plain exact filtered top-k: the reference. */
function exactFiltered(base: Float32Array, keys: number[], allowed: Set<number>, query: Float32Array, k: number): number[] {
  const scored: [number, number][] = []
  keys.forEach((key, i) => {
    if (!allowed.has(key)) return
    let d = 0
    for (let j = 0; j < dim; j++) d += (base[i * dim + j] - query[j]) ** 2
    scored.push([d, key])
  })
  return scored.sort((a, b) => a[0] - b[0]).slice(0, k).map(([, key]) => key)
}

const makers = {
  FlatIndex: () => new FlatIndex({ dimensions: dim, metric: 'l2sq' }),
  HnswIndex: () => new HnswIndex({ dimensions: dim, metric: 'l2sq', efSearch: 128 }),
}

describe.each(Object.entries(makers))('KeyFilter with %s', (_, make) => {
  it('gives the same results as the same keys passed with each call', async () => {
    const base = randomMatrix(n, dim, 1)
    using index = make()
    await index.add(seqKeys(n), base)
    const allowed = sample(n, 300, 2)
    const prepared = new KeyFilter(allowed)
    expect(prepared.size).toBe(300)
    const queries = randomMatrix(20, dim, 3)
    for (let i = 0; i < 20; i++) {
      const q = row(queries, dim, i)
      const plain = index.searchSync(q, { k: 10, filter: allowed }).get(0)
      const again = index.searchSync(q, { k: 10, filter: prepared }).get(0) // cached slot set
      expect(Array.from(again.keys)).toEqual(Array.from(plain.keys))
    }
    const batchPlain = await index.searchBatch(queries, { k: 10, filter: new Set(allowed) })
    const batchPrepared = await index.searchBatch(queries, { k: 10, filter: prepared })
    expect(Array.from(batchPrepared.keys)).toEqual(Array.from(batchPlain.keys))
  })

  it('follows the index as keys are removed, upserted and added (the cached slots are rebuilt)', async () => {
    let base = randomMatrix(n, dim, 4)
    let keys = Array.from({ length: n }, (_, i) => i)
    using index = make()
    await index.add(keys, base)
    const allowedKeys = sample(n, 400, 5)
    const allowed = new Set(allowedKeys)
    const prepared = new KeyFilter(allowedKeys)
    const query = randomMatrix(1, dim, 6)
    const check = (when: string) => {
      const got = index.searchSync(query, { k: 10, filter: prepared }).get(0).numberKeys()
      expect(got, when).toEqual(exactFiltered(base, keys, allowed, query, 10))
    }
    check('first search')
    // Remove the best admitted keys: they must not come back, and the next ones move up.
    const best = exactFiltered(base, keys, allowed, query, 5)
    index.removeSync(best)
    const kept = keys.map((key, i) => [key, i] as const).filter(([key]) => !best.includes(key))
    base = pickRows(base, dim, kept.map(([, i]) => i))
    keys = kept.map(([key]) => key)
    check('after remove')
    // Upsert an admitted key to sit on the query: it must be found first (its slot changed).
    const moved = allowedKeys.find((key) => keys.includes(key))!
    index.addSync([moved], query)
    base.set(query, keys.indexOf(moved) * dim)
    check('after upsert')
    // Add many keys, some admitted (the slot set must grow with the index).
    const extra = randomMatrix(500, dim, 7)
    const extraKeys = Array.from({ length: 500 }, (_, i) => 10_000 + i)
    await index.add(extraKeys, extra)
    const newBase = new Float32Array(base.length + extra.length)
    newBase.set(base)
    newBase.set(extra, base.length)
    base = newBase
    keys = [...keys, ...extraKeys]
    const wider = new KeyFilter([...allowedKeys, ...extraKeys.slice(0, 250)])
    for (const key of extraKeys.slice(0, 250)) allowed.add(key)
    const got = index.searchSync(query, { k: 10, filter: wider }).get(0).numberKeys()
    expect(got).toEqual(exactFiltered(base, keys, allowed, query, 10))
  })
})

it('KeyFilter rejects bad keys with a typed error', () => {
  expect(() => new KeyFilter([1, -2])).toThrow(VecdexError)
  expect(() => new KeyFilter([1.5])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
})
