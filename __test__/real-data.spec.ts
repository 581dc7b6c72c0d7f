import { describe, expect, it } from 'vitest'
import { FlatIndex } from '../dist/index.js'
import { expectSameNeighbours, loadMnist, loadSift, referenceScan, refDistance, type RefMetric } from './helpers'

const sift = loadSift()
const mnist = loadMnist()
if (!sift) console.warn(`skipping SIFT tests: ../shared/data/ngt-sift not found`)
if (!mnist) console.warn(`skipping MNIST tests: ../shared/data/mnist not found`)

describe.skipIf(!sift)('exact search on real SIFT descriptors (texmex, 5k × 128)', () => {
  for (const metric of ['l2sq', 'cosine', 'dot'] as RefMetric[]) {
    it(`equals a plain float64 scan (${metric})`, async () => {
      const { base, queries: given, dim } = sift!
      // The 3 official queries plus 20 base vectors as extra queries (their own neighbours lead).
      const queries = new Float32Array((3 + 20) * dim)
      queries.set(given)
      for (let i = 0; i < 20; i++) queries.set(base.subarray(i * 211 * dim, (i * 211 + 1) * dim), (3 + i) * dim)
      // Dot products of raw SIFT vectors reach ~1e6: scale so `1 − dot` keeps f32 precision.
      const scale = metric === 'dot' ? 1 / 512 : 1
      const b = base.map((x) => x * scale)
      const q = queries.map((x) => x * scale)
      const index = new FlatIndex({ dimensions: dim, metric })
      await index.add(Uint32Array.from({ length: b.length / dim }, (_, i) => i), b)
      const want = referenceScan(b, q, dim, 10, metric)
      const got = await index.searchBatch(q, { k: 10 })
      for (let r = 0; r < q.length / dim; r++) {
        const query = q.subarray(r * dim, (r + 1) * dim)
        expectSameNeighbours(got.get(r), want[r], (i) => refDistance(query, b.subarray(i * dim, (i + 1) * dim), metric), 1e-4)
      }
    })
  }
})

describe.skipIf(!mnist)('exact search on real MNIST digits (10k × 784)', () => {
  it('equals a plain float64 scan under l2sq and cosine, batch and single', async () => {
    const { images, dim, count } = mnist!
    const queryRows = Array.from({ length: 25 }, (_, i) => (i * 397 + 11) % count)
    const queries = new Float32Array(queryRows.length * dim)
    queryRows.forEach((row, i) => queries.set(images.subarray(row * dim, (row + 1) * dim), i * dim))
    for (const metric of ['l2sq', 'cosine'] as RefMetric[]) {
      const index = new FlatIndex({ dimensions: dim, metric })
      index.addSync(Uint32Array.from({ length: count }, (_, i) => i), images)
      const want = referenceScan(images, queries, dim, 10, metric)
      const batch = await index.searchBatch(queries, { k: 10 })
      for (let r = 0; r < queryRows.length; r++) {
        const query = queries.subarray(r * dim, (r + 1) * dim)
        const refOf = (i: number) => refDistance(query, images.subarray(i * dim, (i + 1) * dim), metric)
        expectSameNeighbours(batch.get(r), want[r], refOf, 1e-4)
        expectSameNeighbours(index.searchSync(query, { k: 10 }).get(0), want[r], refOf, 1e-4)
        // A base image is its own nearest neighbour (duplicates aside).
        expect(want[r][0].distance).toBeLessThanOrEqual(1e-9)
      }
      index.close()
    }
  })
})
