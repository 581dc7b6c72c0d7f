import { Readable } from 'node:stream'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { FlatIndex } from '../dist/index.js'
import { expectCode, randomMatrix } from './helpers'
import { checksAfterAbort, hooks, WORKERS } from './trace-hooks'

async function bigIndex(n = 60_000, dim = 100) {
  const index = new FlatIndex({ dimensions: dim, metric: 'cosine' })
  await index.add(Uint32Array.from({ length: n }, (_, i) => i), randomMatrix(n, dim, 9))
  return index
}

describe('async work and abort', () => {
  it('an already-aborted signal rejects at once with ERR_ABORTED', async () => {
    const index = new FlatIndex({ dimensions: 2 })
    await expectCode(index.search([1, 0], { k: 1, signal: AbortSignal.abort() }), 'ERR_ABORTED')
    await expectCode(index.add([1], [[1, 0]], { signal: AbortSignal.abort() }), 'ERR_ABORTED')
    expect(index.size).toBe(0)
  })

  it('aborting a long search stops it at its next check: no thread goes on past the piece it was in', async () => {
    const index = await bigIndex(200_000, 100)
    const queries = randomMatrix(4000, 100, 10)
    const controller = new AbortController()
    // Count the search's checks (one per block of rows scanned); nothing stops it but the signal.
    hooks.debugTraceAborts(true)
    try {
      const pending = index.searchBatch(queries, { k: 10, signal: controller.signal })
      // Aborted once the search is under way (its first check: seconds of scanning are left
      // then); each thread stops at its next block (and one job it may have taken up meanwhile).
      expect(await checksAfterAbort(pending, controller, () => hooks.debugAbortChecks() > 0)).toBeLessThanOrEqual(2 * WORKERS)
    } finally {
      hooks.debugTraceAborts(false)
    }
  })

  it('async calls copy their inputs: changing the query buffer after the call has no effect', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    index.addSync([1, 2], [[0, 0], [10, 10]])
    const query = new Float32Array([0, 0])
    const pending = index.search(query, { k: 1 })
    query[0] = 10
    query[1] = 10
    expect((await pending).get(0).numberKeys()).toEqual([1])
  })

  it('mixing async adds, async searches and blocking searches never deadlocks', async () => {
    // Regression: async adds once waited for the index lock on compute threads, so a blocking
    // search holding the read lock and waiting for those threads hung forever.
    const dim = 32
    const n = 40_000
    const index = new FlatIndex({ dimensions: dim, metric: 'l2sq' })
    index.addSync(Uint32Array.from({ length: n }, (_, i) => i), randomMatrix(n, dim, 13))
    const queries = randomMatrix(64, dim, 14)
    const extra = randomMatrix(500, dim, 15)
    for (let round = 0; round < 40; round++) {
      const pending = [
        index.add(Uint32Array.from({ length: 500 }, (_, j) => n + j), extra),
        index.add(Uint32Array.from({ length: 500 }, (_, j) => n + 500 + j), extra),
        index.searchBatch(queries, { k: 5 }),
      ]
      expect(index.searchBatchSync(queries, { k: 5 }).length).toBe(64)
      await Promise.all(pending)
    }
    expect(index.size).toBe(n + 1000)
  }, 60_000)

  it('reads on the JS thread do not wait behind a long search and a queued write', async () => {
    const index = await bigIndex(150_000, 100)
    const queries = randomMatrix(1500, 100, 16)
    const started = performance.now()
    const search = index.searchBatch(queries, { k: 10 })
    // Let the search take its read lock, then queue a write behind it.
    await new Promise((r) => setTimeout(r, 20))
    const removal = index.remove([1, 2, 3])
    await new Promise((r) => setTimeout(r, 5))
    const readStart = performance.now()
    expect(index.contains(10)).toBe(true)
    expect(index.get(11)?.length).toBe(100)
    expect(index.size).toBeGreaterThan(0)
    const readMs = performance.now() - readStart
    await Promise.all([search, removal])
    const totalMs = performance.now() - started
    // The reads took a tiny fraction of the search they overlapped.
    expect(readMs).toBeLessThan(Math.max(20, totalMs / 5))
    expect(index.contains(1)).toBe(false)
  })

  it('the event loop stays responsive while 8 batch searches run', async () => {
    const index = await bigIndex(60_000, 100)
    const queries = randomMatrix(200, 100, 11)
    const histogram = monitorEventLoopDelay({ resolution: 1 })
    histogram.enable()
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    await Promise.all(Array.from({ length: 8 }, () => index.searchBatch(queries, { k: 10 })))
    clearInterval(timer)
    histogram.disable()
    expect(ticks).toBeGreaterThan(0)
    // Generous bound for a shared CI machine; the benchmark measures the real p99.
    expect(histogram.percentile(99) / 1e6).toBeLessThan(100)
  })
})

