import { describe, expect, it } from 'vitest'
import { chamfer, distance, FdeEncoder, FlatIndex, HnswIndex, MultiVectorIndex, VecdexError } from '../dist/index.js'

// One rule per kind of input, the same at every entry point:
// - a point-cloud token (multi-vector add, train, search with each strategy, searchExact,
//   FdeEncoder, chamfer) has a squared norm of at most 2^60 unless the metric normalises it,
//   so Chamfer sums and encodings stay finite and hits keep their order;
// - a single vector given to distance() follows the indexes' rule, and its distance is the
//   one an index computes (never ±Infinity, never a cosine of 0 for vectors out of f32 range).

const D = 4
const MAX_TOKEN_NORM = 2 ** 30

/** A token of norm `norm` (rounded down to f32) along one of a few directions. */
function token(norm: number, seed = 0): number[] {
  const raw = [1, (seed % 3) * 0.25, (Math.floor(seed / 3) % 3) * 0.2, 0.1]
  const length = Math.hypot(...raw)
  return raw.map((x) => {
    const v = (x / length) * norm
    const f = Math.fround(v)
    return f > v ? Math.fround(f - f * 2 ** -23) : f
  })
}

const cloud = (count: number, norm: number) => Array.from({ length: count }, (_, t) => token(norm, t))

type Outcome = string // 'ok' or an error code

async function outcome(action: () => unknown): Promise<Outcome> {
  try {
    await action()
    return 'ok'
  } catch (error) {
    expect(error).toBeInstanceOf(VecdexError)
    const e = error as VecdexError
    if (e.code === 'ERR_INVALID_ARGUMENT') expect(e.message).toMatch(/too large/)
    return e.code
  }
}

/** Every entry point that takes tokens, on a dot-product index holding small documents. */
function entryPoints(query: number[][]): [string, () => unknown][] {
  const index = () => {
    // sq8 FDEs, so that train runs: the token rule must come before anything else.
    const i = new MultiVectorIndex({ dimensions: D, metric: 'dot', quantization: 'sq8', fde: { numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 4 } })
    i.addSync([1, 2], [cloud(2, 1), cloud(3, 0.5)])
    i.trainSync([cloud(2, 1), cloud(3, 0.5), cloud(1, 0.75)])
    return i
  }
  const encoder = new FdeEncoder({ dimensions: D, numRepetitions: 2, numSimhashProjections: 3, projectionDimension: 4, finalProjectionDimension: 16 })
  const small = cloud(2, 1)
  return [
    ['add', () => index().add([3], [query])],
    ['addSync', () => index().addSync([3], [query])],
    ['trainSync', () => index().trainSync([query])],
    ...(['rerank', 'walk', 'tokens'] as const).flatMap((strategy): [string, () => unknown][] => [
      [`search ${strategy}`, () => index().search(query, { k: 2, strategy })],
      [`searchSync ${strategy}`, () => index().searchSync(query, { k: 2, strategy })],
      [`searchBatch ${strategy}`, () => index().searchBatch([small, query], { k: 2, strategy })],
      [`searchBatchSync ${strategy}`, () => index().searchBatchSync([small, query], { k: 2, strategy })],
    ]),
    ['searchExact', () => index().searchExact(query, { k: 2 })],
    ['searchExactSync', () => index().searchExactSync(query, { k: 2 })],
    ['searchExactBatch', () => index().searchExactBatch([small, query], { k: 2 })],
    ['searchExactBatchSync', () => index().searchExactBatchSync([small, query], { k: 2 })],
    ['encodeQuery', () => encoder.encodeQuery(query)],
    ['encodeDocument', () => encoder.encodeDocument(query)],
    ['encodeQueries', () => encoder.encodeQueries([query, small])],
    ['encodeDocumentsSync', () => encoder.encodeDocumentsSync([small, query])],
    ['chamfer (query)', () => chamfer(query, small, D)],
    ['chamfer (document)', () => chamfer(small, query, D)],
  ]
}

