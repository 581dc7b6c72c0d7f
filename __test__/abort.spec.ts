// Every abort rejects with a VecdexError named 'AbortError' (code ERR_ABORTED) whose cause is
// the signal's reason, so generic abort handlers and AbortSignal.timeout() handlers work: for
// a signal that fired before the call, one that fires while the call waits its turn behind an
// earlier write, and AbortSignal.timeout().
import { describe, expect, it } from 'vitest'
import { distanceMatrix, FdeEncoder, FlatIndex, HnswIndex, MultiVectorIndex, VecdexError } from '../dist/index.js'
import { randomMatrix } from './helpers'

const DIM = 8

/** Rejects with the abort error of `signal`, whatever the form. */
async function expectAbort(pending: Promise<unknown>, signal: AbortSignal) {
  let error: unknown
  try {
    await pending
  } catch (e) {
    error = e
  }
  expect(error, 'rejects').toBeInstanceOf(VecdexError)
  expect(error).toBeInstanceOf(Error)
  const abort = error as VecdexError
  expect(abort.name).toBe('AbortError')
  expect(abort.code).toBe('ERR_ABORTED')
  expect(abort.cause).toBe(signal.reason)
  expect(abort.message).toBe('the operation was aborted')
}

function keys(n: number, from = 0) {
  return Uint32Array.from({ length: n }, (_, i) => from + i)
}

function clouds(n: number, seed: number) {
  return Array.from({ length: n }, (_, i) => randomMatrix(3, DIM, seed + i))
}

function flat() {
  const index = new FlatIndex({ dimensions: DIM, metric: 'l2sq' })
  index.addSync(keys(50), randomMatrix(50, DIM, 1))
  return index
}

function hnsw() {
  const index = new HnswIndex({ dimensions: DIM, metric: 'l2sq' })
  index.addSync(keys(50), randomMatrix(50, DIM, 2))
  return index
}

function multi() {
  const index = new MultiVectorIndex({ dimensions: DIM, metric: 'dot' })
  index.addSync(keys(20), clouds(20, 3))
  return index
}

async function* rows(n: number) {
  for (let i = 0; i < n; i++) yield randomMatrix(1, DIM, 100 + i)
}

const query = randomMatrix(1, DIM, 7)
const cloud = randomMatrix(4, DIM, 8)

/** Every abortable method: a fresh object, and the call given a signal. */
const methods: [string, (signal: AbortSignal) => Promise<unknown>][] = [
  ['FlatIndex.search', (signal) => flat().search(query, { k: 3, signal })],
  ['FlatIndex.add', (signal) => flat().add([100], query, { signal })],
  ['FlatIndex.train', (signal) => new FlatIndex({ dimensions: DIM, quantization: 'sq8' }).train(randomMatrix(20, DIM, 4), { signal })],
  ['FlatIndex.addStream', (signal) => flat().addStream(rows(3), { signal })],
  ['FlatIndex.searchStream', (signal) => flat().searchStream(rows(3), { k: 1, signal }).next()],
  ['HnswIndex.search', (signal) => hnsw().search(query, { k: 3, signal })],
  ['HnswIndex.add', (signal) => hnsw().add([100], query, { signal })],
  ['HnswIndex.compact', (signal) => hnsw().compact({ signal })],
  ['HnswIndex.train', (signal) => new HnswIndex({ dimensions: DIM, quantization: 'sq8' }).train(randomMatrix(20, DIM, 5), { signal })],
  ['HnswIndex.addStream', (signal) => hnsw().addStream(rows(3), { signal })],
  ['HnswIndex.searchStream', (signal) => hnsw().searchStream(rows(3), { k: 1, signal }).next()],
  ['MultiVectorIndex.add', (signal) => multi().add([100], [cloud], { signal })],
  ['MultiVectorIndex.addStream', (signal) => multi().addStream([{ key: 100, tokens: cloud }], { signal })],
  ['MultiVectorIndex.search', (signal) => multi().search(cloud, { k: 3, signal })],
  ['MultiVectorIndex.searchExact', (signal) => multi().searchExact(cloud, { k: 3, signal })],
  ['FdeEncoder.encodeQueries', (signal) => new FdeEncoder({ dimensions: DIM }).encodeQueries([cloud], { signal })],
  ['FdeEncoder.encodeDocuments', (signal) => new FdeEncoder({ dimensions: DIM }).encodeDocuments([cloud], { signal })],
  ['distanceMatrix', (signal) => distanceMatrix(query, randomMatrix(4, DIM, 9), { dimensions: DIM, metric: 'dot', signal })],
]