describe('addStream', () => {
  it('ingests an async generator of keyed vectors in batches with progress', async () => {
    const index = new FlatIndex({ dimensions: 3, metric: 'l2sq' })
    const progress: number[] = []
    async function* source() {
      for (let i = 0; i < 25; i++) yield { key: i + 100, vector: [i, i, i] }
    }
    const added = await index.addStream(source(), { batchSize: 10, onProgress: (p) => progress.push(p.added) })
    expect(added).toBe(25)
    expect(progress).toEqual([10, 20, 25])
    expect(index.size).toBe(25)
    expect(Array.from(index.get(107)!)).toEqual([7, 7, 7])
  })

  it('ingests a Node Readable of batches and bare vectors', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    const readable = Readable.from([
      { keys: [1, 2], vectors: new Float32Array([1, 1, 2, 2]) },
      { keys: new Uint32Array([3]), vectors: [[3, 3]] },
    ])
    expect(await index.addStream(readable)).toBe(3)
    const bare = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    expect(await bare.addStream(Readable.from([new Float32Array([5, 5]), [6, 6]]), { startKey: 40 })).toBe(2)
    expect(Array.from(bare.keys())).toEqual([40n, 41n])
  })

  it('applies backpressure: it pulls no further than one batch ahead of what is stored', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    let pulled = 0
    let maxAhead = 0
    const source = {
      async *[Symbol.asyncIterator]() {
        for (let i = 0; i < 100; i++) {
          pulled++
          maxAhead = Math.max(maxAhead, pulled - index.size)
          yield { key: i, vector: [i, 0] }
        }
      },
    }
    await index.addStream(source, { batchSize: 8 })
    expect(index.size).toBe(100)
    expect(maxAhead).toBeLessThanOrEqual(8)
  })

  it('stops on abort with ERR_ABORTED, keeping whole earlier batches', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    const controller = new AbortController()
    async function* source() {
      for (let i = 0; i < 100; i++) {
        if (i === 30) controller.abort()
        yield { key: i, vector: [i, 0] }
      }
    }
    await expectCode(index.addStream(source(), { batchSize: 10, signal: controller.signal }), 'ERR_ABORTED')
    expect(index.size).toBe(30)
  })

  it('a key repeated in the stream keeps its last vector (upsert), within and across batches', async () => {
    const index = new FlatIndex({ dimensions: 2, metric: 'l2sq' })
    const items = [
      { key: 1, vector: [1, 1] },
      { key: 2, vector: [2, 2] },
      { key: 1, vector: [3, 3] },
      { key: 3, vector: [4, 4] },
      { key: 2, vector: [5, 5] },
    ]
    await index.addStream(items, { batchSize: 3 })
    expect(index.size).toBe(3)
    expect(Array.from(index.get(1)!)).toEqual([3, 3])
    expect(Array.from(index.get(2)!)).toEqual([5, 5])
  })

  it('rejects bad items with typed errors', async () => {
    const index = new FlatIndex({ dimensions: 2 })
    await expectCode(index.addStream([{ key: 1, vector: [1, 2, 3] }]), 'ERR_DIMENSION_MISMATCH')
    await expectCode(index.addStream([{ nope: 1 } as never]), 'ERR_INVALID_ARGUMENT')
    await expectCode(index.addStream(42 as never), 'ERR_INVALID_ARGUMENT')
    await expectCode(index.addStream([], { batchSize: 0 }), 'ERR_INVALID_ARGUMENT')
  })
})

describe('searchStream', () => {
  it('yields batch results equal to one batch search', async () => {
    const index = await bigIndex(5_000, 16)
    const queries = randomMatrix(50, 16, 12)
    const whole = await index.searchBatch(queries, { k: 5 })
    const rows = Array.from({ length: 50 }, (_, i) => queries.subarray(i * 16, (i + 1) * 16))
    const keys: bigint[] = []
    let batches = 0
    for await (const batch of index.searchStream(Readable.from(rows), { k: 5, batchSize: 12 })) {
      batches++
      for (const hit of batch) keys.push(...hit.keys)
    }
    expect(batches).toBe(5)
    expect(keys).toEqual(Array.from(whole.keys))
  })

  it('releases native work when the consumer breaks early', async () => {
    const index = await bigIndex(50_000, 64)
    let pulled = 0
    function* queries() {
      for (let i = 0; i < 1000; i++) {
        pulled++
        yield randomMatrix(1, 64, i)
      }
    }
    for await (const batch of index.searchStream(queries(), { k: 3, batchSize: 10 })) {
      expect(batch.length).toBe(10)
      break
    }
    // One batch consumed, at most one searched ahead; the source was closed after that.
    expect(pulled).toBeLessThanOrEqual(30)
    index.close()
    await expectCode(index.search(randomMatrix(1, 64, 1), { k: 1 }), 'ERR_CLOSED')
  })
})
