// Aborts stop the work early, measured in work done rather than time. The native test hook
// debugTraceAborts counts every check of the abort flags made for calls given a signal (one check
// per piece of work: a node linked or relinked, a block of rows or a chunk of queries searched)
// and can make them all read as aborted from a chosen check on. Each case runs the operation
// stopped at an early check and proves that it rejected with ERR_ABORTED, changed nothing, and
// made barely more checks than it was allowed (so no work went on after the stop), then runs
// it whole to prove the stop came long before the end. Nothing here depends on timing.
import { afterEach, describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, type SearchResults } from '../dist/index.js'
import { expectCode, randomMatrix } from './helpers'
import { row, selfHitRate, seqKeys } from './hnsw-helpers'
import { hooks, WORKERS } from './trace-hooks'

/** Runs `work` with a signal whose native flags are traced, stopped at check `stopAt` (never
 * when undefined); resolves to the checks made and the outcome. */
async function traced<T>(stopAt: number | undefined, work: (signal: AbortSignal) => Promise<T>) {
  hooks.debugTraceAborts(true, stopAt)
  try {
    const value = await work(new AbortController().signal)
    return { checks: hooks.debugAbortChecks(), value, error: undefined as unknown }
  } catch (error) {
    return { checks: hooks.debugAbortChecks(), value: undefined, error }
  } finally {
    hooks.debugTraceAborts(false)
  }
}

afterEach(() => hooks.debugTraceAborts(false))

/** The stopped run made barely more checks than allowed, and a small share of the whole run's. */
function expectStoppedEarly(what: string, stopped: number, stopAt: number, whole: number) {
  expect(whole, `${what}: the whole run makes too few checks to tell`).toBeGreaterThanOrEqual(20 * stopAt)
  expect(stopped, `${what}: checks after the stop (whole run: ${whole})`).toBeLessThanOrEqual(stopAt + 2 * WORKERS)
  expect(stopped * 10, `${what}: share of the whole run's ${whole} checks`).toBeLessThan(whole)
}

// A batch search: `searchBatch` where the index has one, else `search` with a matrix.
function searchBatch(index: FlatIndex | HnswIndex, queries: Float32Array, options: { k: number; signal?: AbortSignal }): Promise<SearchResults> {
  const batch = (index as unknown as { searchBatch?: typeof index.search }).searchBatch
  return (batch ?? index.search).call(index, queries, options as never)
}

