import { describe, expect, it } from 'vitest'
import { FlatIndex, VecdexError } from '../dist/index.js'
import native from '../index.js'
import { expectCode } from './helpers'

function makeIndex(metric: 'cosine' | 'l2sq' = 'cosine') {
  const index = new FlatIndex({ dimensions: 3, metric })
  index.addSync([1, 2], [[1, 0, 0], [0, 1, 0]])
  return index
}

// Each row: what is wrong, the call, the code it must produce.
const table: [string, (i: FlatIndex) => unknown, string][] = [
  ['query with too few dimensions', (i) => i.search([1, 2], { k: 1 }), 'ERR_DIMENSION_MISMATCH'],
  ['batch not a whole number of rows', (i) => i.searchBatch(new Float32Array(7), { k: 1 }), 'ERR_DIMENSION_MISMATCH'],
  ['row of the wrong length in an array', (i) => i.add([3, 4], [[1, 2, 3], [1, 2]]), 'ERR_DIMENSION_MISMATCH'],
  ['vector of the wrong length', (i) => i.addSync([3], new Float32Array(4)), 'ERR_DIMENSION_MISMATCH'],
  ['NaN in a vector', (i) => i.add([3], [[NaN, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['Infinity in a query', (i) => i.searchSync([Infinity, 1, 1], { k: 1 }), 'ERR_INVALID_ARGUMENT'],
  ['-Infinity in a sync add', (i) => i.addSync([3], [[-Infinity, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['empty vectors', (i) => i.add([], new Float32Array(0)), 'ERR_INVALID_ARGUMENT'],
  ['empty query batch', (i) => i.searchBatch(new Float32Array(0), { k: 1 }), 'ERR_INVALID_ARGUMENT'],
  ['k = 0', (i) => i.search([1, 0, 0], { k: 0 }), 'ERR_INVALID_ARGUMENT'],
  ['k negative', (i) => i.searchSync([1, 0, 0], { k: -1 }), 'ERR_INVALID_ARGUMENT'],
  ['k fractional', (i) => i.search([1, 0, 0], { k: 1.5 }), 'ERR_INVALID_ARGUMENT'],
  ['k NaN', (i) => i.search([1, 0, 0], { k: NaN }), 'ERR_INVALID_ARGUMENT'],
  ['k huge beyond u32', (i) => i.search([1, 0, 0], { k: 2 ** 40 }), 'ERR_INVALID_ARGUMENT'],
  ['k missing', (i) => i.search([1, 0, 0], {} as never), 'ERR_INVALID_ARGUMENT'],
  ['negative key', (i) => i.add([-1], [[1, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['fractional key', (i) => i.add([1.5], [[1, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['NaN key', (i) => i.add([NaN], [[1, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['key above 2^53 as a number', (i) => i.add([2 ** 60], [[1, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['bigint key above 2^64', (i) => i.add([2n ** 64n], [[1, 1, 1]]), 'ERR_INVALID_ARGUMENT'],
  ['negative bigint key', (i) => i.contains(-5n), 'ERR_INVALID_ARGUMENT'],
  ['negative key in Int32Array', (i) => i.remove(new Int32Array([-3])), 'ERR_INVALID_ARGUMENT'],
  ['fractional key to removeSync', (i) => i.removeSync([0.5]), 'ERR_INVALID_ARGUMENT'],
  ['string key', (i) => i.get('7' as never), 'ERR_INVALID_ARGUMENT'],
  ['duplicate key in one batch', (i) => i.add([5, 5], [[1, 1, 1], [1, 1, 2]]), 'ERR_INVALID_ARGUMENT'],
  ['more keys than vectors', (i) => i.add([5, 6], [[1, 1, 1]]), 'ERR_DIMENSION_MISMATCH'],
  ['bad filter key', (i) => i.search([1, 0, 0], { k: 1, filter: [-1] }), 'ERR_INVALID_ARGUMENT'],
  ['vectors as a string', (i) => i.add([1], 'abc' as never), 'ERR_INVALID_ARGUMENT'],
  ['query as an object', (i) => i.search({} as never, { k: 1 }), 'ERR_INVALID_ARGUMENT'],
  ['options missing', (i) => i.search([1, 0, 0], undefined as never), 'ERR_INVALID_ARGUMENT'],
  ['signal of the wrong type', (i) => i.search([1, 0, 0], { k: 1, signal: {} as never }), 'ERR_INVALID_ARGUMENT'],
  ['zero vector added under cosine', (i) => i.add([9], [[0, 0, 0]]), 'ERR_ZERO_VECTOR'],
  ['zero query under cosine', (i) => i.search([0, 0, 0], { k: 1 }), 'ERR_ZERO_VECTOR'],
]

describe('bad input table', () => {
  for (const [what, call, code] of table) {
    it(`${what} → ${code}`, async () => {
      const index = makeIndex()
      const before = index.size
      await expectCode(async () => call(index), code)
      expect(index.size).toBe(before) // a failed call changes nothing
      index.close()
    })
  }

  it('a closed index → ERR_CLOSED for every call', async () => {
    const index = makeIndex()
    index.close()
    await expectCode(index.search([1, 0, 0], { k: 1 }), 'ERR_CLOSED')
    await expectCode(() => index.searchSync([1, 0, 0], { k: 1 }), 'ERR_CLOSED')
    await expectCode(index.add([3], [[1, 1, 1]]), 'ERR_CLOSED')
    await expectCode(() => index.addSync([3], [[1, 1, 1]]), 'ERR_CLOSED')
    await expectCode(index.remove([1]), 'ERR_CLOSED')
    await expectCode(() => index.removeSync([1]), 'ERR_CLOSED')
    await expectCode(() => index.get(1), 'ERR_CLOSED')
    await expectCode(() => index.contains(1), 'ERR_CLOSED')
    await expectCode(() => index.size, 'ERR_CLOSED')
    await expectCode(() => index.keys(), 'ERR_CLOSED')
    await expectCode(index.addStream([]), 'ERR_CLOSED')
    await expectCode(index.searchStream([[1, 0, 0]], { k: 1 }).next(), 'ERR_CLOSED')
  })

  it('bad constructor options', async () => {
    await expectCode(() => new FlatIndex({ dimensions: 0 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FlatIndex({ dimensions: 1.5 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FlatIndex({ dimensions: 100_000 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FlatIndex({ dimensions: 4, metric: 'hamming' as never }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FlatIndex({ dimensions: 4, metric: 'euclidean' as never }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FlatIndex(undefined as never), 'ERR_INVALID_ARGUMENT')
  })

  it('the native layer re-checks what the TS layer validated', async () => {
    const index = new native.NativeFlatIndex(3, 'l2sq')
    expect(() => index.addSync(new BigUint64Array([1n]), new Float32Array(2))).toThrow(expect.objectContaining({ code: 'ERR_DIMENSION_MISMATCH' }))
    expect(() => new native.NativeFlatIndex(3, 'nope')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
    expect(() => index.contains(-1n)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }))
  })

  it('a Rust panic becomes ERR_INTERNAL and the process lives on', async () => {
    expect(() => native.debugPanic(false)).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL', message: expect.stringMatching(/deliberate panic \(sync\)/) }))
    await expect(native.debugPanic(true) as Promise<unknown>).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: expect.stringMatching(/deliberate panic \(async\)/) })
    // Still alive and working.
    const index = makeIndex()
    expect(index.searchSync([1, 0, 0], { k: 1 }).get(0).numberKeys()).toEqual([1])
    expect(new VecdexError('ERR_INTERNAL', 'x').code).toBe('ERR_INTERNAL')
  })
})
