import { describe, expect, it } from 'vitest'
import { capabilities, distance, distanceMatrix, distanceMatrixSync } from '../dist/index.js'
import { expectCode, randomMatrix, refDistance, rng } from './helpers'

function f32ToF16Bits(value: number): number {
  // Round-to-nearest-even conversion through a float64 view of the mantissa, for normal values.
  const f = new Float32Array([value])
  const bits = new Uint32Array(f.buffer)[0]
  const sign = (bits >>> 16) & 0x8000
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15
  let mantissa = bits & 0x7fffff
  if (exponent <= 0) return sign // flush tiny values (unused by these tests)
  const rounded = mantissa + 0xfff + ((mantissa >>> 13) & 1)
  let e = exponent
  if (rounded & 0x800000) {
    mantissa = 0
    e += 1
  } else mantissa = rounded
  return sign | (e << 10) | (mantissa >>> 13)
}

function f16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >>> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15)
}

function bf16Bits(value: number): number {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0]
  return bits >>> 16 // truncation: the reference decodes the same bits
}

function bf16ToNumber(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0]
}

describe('distance', () => {
  const metrics = ['cosine', 'dot', 'l2sq'] as const

  it('matches a float64 reference for f32 at odd and even dimensions', () => {
    for (const dim of [1, 2, 3, 7, 16, 17, 100, 128, 255, 1024]) {
      const m = randomMatrix(2, dim, dim)
      const a = m.subarray(0, dim)
      const b = m.subarray(dim)
      for (const metric of metrics) {
        const want = refDistance(a, b, metric)
        expect(distance(a, b, metric)).toBeCloseTo(want, 3)
      }
    }
  })

  it('accepts number[] and infers f32', () => {
    expect(distance([1, 2, 3], [1, 2, 4], 'l2sq')).toBe(1)
    expect(distance([1, 0], [0, 1], 'cosine')).toBeCloseTo(1, 6)
    expect(distance([1, 0], [1, 0], 'dot')).toBeCloseTo(0, 6)
  })

  it('computes i8, f16, bf16 and binary kernels', () => {
    const next = rng(5)
    const dim = 67
    const ai = Int8Array.from({ length: dim }, () => Math.round(next() * 254 - 127))
    const bi = Int8Array.from({ length: dim }, () => Math.round(next() * 254 - 127))
    for (const metric of metrics) {
      const want = refDistance(ai, bi, metric)
      expect(Math.abs(distance(ai, bi, metric) - want)).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(want)))
    }
    const a = Array.from({ length: dim }, () => next() * 2 - 1)
    const b = Array.from({ length: dim }, () => next() * 2 - 1)
    const ah = Uint16Array.from(a, f32ToF16Bits)
    const bh = Uint16Array.from(b, f32ToF16Bits)
    const ab = Uint16Array.from(a, bf16Bits)
    const bb = Uint16Array.from(b, bf16Bits)
    for (const metric of metrics) {
      const wantHalf = refDistance(Array.from(ah, f16BitsToNumber), Array.from(bh, f16BitsToNumber), metric)
      // Some CPUs (AVX-512 FP16) accumulate in half precision: relative 1e-3.
      expect(Math.abs(distance(ah, bh, metric, { dtype: 'f16' }) - wantHalf)).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(wantHalf)))
      const wantBf = refDistance(Array.from(ab, bf16ToNumber), Array.from(bb, bf16ToNumber), metric)
      expect(Math.abs(distance(ab, bb, metric, { dtype: 'bf16' }) - wantBf)).toBeLessThanOrEqual(2e-2 * Math.max(1, Math.abs(wantBf)))
    }
    const x = Uint8Array.from({ length: 33 }, () => Math.floor(next() * 256))
    const y = Uint8Array.from({ length: 33 }, () => Math.floor(next() * 256))
    let bits = 0
    for (let i = 0; i < x.length; i++) for (let v = x[i] ^ y[i]; v; v &= v - 1) bits++
    expect(distance(x, y, 'hamming')).toBe(bits)
  })

  it('refuses bad input with typed errors', async () => {
    await expectCode(() => distance(new Float32Array(3), new Float32Array(4), 'l2sq'), 'ERR_DIMENSION_MISMATCH')
    await expectCode(() => distance(new Float32Array(3), new Float32Array([1, 2, 3]), 'cosine'), 'ERR_ZERO_VECTOR')
    await expectCode(() => distance(new Float32Array([NaN]), new Float32Array([1]), 'dot'), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => distance(new Float32Array([1]), new Float32Array([1]), 'hamming'), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => distance(new Uint8Array([1]), new Uint8Array([1]), 'cosine'), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => distance(new Uint16Array([1]), new Uint16Array([1]), 'dot'), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => distance(new Float32Array([1]), new Int8Array([1]), 'dot'), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => distance(new Float32Array([1]), new Float32Array([1]), 'euclid' as never), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => distance(new Float32Array(0), new Float32Array(0), 'dot'), 'ERR_INVALID_ARGUMENT')
  })
})