describe('an abort stops the work early (work counted by the native trace hook)', () => {
  const dim = 16

  it('FlatIndex and HnswIndex batch searches', async () => {
    const flat = new FlatIndex({ dimensions: dim, metric: 'l2sq' })
    flat.addSync(seqKeys(60_000), randomMatrix(60_000, dim, 1))
    const hnsw = new HnswIndex({ dimensions: dim, metric: 'l2sq', efConstruction: 64 })
    hnsw.addSync(seqKeys(2000), randomMatrix(2000, dim, 2))
    // Flat scans check between blocks of rows, HNSW batches between chunks of queries.
    for (const [name, index, count] of [['FlatIndex', flat, 4000], ['HnswIndex', hnsw, 16_000]] as const) {
      const queries = randomMatrix(count, dim, 3)
      const stopped = await traced(3, (signal) => searchBatch(index, queries, { k: 10, signal }))
      expect(stopped.error, name).toMatchObject({ code: 'ERR_ABORTED' })
      const whole = await traced(undefined, (signal) => searchBatch(index, queries, { k: 10, signal }))
      expect(whole.value?.length).toBe(count)
      expectStoppedEarly(`${name} search`, stopped.checks, 3, whole.checks)
      index.close()
    }
  })

  it('HnswIndex add: nothing of the batch is added, and the index stays sound', async () => {
    const base = randomMatrix(1000, dim, 4)
    const make = () => {
      const index = new HnswIndex({ dimensions: dim, metric: 'l2sq', efConstruction: 64 })
      index.addSync(seqKeys(1000), base)
      return index
    }
    const batch = randomMatrix(5000, dim, 5)
    const batchKeys = seqKeys(5000, 100_000)
    using index = make()
    const stopped = await traced(100, (signal) => index.add(batchKeys, batch, { signal }))
    expect(stopped.error).toMatchObject({ code: 'ERR_ABORTED' })
    expect(index.size).toBe(1000)
    expect(index.contains(100_000) || index.contains(104_999)).toBe(false)
    expect(selfHitRate(await searchBatch(index, base, { k: 1 }), seqKeys(1000)).rate).toBe(1)
    // The whole add, on an index as it was before (this one would compact the aborted slots first).
    using fresh = make()
    const whole = await traced(undefined, (signal) => fresh.add(batchKeys, batch, { signal }))
    expect(whole.error).toBeUndefined()
    expect(fresh.size).toBe(6000)
    expectStoppedEarly('HnswIndex add', stopped.checks, 100, whole.checks)
  })

  it('HnswIndex compact: the tombstones stay, and every live vector is still found', async () => {
    const n = 6000
    const base = randomMatrix(n, dim, 6)
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq', efConstruction: 64 })
    index.addSync(seqKeys(n), base)
    const removed = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 === 1)
    const live = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 1)
    index.removeSync(removed)
    const liveRows = new Float32Array(live.length * dim)
    live.forEach((key, i) => liveRows.set(row(base, dim, key), i * dim))
    const stopped = await traced(150, (signal) => index.compact({ signal }))
    expect(stopped.error).toMatchObject({ code: 'ERR_ABORTED' })
    const stats = index.stats()
    expect([stats.size, stats.tombstones, stats.freeSlots, stats.unreachable, stats.deadEnds]).toEqual([live.length, removed.length, 0, 0, 0])
    const found = await searchBatch(index, liveRows, { k: 1 })
    expect(selfHitRate(found, live).rate).toBeGreaterThanOrEqual(0.999)
    const whole = await traced(undefined, (signal) => index.compact({ signal }))
    expect(whole.value).toBe(removed.length)
    expectStoppedEarly('HnswIndex compact', stopped.checks, 150, whole.checks)
  })

  it('searchStream: stops searching and stops pulling queries', async () => {
    using index = new FlatIndex({ dimensions: dim, metric: 'l2sq' })
    index.addSync(seqKeys(60_000), randomMatrix(60_000, dim, 7))
    const queries = randomMatrix(4000, dim, 8)
    const run = (stopAt: number | undefined) => {
      const progress = { pulled: 0, batches: 0 }
      const source = function* () {
        for (let q = 0; q < 4000; q++) {
          progress.pulled++
          yield row(queries, dim, q)
        }
      }
      return traced(stopAt, async (signal) => {
        for await (const results of index.searchStream(source(), { k: 5, batchSize: 100, signal })) {
          expect(results.length).toBe(100)
          progress.batches++
        }
      }).then((outcome) => ({ ...outcome, ...progress }))
    }
    const whole = await run(undefined)
    expect(whole.error).toBeUndefined()
    expect(whole.batches).toBe(40)
    const stopAt = Math.ceil(whole.checks / 20)
    const stopped = await run(stopAt)
    expect(stopped.error).toMatchObject({ code: 'ERR_ABORTED' })
    expect(stopped.batches).toBeLessThan(8)
    // One batch is searched ahead of the consumer; none is pulled after the stop.
    expect(stopped.pulled).toBeLessThanOrEqual((stopped.batches + 2) * 100)
    expectStoppedEarly('searchStream', stopped.checks, stopAt, whole.checks)
  })

  it('addStream: keeps whole earlier batches, adds none of the stopped one, pulls no more', async () => {
    const items = randomMatrix(5000, dim, 9)
    const run = async (stopAt: number | undefined) => {
      const index = new HnswIndex({ dimensions: dim, metric: 'l2sq', efConstruction: 64 })
      let pulled = 0
      const source = async function* () {
        for (let i = 0; i < 5000; i++) {
          pulled++
          yield { key: i, vector: row(items, dim, i) }
        }
      }
      const outcome = await traced(stopAt, (signal) => index.addStream(source(), { batchSize: 500, signal }))
      const size = index.size
      const keys = Array.from(index.keys(), Number).sort((a, b) => a - b)
      index.close()
      return { ...outcome, pulled, size, keys }
    }
    const whole = await run(undefined)
    expect(whole.value).toBe(5000)
    // Early in the third batch of ten (while its first nodes are linked one by one).
    const stopAt = Math.round((2 * whole.checks) / 10) + 10
    const stopped = await run(stopAt)
    expect(stopped.error).toMatchObject({ code: 'ERR_ABORTED' })
    expect(stopped.size % 500).toBe(0)
    expect(stopped.size).toBeLessThan(5000)
    expect(stopped.keys).toEqual(Array.from({ length: stopped.size }, (_, i) => i))
    expect(stopped.pulled).toBeLessThanOrEqual(stopped.size + 2 * 500)
    expect(stopped.checks).toBeLessThanOrEqual(stopAt + 2 * WORKERS)
    expect(stopped.checks * 2).toBeLessThan(whole.checks)
  })

  // Training checks its stop flag before learning the model and before swapping it in (k-means
  // or PCA themselves do not poll it): an abort at either check keeps the old model.
  it('HnswIndex train: an abort during training stops it and keeps the old model', async () => {
    using index = new HnswIndex({ dimensions: dim, metric: 'l2sq', quantization: 'sq8', trainingSize: 100_000 })
    const data = randomMatrix(1000, dim, 10)
    index.addSync(seqKeys(1000), data)
    for (const stopAt of [1, 2]) {
      const stopped = await traced(stopAt, (signal) => index.train(data, { signal }))
      expect(stopped.error).toMatchObject({ code: 'ERR_ABORTED' })
      expect(stopped.checks).toBe(stopAt)
      expect(index.isTrained).toBe(false)
    }
    await index.train(data)
    expect(index.isTrained).toBe(true)
  })
})

it('the trace hook is off unless turned on: untraced calls count no checks', async () => {
  using index = new FlatIndex({ dimensions: 4, metric: 'l2sq' })
  index.addSync(seqKeys(100), randomMatrix(100, 4, 11))
  hooks.debugTraceAborts(true)
  hooks.debugTraceAborts(false)
  await searchBatch(index, randomMatrix(10, 4, 12), { k: 1, signal: new AbortController().signal })
  expect(hooks.debugAbortChecks()).toBe(0)
  await expectCode(index.add([1], new Float32Array(4), { signal: AbortSignal.abort() }), 'ERR_ABORTED')
})