describe('point-cloud tokens: one rule at every entry point', () => {
  // Norms just inside and outside the token bound, the old single-vector bound's range (where
  // Chamfer overflowed), and far beyond; with 1 to 64 query tokens.
  const magnitudes: [number, Outcome][] = [
    [1, 'ok'],
    [MAX_TOKEN_NORM * 0.999, 'ok'],
    [MAX_TOKEN_NORM * 1.001, 'ERR_INVALID_ARGUMENT'],
    [9e18, 'ERR_INVALID_ARGUMENT'],
    [1e30, 'ERR_INVALID_ARGUMENT'],
  ]
  for (const [norm, expected] of magnitudes) {
    for (const tokens of [1, 5, 64]) {
      it(`norm ${norm.toExponential(3)}, ${tokens} tokens: ${expected} everywhere`, async () => {
        const query = cloud(tokens, norm)
        const outcomes: Record<string, Outcome> = {}
        for (const [name, action] of entryPoints(query)) outcomes[name] = await outcome(action)
        const want = Object.fromEntries(Object.keys(outcomes).map((k) => [k, expected]))
        expect(outcomes).toEqual(want)
      })
    }
  }

  it.each([1, 9e18, 1e30, 1e-30])('cosine normalises tokens first: norm %s is accepted everywhere', async (norm) => {
    const index = new MultiVectorIndex({ dimensions: D, metric: 'cosine' })
    await index.add([1, 2], [cloud(2, norm), cloud(3, norm)])
    for (const strategy of ['rerank', 'walk', 'tokens'] as const) {
      const hits = await index.search(cloud(5, norm), { k: 2, strategy })
      expect(Array.from(hits.distances).every(Number.isFinite)).toBe(true)
    }
    const exact = index.searchExactSync(cloud(5, norm), { k: 2 })
    expect(Array.from(exact.distances).every(Number.isFinite)).toBe(true)
  })

  for (const queryTokens of [1, 17, 1000]) {
    it(`the largest tokens, ${queryTokens} query tokens: finite scores in Chamfer order, equal to chamfer()`, async () => {
      const scales = [1, 0.75, 0.5, 0.25]
      const documents = scales.map((s) => [token(MAX_TOKEN_NORM * 0.999 * s)])
      const query = Array.from({ length: queryTokens }, () => token(MAX_TOKEN_NORM * 0.999))
      for (const fdeMetric of ['cosine', 'dot'] as const) {
        const index = new MultiVectorIndex({ dimensions: D, metric: 'dot', fdeMetric })
        await index.add([0, 1, 2, 3], documents)
        const exact = await index.searchExact(query, { k: 4 })
        expect(Array.from(exact.keys, Number)).toEqual([0, 1, 2, 3])
        const d = Array.from(exact.distances)
        expect(d.every(Number.isFinite)).toBe(true)
        for (let i = 1; i < d.length; i++) expect(d[i - 1]).toBeLessThan(d[i])
        documents.forEach((doc, i) => {
          const reference = chamfer(query, doc, D)
          expect(Number.isFinite(reference)).toBe(true)
          // Both sum up to 1,000 f32 terms, in different orders.
          expect(Math.abs(-d[i] - reference)).toBeLessThanOrEqual(Math.abs(reference) * 1e-4)
        })
        for (const strategy of ['rerank', 'walk', 'tokens'] as const) {
          const hits = index.searchSync(query, { k: 4, strategy })
          expect(Array.from(hits.distances).every(Number.isFinite)).toBe(true)
          expect(Array.from(hits.keys, Number)).toEqual([0, 1, 2, 3])
        }
      }
      const fde = new FdeEncoder({ dimensions: D, numRepetitions: 3, numSimhashProjections: 2, finalProjectionDimension: 32 })
      expect(Array.from(fde.encodeQuery(query)).every(Number.isFinite)).toBe(true)
      expect(Array.from(await fde.encodeDocuments([query])).every(Number.isFinite)).toBe(true)
    })
  }
})

describe('distance(): the indexes rule and the indexes answer', () => {
  const f32 = (v: number[]) => Float32Array.from(v)
  /** bf16 bits of each value (truncated). */
  const bf16 = (v: number[]) => Uint16Array.from(new Uint16Array(Float32Array.from(v).buffer).filter((_, i) => i % 2 === 1))
  const pair = (x: number): [number[], number[]] => [
    [x, -x / 2, 0, x / 3],
    [-x, x / 2, x / 4, 0],
  ]

  /** What an index of `metric` does with both vectors: accept them (and its distance), or refuse. */
  function indexAnswer(a: number[], b: number[], metric: 'cosine' | 'dot' | 'l2sq'): number | string {
    try {
      const flat = new FlatIndex({ dimensions: D, metric })
      flat.addSync([1], [b])
      return flat.searchSync(a, { k: 1 }).distances[0]
    } catch (error) {
      return (error as VecdexError).code
    }
  }

  for (const metric of ['l2sq', 'dot', 'cosine'] as const) {
    for (const x of [1e-25, 1e-3, 1, 1e18, 6.5e18, 1.3e19, 1e30]) {
      it(`${metric}, values of ${x}: refused iff an index refuses, else finite and the index's distance`, () => {
        const [a, b] = pair(x)
        const expected = indexAnswer(a, b, metric)
        for (const [dtype, left, right] of [
          ['f32', f32(a), f32(b)],
          ['bf16', bf16(a), bf16(b)],
        ] as const) {
          let got: number | string
          try {
            got = dtype === 'f32' ? distance(left, right, metric) : distance(left, right, metric, { dtype })
          } catch (error) {
            got = (error as VecdexError).code
          }
          if (typeof expected === 'string') {
            expect(got, dtype).toBe(expected)
          } else {
            expect(typeof got, `${dtype}: ${got}`).toBe('number')
            expect(Number.isFinite(got as number), dtype).toBe(true)
            // bf16 keeps 8 bits of mantissa; f32 matches the index to float tolerance.
            const tolerance = dtype === 'f32' ? 1e-5 : 2e-2
            expect(Math.abs((got as number) - expected), `${dtype}: ${got} vs ${expected}`).toBeLessThanOrEqual(Math.abs(expected) * tolerance + 1e-6)
          }
        }
      })
    }
  }

  it('an HnswIndex refuses the same l2sq pair distance() refuses', () => {
    const [a, b] = pair(1.3e19)
    expect(() => distance(a, b, 'l2sq')).toThrow(VecdexError)
    expect(() => new HnswIndex({ dimensions: D, metric: 'l2sq' }).addSync([1], [a])).toThrow(VecdexError)
  })
})