describe('distanceMatrix', () => {
  it('equals pairwise reference distances, async and sync', async () => {
    const dim = 19
    const q = randomMatrix(5, dim, 1)
    const v = randomMatrix(37, dim, 2)
    for (const metric of ['cosine', 'dot', 'l2sq'] as const) {
      const got = await distanceMatrix(q, v, { dimensions: dim, metric })
      const sync = distanceMatrixSync(q, v, { dimensions: dim, metric })
      expect(got).toEqual(sync)
      expect(got.length).toBe(5 * 37)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 37; j++) {
          const want = refDistance(q.subarray(i * dim, (i + 1) * dim), v.subarray(j * dim, (j + 1) * dim), metric)
          expect(got[i * 37 + j]).toBeCloseTo(want, 4)
        }
    }
  })

  it('rejects bad shapes and aborted signals', async () => {
    await expectCode(distanceMatrix(new Float32Array(5), new Float32Array(4), { dimensions: 2, metric: 'dot' }), 'ERR_DIMENSION_MISMATCH')
    await expectCode(distanceMatrix(new Float32Array(4), new Float32Array(4), { dimensions: 0, metric: 'dot' }), 'ERR_INVALID_ARGUMENT')
    await expectCode(
      distanceMatrix(new Float32Array([1, 1]), new Float32Array([1, 1]), { dimensions: 2, metric: 'dot', signal: AbortSignal.abort() }),
      'ERR_ABORTED',
    )
  })
})

describe('capabilities', () => {
  it('says which kernels run', () => {
    const caps = capabilities()
    expect(['avx512', 'avx2', 'scalar']).toContain(caps.scanKernel)
    expect(Array.isArray(caps.simsimdBackends)).toBe(true)
    expect(caps.threads).toBeGreaterThanOrEqual(1)
    if (process.arch === 'x64') expect(caps.simsimdBackends.length).toBeGreaterThan(0)
  })
})

describe('kernel level override', () => {
  it('VECDEX_SIMD lowers the scan kernel and results stay the same', async () => {
    const { execFileSync } = await import('node:child_process')
    const { resolve } = await import('node:path')
    const script = `
      const { FlatIndex, capabilities } = require(${JSON.stringify(resolve(__dirname, '..', 'dist', 'index.js'))})
      const dim = 37, n = 700
      let seed = 1; const next = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1
      const base = Float32Array.from({ length: n * dim }, next)
      const queries = Float32Array.from({ length: 9 * dim }, next)
      const out = { kernel: capabilities().scanKernel }
      for (const metric of ['cosine', 'dot', 'l2sq']) {
        const index = new FlatIndex({ dimensions: dim, metric })
        index.addSync(Uint32Array.from({ length: n }, (_, i) => i), base)
        const r = index.searchBatchSync(queries, { k: 5 })
        out[metric] = { keys: Array.from(r.keys, Number), distances: Array.from(r.distances) }
      }
      console.log(JSON.stringify(out))`
    const run = (level?: string) =>
      JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, VECDEX_SIMD: level ?? '' }, encoding: 'utf8' }))
    const best = run()
    const scalar = run('scalar')
    expect(scalar.kernel).toBe('scalar')
    for (const metric of ['cosine', 'dot', 'l2sq']) {
      expect(scalar[metric].keys).toEqual(best[metric].keys)
      scalar[metric].distances.forEach((d: number, i: number) => expect(d).toBeCloseTo(best[metric].distances[i], 4))
    }
    if (process.arch === 'x64' && best.kernel === 'avx512') {
      const avx2 = run('avx2')
      expect(avx2.kernel).toBe('avx2')
      expect(avx2.cosine.keys).toEqual(best.cosine.keys)
    }
  })
})
