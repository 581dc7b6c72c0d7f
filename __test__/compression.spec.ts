import { describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, type Quantization, VecdexError } from '../dist/index.js'
import { refDistance } from './helpers'
import { clusteredMatrix, exactSearch, recallOf, row, seqKeys } from './hnsw-helpers'

const DIM = 40
const N = 3000
const base = clusteredMatrix(N, DIM, 30, 7)
const queries = clusteredMatrix(50, DIM, 30, 7, 0, 99)
const keys = seqKeys(N)
const vectorOf = (key: number) => row(base, DIM, key)

function expectCode(fn: () => unknown, code: string) {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(VecdexError)
    expect((error as VecdexError).code).toBe(code)
    return
  }
  throw new Error(`expected ${code}`)
}

describe('compressed search forms', () => {
  const forms: [string, Quantization, number][] = [
    ['sq8 (symmetric)', 'sq8', 0.95],
    ['sq8 asymmetric', { type: 'sq8', symmetric: false }, 0.97],
    ['sq4', 'sq4', 0.9],
    ['pq', { type: 'pq', subspaces: 10 }, 0.85],
    ['binary', 'binary', 0.7],
    ['rabitq', 'rabitq', 0.9],
    ['rabitq 4-bit', { type: 'rabitq', bits: 4 }, 0.97],
    ['f16', 'f16', 0.99],
  ]
  for (const [name, quantization, floor] of forms) {
    it(`${name}: HNSW and flat reach recall ${floor} after rescoring, with exact distances`, async () => {
      const exact = await exactSearch(base, keys, DIM, 'cosine', queries, 10)
      using hnsw = new HnswIndex({ dimensions: DIM, metric: 'cosine', quantization, trainingSize: 1000, oversample: 8 })
      using flat = new FlatIndex({ dimensions: DIM, metric: 'cosine', quantization, trainingSize: 1000, oversample: 8 })
      await hnsw.add(keys, base)
      await flat.add(keys, base)
      for (const index of [hnsw, flat]) {
        expect(index.isTrained).toBe(true)
        const got = await index.searchBatch(queries, { k: 10 })
        expect(recallOf(got, exact, queries, DIM, 'cosine', vectorOf, 10)).toBeGreaterThanOrEqual(floor)
        // Rescored distances are the exact ones.
        const first = got.get(0)
        const expected = refDistance(row(queries, DIM, 0), vectorOf(Number(first.keys[0])), 'cosine')
        expect(first.distances[0]).toBeCloseTo(expected, 4)
        // The sync path gives the same answers.
        const sync = index.searchSync(row(queries, DIM, 3), { k: 10 }).get(0)
        expect(Array.from(sync.keys)).toEqual(Array.from(got.get(3).keys))
      }
    })
  }

  it('trains a PCA projection by itself on at least 10 rows per dimension by default (1,000 rows otherwise)', async () => {
    const dims = 150 // 1,500 rows: more than the 1,000 of a codec without a projection
    const rows = clusteredMatrix(1500, dims, 30, 9)
    for (const make of [(o: object) => new FlatIndex(o as never), (o: object) => new HnswIndex(o as never)]) {
      using projected = make({ dimensions: dims, metric: 'l2sq', pcaDimensions: 16 })
      await projected.add(seqKeys(1499), rows.subarray(0, 1499 * dims))
      expect(projected.isTrained).toBe(false)
      await projected.add(seqKeys(1, 1499), rows.subarray(1499 * dims))
      expect(projected.isTrained).toBe(true)
      using plain = make({ dimensions: dims, metric: 'l2sq', quantization: 'sq8' })
      await plain.add(seqKeys(1000), rows.subarray(0, 1000 * dims))
      expect(plain.isTrained).toBe(true)
    }
  })

  it('refuses to search before training, trains by itself at trainingSize or with train()', async () => {
    using hnsw = new HnswIndex({ dimensions: DIM, quantization: 'sq8', trainingSize: 2000 })
    await hnsw.add(seqKeys(1000), base.subarray(0, 1000 * DIM))
    expect(hnsw.isTrained).toBe(false)
    expectCode(() => hnsw.searchSync(row(queries, DIM, 0), { k: 5 }), 'ERR_NOT_TRAINED')
    await expect(hnsw.searchBatch(queries, { k: 5 })).rejects.toMatchObject({ code: 'ERR_NOT_TRAINED' })
    expect(hnsw.compressionStats()).toMatchObject({ quantization: 'sq8', trained: false, codeSize: 0 })
    await hnsw.add(seqKeys(1000, 1000), base.subarray(1000 * DIM, 2000 * DIM))
    expect(hnsw.isTrained).toBe(true)
    const stats = hnsw.compressionStats()
    expect(stats).toMatchObject({ quantization: 'sq8', trained: true, searchDimensions: DIM, codeSize: DIM, codeBytes: 2000 * DIM, vectorBytes: 2000 * DIM * 4 })
    expect(stats.trainingSeconds).toBeGreaterThanOrEqual(0)
    // Vectors stored before training were encoded when it happened: each finds itself.
    expect(Number(hnsw.searchSync(row(base, DIM, 5), { k: 1 }).get(0).keys[0])).toBe(5)

    using flat = new FlatIndex({ dimensions: DIM, quantization: { type: 'pq', subspaces: 20 }, trainingSize: 100000 })
    flat.addSync(keys, base)
    expect(flat.isTrained).toBe(false)
    await flat.train(base.subarray(0, 2000 * DIM))
    expect(flat.isTrained).toBe(true)
    expect(flat.compressionStats().codeSize).toBe(20)
    // Rescoring 16 candidates per result finds (nearly) every self-query, which codes that
    // ignore the training would not.
    let found = 0
    for (let i = 0; i < N; i += 30) found += Number(flat.searchSync(row(base, DIM, i), { k: 1, oversample: 16 }).get(0).keys[0]) === i ? 1 : 0
    expect(found / (N / 30)).toBeGreaterThanOrEqual(0.95)
  })

  it('retrains in the background: searches called before train() see the old model, later ones the new, as trainSync', async () => {
    const options = { dimensions: DIM, quantization: { type: 'pq', subspaces: 10 } as Quantization, trainingSize: 100000 }
    using background = new FlatIndex(options)
    using blocking = new FlatIndex(options)
    for (const index of [background, blocking]) {
      index.addSync(keys, base)
      index.trainSync(base.subarray(0, 500 * DIM))
    }
    // The codes' own estimates (no rescoring) tell the two models apart.
    const estimates = { k: 10, rescore: false }
    const old = background.searchBatchSync(queries, estimates)
    const [before, , after] = await Promise.all([
      background.searchBatch(queries, estimates),
      background.train(base.subarray(500 * DIM)),
      background.searchBatch(queries, estimates),
    ])
    blocking.trainSync(base.subarray(500 * DIM))
    const retrained = blocking.searchBatchSync(queries, estimates)
    expect(before.distances).toEqual(old.distances)
    expect(after.distances).toEqual(retrained.distances)
    expect(after.keys).toEqual(retrained.keys)
    expect(after.distances).not.toEqual(old.distances)
  })

  it('Matryoshka prefix and PCA reductions search fewer dimensions and rescore on all', async () => {
    const exact = await exactSearch(base, keys, DIM, 'l2sq', queries, 10)
    for (const options of [{ prefixDimensions: 32 }, { pcaDimensions: 24 }, { pcaDimensions: 24, quantization: 'sq8' as const }]) {
      using index = new HnswIndex({ dimensions: DIM, metric: 'l2sq', trainingSize: 1000, oversample: 10, ...options })
      await index.add(keys, base)
      const stats = index.compressionStats()
      expect(stats.searchDimensions).toBe(options.prefixDimensions ?? options.pcaDimensions)
      const got = await index.searchBatch(queries, { k: 10 })
      expect(recallOf(got, exact, queries, DIM, 'l2sq', vectorOf, 10), JSON.stringify(options)).toBeGreaterThanOrEqual(0.6)
      // Stored vectors keep every dimension.
      expect(index.get(3)).toHaveLength(DIM)
    }
  })

  it('rabitq: candidates by code are better than binary codes at the same oversample, on both indexes', async () => {
    // RaBitQ centres on one centroid (an IVF index would give it one per cell) and its error
    // shrinks as 1/√D: compare on one cluster at 128 dimensions.
    const dims = 128
    const data = clusteredMatrix(N, dims, 1, 17)
    const probes = clusteredMatrix(50, dims, 1, 17, 0, 98)
    const exact = await exactSearch(data, keys, dims, 'l2sq', probes, 10)
    const recall = async (quantization: Quantization, kind: 'flat' | 'hnsw') => {
      const options = { dimensions: dims, metric: 'l2sq' as const, quantization, trainingSize: 1000, oversample: 4 }
      using index = kind === 'flat' ? new FlatIndex(options) : new HnswIndex({ ...options, seed: 4 })
      await index.add(keys, data)
      const found = index instanceof HnswIndex ? await index.searchBatch(probes, { k: 10, efSearch: 64 }) : await index.searchBatch(probes, { k: 10 })
      return recallOf(found, exact, probes, dims, 'l2sq', (key) => row(data, dims, key), 10)
    }
    for (const kind of ['flat', 'hnsw'] as const) {
      const [rabitq, binary] = [await recall('rabitq', kind), await recall('binary', kind)]
      // Measured: 0.63 against 0.48 (flat), 0.65 against 0.46 (HNSW).
      expect(rabitq, `${kind}: rabitq ${rabitq} vs binary ${binary}`).toBeGreaterThan(binary + 0.02)
    }
  })

  it('rabitq bits 4: estimates good enough to rank without rescoring, better than 1-bit and sq4 codes', async () => {
    const dims = 128
    const data = clusteredMatrix(N, dims, 1, 17)
    const probes = clusteredMatrix(50, dims, 1, 17, 0, 98)
    const exact = await exactSearch(data, keys, dims, 'l2sq', probes, 10)
    const raw = async (quantization: Quantization) => {
      using index = new FlatIndex({ dimensions: dims, metric: 'l2sq', quantization, trainingSize: 1000 })
      await index.add(keys, data)
      const found = await index.searchBatch(probes, { k: 10, rescore: false })
      return recallOf(found, exact, probes, dims, 'l2sq', (key) => row(data, dims, key), 10)
    }
    const [extended, oneBit, sq4] = [await raw({ type: 'rabitq', bits: 4 }), await raw('rabitq'), await raw('sq4')]
    expect(extended, `4-bit ${extended}, 1-bit ${oneBit}, sq4 ${sq4}`).toBeGreaterThan(0.75)
    expect(extended).toBeGreaterThan(oneBit + 0.2)
    expect(extended).toBeGreaterThan(sq4)
    using index = new FlatIndex({ dimensions: dims, metric: 'l2sq', quantization: { type: 'rabitq', bits: 4 }, trainingSize: 1000 })
    await index.add(keys, data)
    // 4 bits per dimension and four f32 factors; the default oversample is the fine codecs' 4.
    expect(index.compressionStats()).toMatchObject({ quantization: 'rabitq', codeSize: dims / 2 + 16 })
    expect(index.searchSync(row(probes, dims, 0), { k: 10 }).get(0).keys).toHaveLength(10)
  })

  it('rabitq bits: 1 and 4 are built, other widths and other codecs are refused with a code', () => {
    for (const bits of [0, 2, 3, 5, 8, 1.5]) {
      expectCode(() => new FlatIndex({ dimensions: 16, quantization: { type: 'rabitq', bits } as never }), 'ERR_INVALID_ARGUMENT')
    }
    expectCode(() => new HnswIndex({ dimensions: 16, quantization: { type: 'sq8', bits: 4 } as never }), 'ERR_INVALID_ARGUMENT')
    using one = new HnswIndex({ dimensions: 16, quantization: { type: 'rabitq', bits: 1 } })
    expect(one.compressionStats().quantization).toBe('rabitq')
  })

  it('rabitq refuses more than 2,048 searched dimensions (a dense rotation), unless PCA reduces them', () => {
    expectCode(() => new FlatIndex({ dimensions: 2049, quantization: 'rabitq' }), 'ERR_INVALID_ARGUMENT')
    expectCode(() => new HnswIndex({ dimensions: 4096, quantization: 'rabitq' }), 'ERR_INVALID_ARGUMENT')
    using reduced = new FlatIndex({ dimensions: 4096, quantization: 'rabitq', pcaDimensions: 256 })
    expect(reduced.compressionStats().quantization).toBe('rabitq')
    using largest = new FlatIndex({ dimensions: 2048, quantization: 'rabitq' })
    expect(largest.isTrained).toBe(false)
  })

  it('search options: oversample per call, rescore off returns the codes’ estimates', async () => {
    using index = new FlatIndex({ dimensions: DIM, metric: 'l2sq', quantization: 'binary', trainingSize: 1000 })
    index.addSync(keys, base)
    const query = row(queries, DIM, 0)
    const raw = index.searchSync(query, { k: 5, rescore: false }).get(0)
    // Estimates: the distance to each code's decoded vector (the mean ± the mean absolute
    // deviation per dimension), not the exact distance.
    const exact = Array.from(raw.keys, (key) => refDistance(query, vectorOf(Number(key)), 'l2sq'))
    expect(exact.some((d, i) => Math.abs(d - raw.distances[i]) > 1e-3 * d)).toBe(true)
    for (let i = 1; i < raw.distances.length; i++) expect(raw.distances[i]).toBeGreaterThanOrEqual(raw.distances[i - 1])
    const wide = index.searchSync(query, { k: 5, oversample: 50 }).get(0)
    for (let i = 0; i < wide.keys.length; i++) {
      expect(wide.distances[i]).toBeCloseTo(refDistance(query, vectorOf(Number(wide.keys[i])), 'l2sq'), 2)
    }
    expectCode(() => index.searchSync(query, { k: 5, oversample: 0.5 }), 'ERR_INVALID_ARGUMENT')
    expectCode(() => index.searchSync(query, { k: 5, oversample: 1001 }), 'ERR_INVALID_ARGUMENT')
  })

  it('bad compression options are typed errors', () => {
    const bad: object[] = [
      { quantization: 'int3' },
      { quantization: 42 },
      { quantization: { type: 'sq4', symmetric: true } },
      { quantization: { type: 'sq8', clipQuantile: 0.5 } },
      { quantization: { type: 'sq8', subspaces: 4 } },
      { quantization: { type: 'pq', subspaces: 41 } },
      { quantization: { type: 'pq', subspaces: 0 } },
      { quantization: 'sq8', oversample: 0 },
      { quantization: 'sq8', trainingSize: -1 },
      { prefixDimensions: DIM },
      { pcaDimensions: 0 },
      { prefixDimensions: 8, pcaDimensions: 8 },
      { pcaDimensions: 8, trainingSize: 1 },
    ]
    for (const options of bad) {
      expectCode(() => new HnswIndex({ dimensions: DIM, ...options }), 'ERR_INVALID_ARGUMENT')
      expectCode(() => new FlatIndex({ dimensions: DIM, ...options }), 'ERR_INVALID_ARGUMENT')
    }
    using plain = new FlatIndex({ dimensions: DIM })
    expectCode(() => plain.trainSync(base.subarray(0, 10 * DIM)), 'ERR_INVALID_ARGUMENT')
    using quantized = new HnswIndex({ dimensions: DIM, quantization: 'sq8' })
    expectCode(() => quantized.trainSync(base.subarray(0, 10 * DIM + 3)), 'ERR_DIMENSION_MISMATCH')
    expectCode(() => quantized.trainSync(new Float32Array(DIM).fill(Number.NaN)), 'ERR_INVALID_ARGUMENT')
  })
})
