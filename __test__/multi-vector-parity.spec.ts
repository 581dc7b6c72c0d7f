// MultiVectorIndex offers what the single-vector indexes do: async, abortable compaction and
// training done beside searches (the slow phase under shared access).
import { describe, expect, it } from 'vitest'
import { MultiVectorIndex } from '../dist/index.js'
import { randomMatrix } from './helpers'

const DIM = 8

function documents(count: number, seed: number): Float32Array[] {
  return Array.from({ length: count }, (_, i) => randomMatrix(2 + (i % 3), DIM, seed + i))
}

describe('MultiVectorIndex async compact and abortable train', () => {
  for (const strategy of ['rerank', 'walk'] as const) {
    it(`compact() frees what compactSync() frees, and searches see the same documents (${strategy})`, async () => {
      const keys = Array.from({ length: 60 }, (_, i) => i)
      const docs = documents(60, 1)
      using a = new MultiVectorIndex({ dimensions: DIM, strategy })
      using b = new MultiVectorIndex({ dimensions: DIM, strategy })
      for (const index of [a, b]) {
        index.addSync(keys, docs)
        index.removeSync(keys.filter((k) => k % 3 === 0))
      }
      const freedAsync = await a.compact()
      const freedSync = b.compactSync()
      expect(freedAsync).toBe(20)
      expect(freedAsync).toBe(freedSync)
      expect(await a.compact()).toBe(0)
      const query = randomMatrix(3, DIM, 999)
      const [ra, rb] = [a.searchSync(query, { k: 5 }), b.searchSync(query, { k: 5 })]
      expect([...ra.keys]).toEqual([...rb.keys])
      for (const key of ra.keys) expect(Number(key) % 3).not.toBe(0)
    })
  }

  it('an aborted compact rejects with ERR_ABORTED and frees nothing', async () => {
    using index = new MultiVectorIndex({ dimensions: DIM })
    index.addSync([1, 2, 3], documents(3, 5))
    index.removeSync([2])
    const controller = new AbortController()
    controller.abort()
    await expect(index.compact({ signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(index.compactSync()).toBe(1)
  })

  for (const quantization of ['sq8', 'pq'] as const) {
    it(`train() with an aborted signal leaves the index untrained; without, it trains (${quantization})`, async () => {
      using index = new MultiVectorIndex({ dimensions: DIM, quantization, trainingSize: 100_000 })
      index.addSync(Array.from({ length: 40 }, (_, i) => i), documents(40, 7))
      const controller = new AbortController()
      controller.abort()
      await expect(index.train(documents(40, 50), { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
      expect(index.isTrained).toBe(false)
      await index.train(documents(40, 50))
      expect(index.isTrained).toBe(true)
      expect(index.searchSync(randomMatrix(2, DIM, 3), { k: 3 }).get(0).keys.length).toBe(3)
    })
  }
})

describe('MultiVectorIndex searchStream and FlatIndex stats', () => {
  it('searchStream yields the results of searchBatch, batch by batch, in order', async () => {
    using index = new MultiVectorIndex({ dimensions: DIM })
    index.addSync(Array.from({ length: 30 }, (_, i) => i), documents(30, 11))
    const queries = documents(7, 300)
    const whole = index.searchBatchSync(queries, { k: 4 })
    const rows: bigint[][] = []
    for await (const batch of index.searchStream(queries, { k: 4, batchSize: 3 })) {
      expect(batch.length).toBeLessThanOrEqual(3)
      for (let i = 0; i < batch.length; i++) rows.push([...batch.get(i).keys])
    }
    expect(rows).toEqual(Array.from({ length: 7 }, (_, i) => [...whole.get(i).keys]))
  })

  it('searchStream checks its options like search does', async () => {
    using index = new MultiVectorIndex({ dimensions: DIM })
    const stream = index.searchStream(documents(2, 1), { k: 1, tokenNeighbors: 3 } as never)
    await expect(stream.next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('FlatIndex.stats() reports what the index holds', async () => {
    const { FlatIndex } = await import('../dist/index.js')
    using index = new FlatIndex({ dimensions: DIM, quantization: 'sq8', trainingSize: 10 })
    index.addSync(Array.from({ length: 20 }, (_, i) => i), randomMatrix(20, DIM, 4))
    const stats = index.stats()
    expect(stats.size).toBe(20)
    expect(stats.memoryBytes).toBe(index.memoryBytes)
    expect(stats.vectorBytes).toBeGreaterThanOrEqual(20 * DIM * 4)
    expect(stats.codeBytes).toBeGreaterThanOrEqual(20 * DIM)
    expect(stats.memoryBytes).toBeGreaterThanOrEqual(stats.vectorBytes + stats.codeBytes)
  })
})
