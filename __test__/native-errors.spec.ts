// Error codes travel as data: the native layer sets the vecdex code as the JS error's `code`
// (its message is the text alone), for sync throws, constructor throws, async rejections,
// loaders and panics; the TS layer reads `err.code` and never parses a message.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FlatIndex, VecdexError } from '../dist/index.js'
import { fromNative } from '../dist/errors.js'
import native from '../index.js'

const dir = mkdtempSync(join(tmpdir(), 'vecdex-native-errors-'))
const missing = join(dir, 'missing.idx')
const garbage = join(dir, 'garbage.idx')
writeFileSync(garbage, Buffer.from('not an index at all, just some bytes'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function flat(): InstanceType<typeof native.NativeFlatIndex> {
  const index = new native.NativeFlatIndex(2, 'cosine')
  index.addSync(new BigUint64Array([1n, 2n]), new Float32Array([1, 0, 0, 1]))
  return index
}

function closedFlat() {
  const index = flat()
  index.close()
  return index
}

/** What a raw native call throws or rejects with (undefined if it succeeds). */
async function caught(call: () => unknown): Promise<unknown> {
  try {
    await call()
  } catch (error) {
    return error
  }
  return undefined
}

type Case = [what: string, call: () => unknown, code: string]

const syncThrows: Case[] = [
  ['addSync with a vector of the wrong length', () => flat().addSync(new BigUint64Array([3n]), new Float32Array(3)), 'ERR_DIMENSION_MISMATCH'],
  ['contains with a negative key', () => flat().contains(-1n), 'ERR_INVALID_ARGUMENT'],
  ['addSync of a zero vector under cosine', () => flat().addSync(new BigUint64Array([3n]), new Float32Array(2)), 'ERR_ZERO_VECTOR'],
  ['a getter of a closed index', () => closedFlat().size, 'ERR_CLOSED'],
  ['searchSync of a closed index (search handle)', () => {
    const index = flat()
    const handle = index.searchHandle()
    index.close()
    return native.searchIntoSyncFast(handle, new Float32Array([1, 0]), 1, 0, true, null, null, new Uint8Array(64), 0, 1)
  }, 'ERR_CLOSED'],
  ['distanceF32 of vectors of different lengths', () => native.distanceF32(new Float32Array(2), new Float32Array(3), 'dot'), 'ERR_DIMENSION_MISMATCH'],
  ['trainSync of an index without compression', () => flat().trainSync(new Float32Array([1, 0])), 'ERR_INVALID_ARGUMENT'],
  ['configureThreads with 0 threads', () => native.configureThreads(0), 'ERR_INVALID_ARGUMENT'],
]

const constructorThrows: Case[] = [
  ['NativeFlatIndex with an unknown metric', () => new native.NativeFlatIndex(3, 'nope'), 'ERR_INVALID_ARGUMENT'],
  ['NativeFlatIndex with 0 dimensions', () => new native.NativeFlatIndex(0, 'dot'), 'ERR_INVALID_ARGUMENT'],
  ['NativeHnswIndex with the hamming metric', () => new native.NativeHnswIndex(4, 'hamming'), 'ERR_INVALID_ARGUMENT'],
  ['NativeMultiVectorIndex with an unknown metric', () => new native.NativeMultiVectorIndex(4, 'nope'), 'ERR_INVALID_ARGUMENT'],
  ['NativeFdeEncoder with 0 dimensions', () => new native.NativeFdeEncoder(0), 'ERR_INVALID_ARGUMENT'],
]

const asyncRejections: Case[] = [
  ['add with a vector of the wrong length', () => flat().add(new BigUint64Array([3n]), new Float32Array(3)), 'ERR_DIMENSION_MISMATCH'],
  ['search with a zero query under cosine', () => flat().search(new Float32Array(2), 1, 0, true), 'ERR_ZERO_VECTOR'],
  ['train of an index without compression', () => flat().train(new Float32Array([1, 0])), 'ERR_INVALID_ARGUMENT'],
  ['distanceMatrix of a ragged matrix', () => native.distanceMatrix(new Float32Array(3), new Float32Array(4), 2, 'dot'), 'ERR_DIMENSION_MISMATCH'],
  ['encode of a cloud of the wrong width', () => new native.NativeFdeEncoder(4).encode(new Float32Array(3), new Uint32Array([0, 1]), 'query'), 'ERR_DIMENSION_MISMATCH'],
]

const loaders: Case[] = [
  ['loadSync of a missing file', () => native.NativeFlatIndex.loadSync(missing), 'ERR_IO'],
  ['loadLoaded of a missing file', () => native.NativeFlatIndex.loadLoaded(missing), 'ERR_IO'],
  ['loadSync of a file that is no index', () => native.NativeHnswIndex.loadSync(garbage), 'ERR_CORRUPT_FILE'],
  ['loadLoaded of a file that is no index', () => native.NativeMultiVectorIndex.loadLoaded(garbage), 'ERR_CORRUPT_FILE'],
  ['fromBufferSync of bytes that are no index', () => native.NativeFlatIndex.fromBufferSync(new Uint8Array(100)), 'ERR_CORRUPT_FILE'],
  ['fromBufferLoaded of bytes that are no index', () => native.NativeHnswIndex.fromBufferLoaded(new Uint8Array(100)), 'ERR_CORRUPT_FILE'],
  ['viewSync of a missing file', () => native.NativeHnswIndex.viewSync(missing), 'ERR_IO'],
  ['inspectIndexFileSync of a missing file', () => native.inspectIndexFileSync(missing), 'ERR_IO'],
  ['inspectIndexFile of a file that is no index', () => native.inspectIndexFile(garbage), 'ERR_CORRUPT_FILE'],
]

const panics: Case[] = [
  ['a panic in a sync call', () => native.debugPanic(false), 'ERR_INTERNAL'],
  ['a panic in an async task', () => native.debugPanic(true), 'ERR_INTERNAL'],
  ['an armed panic in a sync method', () => {
    const index = flat()
    native.debugArmPanic(true)
    return index.contains(1n)
  }, 'ERR_INTERNAL'],
  ['an armed panic in an async method', () => {
    const index = flat()
    native.debugArmPanic(true)
    return index.search(new Float32Array([1, 0]), 1, 0, true)
  }, 'ERR_INTERNAL'],
  ['an armed panic in a constructor', () => {
    native.debugArmPanic(true)
    return new native.NativeFlatIndex(2, 'dot')
  }, 'ERR_INTERNAL'],
]

describe('native errors carry their code as data', () => {
  // 'either': the family mixes sync and async calls.
  const families: [string, Case[], 'sync' | 'async' | 'either'][] = [
    ['sync throws', syncThrows, 'sync'],
    ['constructor throws', constructorThrows, 'sync'],
    ['async rejections', asyncRejections, 'async'],
    ['loaders', loaders, 'either'],
    ['panics', panics, 'either'],
  ]

  for (const [family, cases, kind] of families) {
    describe(family, () => {
      for (const [what, call, code] of cases) {
        it(`${what} → err.code ${code}, message without the code`, async () => {
          let thrownSync = false
          let result: unknown
          try {
            result = call()
          } catch (error) {
            thrownSync = true
            result = Promise.reject(error)
          }
          if (kind === 'sync') expect(thrownSync, 'throws at once').toBe(true)
          if (kind === 'async') {
            expect(thrownSync, 'rejects instead of throwing').toBe(false)
            expect(result).toBeInstanceOf(Promise)
          }
          const error = await caught(() => result)
          native.debugArmPanic(false)
          expect(error).toBeInstanceOf(Error)
          expect((error as { code?: unknown }).code).toBe(code)
          const message = (error as Error).message
          expect(message.length).toBeGreaterThan(0)
          expect(message).not.toMatch(/ERR_[A-Z_]+/)
        })
      }
    })
  }
})

describe('the TS layer reads err.code', () => {
  it('keeps the native message and code, with the native error as the cause', async () => {
    const error = await caught(() => new FlatIndex({ dimensions: 2 }).add([1], [[0, 0]]))
    expect(error).toBeInstanceOf(VecdexError)
    expect((error as VecdexError).code).toBe('ERR_ZERO_VECTOR')
    expect((error as VecdexError).message).not.toMatch(/^ERR_/)
    expect(((error as VecdexError).cause as { code?: string }).code).toBe('ERR_ZERO_VECTOR')
  })

  it('never parses a code out of a message', () => {
    const fake = (message: string, code?: string) => Object.assign(new Error(message), code === undefined ? {} : { code })
    // The code property decides, whatever the text says.
    expect(fromNative(fake('ERR_CLOSED: looks like a code', 'ERR_IO'))).toMatchObject({ code: 'ERR_IO', message: 'ERR_CLOSED: looks like a code' })
    expect(fromNative(fake('ERR_CLOSED: no code property')).code).toBe('ERR_INTERNAL')
    // An unknown code (e.g. one vecdex keeps internal) is a bug, not a user error.
    expect(fromNative(fake('x', 'ERR_RESULTS_DID_NOT_FIT')).code).toBe('ERR_INTERNAL')
    // napi-rs refuses wrongly typed arguments with its own codes, before vecdex runs.
    for (const code of ['InvalidArg', 'NumberExpected', 'StringExpected', 'BigintExpected', 'ObjectExpected']) {
      expect(fromNative(fake('wrong type', code)).code, code).toBe('ERR_INVALID_ARGUMENT')
    }
    expect(fromNative(fake('x', 'GenericFailure')).code).toBe('ERR_INTERNAL')
  })

  it('napi-rs argument errors from the raw module become ERR_INVALID_ARGUMENT', async () => {
    const error = await caught(() => native.distanceF32('a' as never, new Float32Array(2), 'dot'))
    expect(typeof (error as { code?: unknown }).code).toBe('string')
    expect(fromNative(error).code).toBe('ERR_INVALID_ARGUMENT')
  })
})

describe('searchSync output sizing', () => {
  it('results that outgrow the output get their own internal code, not words of a message', () => {
    const index = flat()
    const handle = index.searchHandle()
    // Two results (k = 2, two vectors) into room for one.
    const error = (() => {
      try {
        native.searchIntoSyncFast(handle, new Float32Array([1, 0]), 2, 0, true, null, null, new Uint8Array(64), 0, 1)
      } catch (e) {
        return e
      }
    })()
    expect((error as { code?: unknown }).code).toBe('ERR_RESULTS_DID_NOT_FIT')
    // A misaligned or short output is the caller's error.
    expect(() => native.searchIntoSyncFast(handle, new Float32Array([1, 0]), 2, 0, true, null, null, new Uint8Array(64), 4, 2)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
    index.close()
  })

  it('a stale size makes searchSync resize and retry once, by the code', () => {
    // The TS layer sizes the output of a large k from `size`, which an async add may grow
    // between that read and the search: here the first read is stale.
    let reads = 0
    class StaleSize extends FlatIndex {
      override get size(): number {
        return reads++ === 0 ? 1 : super.size
      }
    }
    const index = new StaleSize({ dimensions: 2, metric: 'l2sq' })
    index.addSync([1, 2, 3, 4, 5], [[1, 0], [2, 0], [3, 0], [4, 0], [5, 0]])
    const results = index.searchSync([0, 0], { k: 5000 })
    expect(reads).toBeGreaterThanOrEqual(2)
    expect(results.k).toBe(5)
    expect(results.get(0).numberKeys()).toEqual([1, 2, 3, 4, 5])
    index.close()
  })
})

describe('a result too large for one typed array', () => {
  // Node-API wraps at most 4 GiB of Rust memory in one typed array; beyond that Node throws
  // while the result is handed over, which in an async task used to leave the promise unsettled
  // and end the process. The hook lowers the limit so the tests need no gigabytes.
  afterAll(() => native.debugSetMaxResultBytes())

  it('is ERR_OUT_OF_MEMORY, sync and async, and the process goes on', async () => {
    const { FdeEncoder, distanceMatrix, distanceMatrixSync } = await import('../dist/index.js')
    using encoder = new FdeEncoder({ dimensions: 4, numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 4 })
    const documents = { tokens: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]), offsets: new Uint32Array([0, 2, 3]) }
    const rows = [[1, 0], [0, 1], [1, 1]]
    native.debugSetMaxResultBytes(2 * encoder.outputDimension * 4 - 1)
    expect(() => encoder.encodeDocumentsSync(documents)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_MEMORY', message: expect.stringMatching(/fewer rows per call/) }))
    await expect(encoder.encodeDocuments(documents)).rejects.toMatchObject({ code: 'ERR_OUT_OF_MEMORY' })
    native.debugSetMaxResultBytes(3 * 3 * 4 - 1)
    expect(() => distanceMatrixSync(rows, rows, { dimensions: 2, metric: 'l2sq' })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_MEMORY' }))
    await expect(distanceMatrix(rows, rows, { dimensions: 2, metric: 'l2sq' })).rejects.toMatchObject({ code: 'ERR_OUT_OF_MEMORY' })
    // At the limit, and after the hook is reset, the same calls succeed.
    native.debugSetMaxResultBytes(3 * 3 * 4)
    expect(await distanceMatrix(rows, rows, { dimensions: 2, metric: 'l2sq' })).toHaveLength(9)
    native.debugSetMaxResultBytes()
    expect(await encoder.encodeDocuments(documents)).toHaveLength(2 * encoder.outputDimension)
  })
})
