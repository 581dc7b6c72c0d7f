import { describe, expect, it } from 'vitest'
import { chamfer, FdeEncoder, MultiVectorIndex, VecdexError } from '../dist/index.js'
import { expectCode, rng } from './helpers'

/** `n` random unit tokens, flat. */
function unitTokens(n: number, dim: number, next: () => number): Float32Array {
  const out = new Float32Array(n * dim)
  for (let t = 0; t < n; t++) {
    let norm = 0
    for (let j = 0; j < dim; j++) {
      const v = next() * 2 - 1
      out[t * dim + j] = v
      norm += v * v
    }
    norm = Math.sqrt(norm)
    for (let j = 0; j < dim; j++) out[t * dim + j] /= norm
  }
  return out
}

/** Plain float64 Chamfer: the reference, independent of vecdex. */
function refChamfer(q: Float32Array, d: Float32Array, dim: number): number {
  let total = 0
  for (let i = 0; i < q.length; i += dim) {
    let best = -Infinity
    for (let j = 0; j < d.length; j += dim) {
      let s = 0
      for (let x = 0; x < dim; x++) s += q[i + x] * d[j + x]
      best = Math.max(best, s)
    }
    total += best
  }
  return total
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i] * b[i]
  return s
}

describe('FdeEncoder properties (MUVERA)', () => {
  const dim = 12
  const next = rng(11)

  it('with 0 SimHash bits and one repetition, a query encodes to the sum and a document to the mean', () => {
    const fde = new FdeEncoder({ dimensions: dim, numRepetitions: 1, numSimhashProjections: 0, projectionType: 'identity' })
    expect(fde.outputDimension).toBe(dim)
    const tokens = unitTokens(5, dim, next)
    const q = fde.encodeQuery(tokens)
    const d = fde.encodeDocument(tokens)
    for (let j = 0; j < dim; j++) {
      let sum = 0
      for (let t = 0; t < 5; t++) sum += tokens[t * dim + j]
      expect(q[j]).toBeCloseTo(sum, 5)
      expect(d[j]).toBeCloseTo(sum / 5, 5)
    }
  })

  it('a one-token document gives (1/R)·<FDE(Q), FDE(P)> = Chamfer(Q, P) with identity projection and fill', () => {
    for (const [R, k] of [[1, 3], [5, 4], [12, 2]]) {
      const fde = new FdeEncoder({ dimensions: dim, numRepetitions: R, numSimhashProjections: k, projectionType: 'identity', fillEmptyPartitions: true })
      for (let trial = 0; trial < 10; trial++) {
        const q = unitTokens(1 + trial, dim, next)
        const p = unitTokens(1, dim, next)
        expect(dot(fde.encodeQuery(q), fde.encodeDocument(p)) / R).toBeCloseTo(refChamfer(q, p, dim), 4)
      }
    }
  })

  it('any document gives (1/R)·<FDE(Q), FDE(P)> <= Chamfer(Q, P)', () => {
    const R = 6
    const fde = new FdeEncoder({ dimensions: dim, numRepetitions: R, numSimhashProjections: 3, projectionType: 'identity', fillEmptyPartitions: true })
    for (let trial = 0; trial < 100; trial++) {
      const q = unitTokens(1 + (trial % 9), dim, next)
      const p = unitTokens(1 + (trial % 13), dim, next)
      expect(dot(fde.encodeQuery(q), fde.encodeDocument(p)) / R).toBeLessThanOrEqual(refChamfer(q, p, dim) + 1e-4)
    }
  })

  it('query encoding is linear (additive over token sets, homogeneous for positive scales)', () => {
    const fde = new FdeEncoder({ dimensions: dim, numRepetitions: 4, numSimhashProjections: 3, projectionDimension: 6, finalProjectionDimension: 100 })
    const a = unitTokens(4, dim, next)
    const b = unitTokens(3, dim, next)
    const both = new Float32Array(a.length + b.length)
    both.set(a)
    both.set(b, a.length)
    const [fa, fb, fab] = [fde.encodeQuery(a), fde.encodeQuery(b), fde.encodeQuery(both)]
    for (let i = 0; i < fab.length; i++) expect(fab[i]).toBeCloseTo(fa[i] + fb[i], 4)
    const fs = fde.encodeQuery(a.map((x) => 3 * x))
    for (let i = 0; i < fa.length; i++) expect(fs[i]).toBeCloseTo(3 * fa[i], 4)
  })

  it('the partition table for 3 bits: sign patterns read as a Gray code', () => {
    // Identity projection, one repetition, 3 bits: a one-token query fills exactly the block of
    // its partition. The table maps sign pattern s (first projection = top bit) to partition
    // grayInverse(s): 000→0, 001→1, 011→2, 010→3, 110→4, 111→5, 101→6, 100→7. Without access to
    // the random directions, two consequences pin it down: (1) −x has every sign flipped, and
    // grayInverse(s ⊕ 111) = grayInverse(s) ⊕ 101, so partition(−x) = partition(x) ⊕ 5 (a plain
    // binary reading would give ⊕ 7); (2) moving a token along a line crosses one hyperplane at
    // a time, so consecutive partitions' patterns (gray(p)) differ in one bit.
    const d3 = 3
    const fde = new FdeEncoder({ dimensions: d3, numRepetitions: 1, numSimhashProjections: 3, projectionType: 'identity', fillEmptyPartitions: false })
    const gray = (p: number) => p ^ (p >> 1)
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(gray)).toEqual([0b000, 0b001, 0b011, 0b010, 0b110, 0b111, 0b101, 0b100])
    const partitionOf = (token: Float32Array) => {
      const e = fde.encodeQuery(token)
      const occupied = [0, 1, 2, 3, 4, 5, 6, 7].filter((p) => e.subarray(p * d3, (p + 1) * d3).some((x) => x !== 0))
      expect(occupied.length).toBe(1)
      return occupied[0]
    }
    const seen = new Map<number, Float32Array>()
    for (let i = 0; i < 3000; i++) {
      const t = unitTokens(1, d3, next)
      const p = partitionOf(t)
      expect(partitionOf(t.map((x) => -x))).toBe(p ^ 0b101)
      seen.set(p, t)
    }
    expect(seen.size).toBe(8)
    for (const [p, t] of seen) {
      for (const [p2, t2] of seen) {
        let last = p
        for (let s = 1; s <= 300; s++) {
          const now = partitionOf(t.map((x, j) => x * (1 - s / 300) + t2[j] * (s / 300)))
          if (now !== last) {
            const flipped = gray(now) ^ gray(last)
            expect(flipped & (flipped - 1)).toBe(0)
            last = now
          }
        }
        expect(last).toBe(p2)
      }
    }
  })

  it('approximation error shrinks as repetitions grow (spread over seeds)', () => {
    const pairs = Array.from({ length: 12 }, () => [unitTokens(6, dim, next), unitTokens(9, dim, next)] as const)
    const spread = (R: number) => {
      let total = 0
      for (const [q, p] of pairs) {
        const values = Array.from({ length: 16 }, (_, s) => {
          const fde = new FdeEncoder({ dimensions: dim, numRepetitions: R, numSimhashProjections: 3, projectionDimension: 6, seed: 1000 * s })
          return dot(fde.encodeQuery(q), fde.encodeDocument(p)) / R
        })
        const mean = values.reduce((a, b) => a + b) / values.length
        total += Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length)
      }
      return total / pairs.length
    }
    const spreads = [1, 4, 16].map(spread)
    expect(spreads[1]).toBeLessThan(spreads[0] * 0.7)
    expect(spreads[2]).toBeLessThan(spreads[1] * 0.7)
  })

  it('is deterministic for a seed and batch-encodes like one at a time', async () => {
    const a = new FdeEncoder({ dimensions: dim, seed: 5 })
    const b = new FdeEncoder({ dimensions: dim, seed: 5 })
    expect(a.config.rngVersion).toBe(1)
    const docs = [unitTokens(3, dim, next), unitTokens(7, dim, next)]
    const batch = await a.encodeDocuments(docs)
    expect(batch.length).toBe(2 * a.outputDimension)
    expect(Array.from(batch.subarray(0, a.outputDimension))).toEqual(Array.from(b.encodeDocument(docs[0])))
    expect(Array.from(a.encodeQueriesSync({ tokens: docs[1], offsets: [0, 7] }))).toEqual(Array.from(b.encodeQuery(docs[1])))
  })

  it('refuses bad configurations and inputs with typed errors', async () => {
    await expectCode(() => new FdeEncoder({ dimensions: 0 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FdeEncoder({ dimensions: dim, numSimhashProjections: 31 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FdeEncoder({ dimensions: dim, numSimhashProjections: 30 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FdeEncoder({ dimensions: dim, numRepetitions: 0 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FdeEncoder({ dimensions: dim, projectionType: 'gaussian' as 'identity' }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new FdeEncoder({ dimensions: dim, projectionType: 'identity', projectionDimension: 4 }), 'ERR_INVALID_ARGUMENT')
    const fde = new FdeEncoder({ dimensions: dim })
    await expectCode(() => fde.encodeQuery(new Float32Array(0)), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => fde.encodeQuery(new Float32Array(dim + 1)), 'ERR_DIMENSION_MISMATCH')
    await expectCode(() => fde.encodeDocument(new Float32Array(dim).fill(NaN)), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => fde.encodeDocumentsSync({ tokens: new Float32Array(2 * dim), offsets: [0, 0, 2] }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => fde.encodeDocumentsSync({ tokens: new Float32Array(2 * dim), offsets: [0, 3] }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => fde.encodeDocumentsSync({ tokens: new Float32Array(2 * dim), offsets: [1, 2] }), 'ERR_INVALID_ARGUMENT')
  })

  it('chamfer() equals the plain reference', () => {
    const q = unitTokens(5, dim, next)
    const d = unitTokens(8, dim, next)
    expect(chamfer(q, d, dim)).toBeCloseTo(refChamfer(q, d, dim), 5)
  })
})

describe('MultiVectorIndex', () => {
  const dim = 24
  const next = rng(21)
  // Documents of 2–12 tokens around 40 topics, so Chamfer neighbours are meaningful.
  const topics = Array.from({ length: 40 }, () => unitTokens(4, dim, next))
  const makeDoc = () => {
    const topic = topics[Math.floor(next() * topics.length)]
    const n = 2 + Math.floor(next() * 11)
    const noise = unitTokens(n, dim, next)
    for (let t = 0; t < n; t++) {
      const source = Math.floor(next() * 4)
      for (let j = 0; j < dim; j++) noise[t * dim + j] = topic[source * dim + j] + 0.6 * noise[t * dim + j]
    }
    return noise
  }
  const docs = Array.from({ length: 1500 }, makeDoc)
  const queries = Array.from({ length: 30 }, makeDoc)
  const normalise = (x: Float32Array) => {
    const out = x.slice()
    for (let t = 0; t < out.length; t += dim) {
      let n = 0
      for (let j = 0; j < dim; j++) n += out[t + j] ** 2
      n = Math.sqrt(n)
      for (let j = 0; j < dim; j++) out[t + j] /= n
    }
    return out
  }
  const truth = queries.map((q) => {
    const qn = normalise(q)
    return docs
      .map((d, i) => ({ i, s: refChamfer(qn, normalise(d), dim) }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 10)
  })

  it('exact search equals a plain Chamfer scan; FDE search with rerank finds most of it', async () => {
    using index = new MultiVectorIndex({ dimensions: dim, fde: { numRepetitions: 10, numSimhashProjections: 3, projectionDimension: 8 } })
    await index.add(docs.map((_, i) => i), docs)
    expect(index.size).toBe(docs.length)
    const exact = await index.searchExactBatch({ tokens: concat(queries), offsets: offsetsOf(queries) }, { k: 10 })
    let hits = 0
    queries.forEach((_, qi) => {
      const row = exact.get(qi)
      row.distances.forEach((d, r) => expect(-d).toBeCloseTo(truth[qi][r].s, 3))
      const got = index.searchSync(queries[qi], { k: 10, candidates: 200 }).get(0)
      const want = new Set(truth[qi].map((t) => t.i))
      hits += got.numberKeys().filter((k) => want.has(k)).length
      // Reranked scores are exact Chamfer similarities.
      got.numberKeys().forEach((k, r) => expect(-got.distances[r]).toBeCloseTo(refChamfer(normalise(queries[qi]), normalise(docs[k]), dim), 3))
    })
    expect(hits / (10 * queries.length)).toBeGreaterThan(0.8)
    // The walk strategy scores what it visits exactly: its hits are exact Chamfer too.
    let walkHits = 0
    queries.forEach((q, qi) => {
      const got = index.searchSync(q, { k: 10, candidates: 200, strategy: 'walk' }).get(0)
      const want = new Set(truth[qi].map((t) => t.i))
      walkHits += got.numberKeys().filter((k) => want.has(k)).length
      got.numberKeys().forEach((k, r) => expect(-got.distances[r]).toBeCloseTo(refChamfer(normalise(q), normalise(docs[k]), dim), 3))
    })
    expect(walkHits / (10 * queries.length)).toBeGreaterThan(0.8)
    // Token retrieval: no FDE; its index of distinct tokens is built by the first such search.
    const batch = { tokens: concat(queries), offsets: offsetsOf(queries) }
    const byTokens = await index.searchBatch(batch, { k: 10, candidates: 200, strategy: 'tokens', tokenNeighbours: 32 })
    let tokenHits = 0
    queries.forEach((q, qi) => {
      const got = byTokens.get(qi)
      const want = new Set(truth[qi].map((t) => t.i))
      tokenHits += got.numberKeys().filter((k) => want.has(k)).length
      got.numberKeys().forEach((k, r) => expect(-got.distances[r]).toBeCloseTo(refChamfer(normalise(q), normalise(docs[k]), dim), 3))
    })
    expect(tokenHits / (10 * queries.length)).toBeGreaterThan(0.8)
    expect(index.searchSync(queries[0], { k: 3, strategy: 'tokens' }).get(0).numberKeys()).toHaveLength(3)
    await expectCode(() => index.search(queries[0], { k: 3, strategy: 'tokens', tokenNeighbours: 0 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.search(queries[0], { k: 3, strategy: 'tokens', tokenNeighbours: 5000 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.search(queries[0], { k: 3, strategy: 'nearest' as never }), 'ERR_INVALID_ARGUMENT')
    const stats = index.stats()
    expect(stats.documents).toBe(docs.length)
    expect(stats.fdeDimension).toBe(10 * 8 * 8)
  })

  it('replaces, removes, filters, gets and streams documents', async () => {
    using index = new MultiVectorIndex({ dimensions: dim, metric: 'dot', fdeMetric: 'dot', fde: { numRepetitions: 4, numSimhashProjections: 2, projectionDimension: 8 } })
    expect(index.fdeMetric).toBe('dot')
    const added = await index.addStream((async function* () {
      for (let i = 0; i < 300; i++) yield { key: i, tokens: docs[i] }
    })(), { batchSize: 64 })
    expect(added).toBe(300)
    expect(Array.from(index.get(5)!)).toEqual(Array.from(docs[5]))
    index.addSync([5], [docs[400]])
    expect(Array.from(index.get(5)!)).toEqual(Array.from(docs[400]))
    expect(index.size).toBe(300)
    expect(index.removeSync([1, 2, 999])).toBe(2)
    expect(index.contains(1)).toBe(false)
    const hits = index.searchSync(docs[400], { k: 3, candidates: 50 }).get(0)
    expect(hits.numberKeys()[0]).toBe(5)
    const filtered = index.searchExactSync(docs[400], { k: 5, filter: [7, 8, 9] }).get(0)
    expect(filtered.numberKeys().sort()).toEqual([7, 8, 9])
    const approx = index.searchSync(docs[400], { k: 5, filter: [7, 8, 9], candidates: 20 }).get(0)
    expect(approx.numberKeys().every((k) => [7, 8, 9].includes(k))).toBe(true)
  })

  it('searches a compressed FDE index after auto-training, and carves query balls', async () => {
    using index = new MultiVectorIndex({ dimensions: dim, quantization: 'sq8', trainingSize: 500, ballCarving: 0.7, fde: { numRepetitions: 8, numSimhashProjections: 3, projectionDimension: 8 } })
    await index.add(docs.slice(0, 400).map((_, i) => i), docs.slice(0, 400))
    expect(index.isTrained).toBe(false)
    await expect(index.search(queries[0], { k: 5 })).rejects.toMatchObject({ code: 'ERR_NOT_TRAINED' })
    await index.add(docs.slice(400, 1500).map((_, i) => 400 + i), docs.slice(400, 1500))
    expect(index.isTrained).toBe(true)
    const r = await index.search(queries[0], { k: 5 })
    expect(r.get(0).keys.length).toBe(5)
    const carved = index.searchSync(queries[0], { k: 5, ballCarving: 0.99 }).get(0)
    expect(carved.keys.length).toBe(5)
  })

  it('validates input and lifecycle with typed errors', async () => {
    const index = new MultiVectorIndex({ dimensions: dim })
    await expectCode(() => index.addSync([1, 2], [docs[0]]), 'ERR_DIMENSION_MISMATCH')
    await expectCode(() => index.addSync([1], [new Float32Array(dim + 1)]), 'ERR_DIMENSION_MISMATCH')
    await expectCode(() => index.addSync([1], [new Float32Array(dim)]), 'ERR_ZERO_VECTOR')
    await expectCode(() => index.addSync([1, 1], [docs[0], docs[1]]), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.addSync([1], { tokens: docs[0], offsets: [0, 1] }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.addSync([1], [new Float32Array(0)]), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.searchSync(docs[0], { k: 0 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.searchSync(docs[0], { k: 1, candidates: 0 }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.searchSync(docs[0], { k: 1, ballCarving: NaN }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => index.searchSync(docs[0], { k: 1, strategy: 'beam' as 'walk' }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new MultiVectorIndex({ dimensions: dim, metric: 'l2sq' as 'dot' }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new MultiVectorIndex({ dimensions: dim, fdeMetric: 'l2sq' as 'dot' }), 'ERR_INVALID_ARGUMENT')
    await expectCode(() => new MultiVectorIndex({ dimensions: dim, fde: { numSimhashProjections: 40 } }), 'ERR_INVALID_ARGUMENT')
    expect(index.searchSync(docs[0], { k: 3 }).get(0).keys.length).toBe(0)
    const controller = new AbortController()
    controller.abort()
    await expect(index.add([1], [docs[0]], { signal: controller.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(index.size).toBe(0)
    index.close()
    index.close()
    await expectCode(() => index.size, 'ERR_CLOSED')
    await expectCode(() => index.searchSync(docs[0], { k: 1 }), 'ERR_CLOSED')
  })
})

function concat(clouds: Float32Array[]): Float32Array {
  const out = new Float32Array(clouds.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const c of clouds) {
    out.set(c, at)
    at += c.length
  }
  return out
}

function offsetsOf(clouds: Float32Array[], dim = 24): Uint32Array {
  const out = new Uint32Array(clouds.length + 1)
  clouds.forEach((c, i) => (out[i + 1] = out[i] + c.length / dim))
  return out
}
