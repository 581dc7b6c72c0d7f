// FdeEncoder and KeyFilter hold native memory: close() frees it (idempotent), [Symbol.dispose]
// closes, later calls are ERR_CLOSED (set natively on the raw classes too), and work already
// running finishes.
import { describe, expect, it } from 'vitest'
import { FdeEncoder, FlatIndex, KeyFilter } from '../dist/index.js'
import native from '../index.js'
import { expectCode, randomMatrix } from './helpers'

const DIM = 4
const cloud = randomMatrix(3, DIM, 1)

describe('FdeEncoder', () => {
  it('takes `dimensions` (one spelling everywhere) and reports it', async () => {
    using encoder = new FdeEncoder({ dimensions: DIM })
    expect(encoder.dimensions).toBe(DIM)
    expect(encoder.config.dimensions).toBe(DIM)
    await expectCode(() => new FdeEncoder({ dimension: DIM } as never), 'ERR_INVALID_ARGUMENT')
  })

  it('close() is idempotent; later calls throw ERR_CLOSED; encodings in flight finish', async () => {
    const encoder = new FdeEncoder({ dimensions: DIM })
    const running = encoder.encodeDocuments([cloud, cloud])
    expect(encoder.closed).toBe(false)
    encoder.close()
    encoder.close()
    expect(encoder.closed).toBe(true)
    expect((await running).length).toBe(2 * encoder.config.outputDimension)
    await expectCode(() => encoder.encodeQuery(cloud), 'ERR_CLOSED')
    await expectCode(() => encoder.encodeDocumentsSync([cloud]), 'ERR_CLOSED')
    await expectCode(encoder.encodeQueries([cloud]), 'ERR_CLOSED')
  })

  it('`using` closes it at the end of the block', () => {
    let kept: FdeEncoder | undefined
    {
      using encoder = new FdeEncoder({ dimensions: DIM })
      kept = encoder
      expect(encoder.encodeQuery(cloud).length).toBe(encoder.config.outputDimension)
    }
    expect(kept.closed).toBe(true)
  })

  it('the native encoder frees itself on close and then throws ERR_CLOSED', async () => {
    const encoder = new native.NativeFdeEncoder(DIM)
    encoder.close()
    encoder.close()
    expect(encoder.closed).toBe(true)
    expect(() => encoder.encodeSync(cloud, Uint32Array.of(0, 3), 'query')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
    expect(() => encoder.config).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
    expect(() => encoder.encode(cloud, Uint32Array.of(0, 3), 'query')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
  })
})

describe('KeyFilter', () => {
  it('close() is idempotent; a search given a closed filter throws ERR_CLOSED', async () => {
    using index = new FlatIndex({ dimensions: DIM })
    index.addSync([1, 2], randomMatrix(2, DIM, 2))
    const filter = new KeyFilter([1])
    expect(index.searchSync(cloud.subarray(0, DIM), { k: 2, filter }).counts[0]).toBe(1)
    filter.close()
    filter.close()
    expect(filter.closed).toBe(true)
    await expectCode(() => filter.size, 'ERR_CLOSED')
    await expectCode(() => index.searchSync(cloud.subarray(0, DIM), { k: 2, filter }), 'ERR_CLOSED')
    await expectCode(index.search(cloud.subarray(0, DIM), { k: 2, filter }), 'ERR_CLOSED')
  })

  it('`using` closes it at the end of the block', () => {
    let kept: KeyFilter | undefined
    {
      using filter = new KeyFilter([1, 2, 3])
      kept = filter
      expect(filter.size).toBe(3)
    }
    expect(kept.closed).toBe(true)
  })

  it('the native filter frees its keys on close and then throws ERR_CLOSED', () => {
    const index = new native.NativeFlatIndex(DIM, 'cosine')
    index.addSync(new BigUint64Array([1n]), randomMatrix(1, DIM, 3))
    const filter = new native.NativeKeyFilter(new BigUint64Array([1n]))
    filter.close()
    filter.close()
    expect(filter.closed).toBe(true)
    expect(() => filter.size).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
    expect(() => index.search(cloud.subarray(0, DIM), 1, 0, true, null, filter)).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
  })
})