describe('an abort before the call', () => {
  for (const [name, call] of methods) {
    it(`${name}: controller.abort(reason) → AbortError with that reason as cause`, async () => {
      const controller = new AbortController()
      const reason = new Error('the user went away')
      controller.abort(reason)
      await expectAbort(call(controller.signal), controller.signal)
    })

    it(`${name}: AbortSignal.timeout(1) → AbortError caused by a TimeoutError`, async () => {
      const signal = AbortSignal.timeout(1)
      await new Promise((fired) => signal.addEventListener('abort', fired, { once: true }))
      await expectAbort(call(signal), signal)
      expect((signal.reason as DOMException).name).toBe('TimeoutError')
    })
  }

  it('controller.abort() without a reason → its AbortError DOMException is the cause', async () => {
    const controller = new AbortController()
    controller.abort()
    await expectAbort(flat().search(query, { k: 1, signal: controller.signal }), controller.signal)
    expect((controller.signal.reason as DOMException).name).toBe('AbortError')
  })
})

/**
 * Calls `call` while an earlier write of the same index runs (async calls wait for earlier
 * writes), then aborts at once: the call is aborted while in flight, before it started work.
 */
async function abortWhileQueued<I extends { size: number }>(index: I, slowWrite: (index: I) => Promise<unknown>, call: (index: I, signal: AbortSignal) => Promise<unknown>) {
  const writing = slowWrite(index)
  const controller = new AbortController()
  const pending = call(index, controller.signal)
  const reason = { why: 'aborted while queued' }
  controller.abort(reason)
  await expectAbort(pending, controller.signal)
  await writing
}

describe('an abort while the call is in flight', () => {
  const bigFlat = (index: FlatIndex) => index.add(keys(100_000, 1000), randomMatrix(100_000, DIM, 11))
  const bigHnsw = (index: HnswIndex) => index.add(keys(3000, 1000), randomMatrix(3000, DIM, 12))
  const bigMulti = (index: MultiVectorIndex) => index.add(keys(300, 1000), clouds(300, 13))

  it('FlatIndex.search and FlatIndex.add', async () => {
    const index = flat()
    await abortWhileQueued(index, bigFlat, (i, signal) => i.search(query, { k: 3, signal }))
    await abortWhileQueued(index, bigFlat, (i, signal) => i.add([7], query, { signal }))
    expect(index.contains(7)).toBe(true) // the old vector: the aborted add changed nothing
    expect(index.get(7)).toEqual(randomMatrix(50, DIM, 1).subarray(7 * DIM, 8 * DIM))
  })

  it('HnswIndex.search, HnswIndex.add and HnswIndex.compact', async () => {
    const index = hnsw()
    await abortWhileQueued(index, bigHnsw, (i, signal) => i.search(query, { k: 3, signal }))
    const size = index.size
    await abortWhileQueued(index, bigHnsw, (i, signal) => i.add([99_999], query, { signal }))
    expect(index.contains(99_999)).toBe(false)
    expect(index.size).toBe(size)
    index.removeSync([1, 2, 3])
    await abortWhileQueued(index, bigHnsw, (i, signal) => i.compact({ signal }))
    expect(index.stats().tombstones).toBeGreaterThan(0) // not compacted
  })

  it('MultiVectorIndex.add, search and searchExact', async () => {
    const index = multi()
    await abortWhileQueued(index, bigMulti, (i, signal) => i.add([99_999], [cloud], { signal }))
    expect(index.contains(99_999)).toBe(false)
    await abortWhileQueued(index, bigMulti, (i, signal) => i.search(cloud, { k: 3, signal }))
    await abortWhileQueued(index, bigMulti, (i, signal) => i.searchExact(cloud, { k: 3, signal }))
  })

  it('FdeEncoder.encodeDocuments and distanceMatrix: an abort while they compute', async () => {
    // Large enough that each runs for many stop checks after the abort lands.
    const encoder = new FdeEncoder({ dimensions: DIM })
    const controller = new AbortController()
    const encoding = encoder.encodeDocuments(clouds(20_000, 20), { signal: controller.signal })
    controller.abort(new Error('stop encoding'))
    await expectAbort(encoding, controller.signal)
    const matrices = new AbortController()
    const computing = distanceMatrix(randomMatrix(2000, 64, 21), randomMatrix(2000, 64, 22), { dimensions: 64, metric: 'dot', signal: matrices.signal })
    matrices.abort(new Error('stop computing'))
    await expectAbort(computing, matrices.signal)
  })

  it('addStream: an abort between items', async () => {
    const index = flat()
    const controller = new AbortController()
    const reason = new Error('enough')
    async function* source() {
      for (let i = 0; i < 100; i++) {
        if (i === 30) controller.abort(reason)
        yield { key: 1000 + i, vector: randomMatrix(1, DIM, i) }
      }
    }
    await expectAbort(index.addStream(source(), { batchSize: 10, signal: controller.signal }), controller.signal)
  })

  it('searchStream: an abort between batches', async () => {
    for (const index of [flat(), hnsw()]) {
      const controller = new AbortController()
      const stream = index.searchStream(rows(5), { k: 1, batchSize: 1, signal: controller.signal })
      expect((await stream.next()).done).toBe(false)
      const reason = new Error('seen enough')
      controller.abort(reason)
      await expectAbort(stream.next(), controller.signal)
    }
  })
})
