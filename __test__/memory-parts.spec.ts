// stats().memory and compressionStats().memory (FlatIndex, HnswIndex) and stats().index
// (Collection): the bytes an index holds by part add up to its memoryBytes, and each part holds
// what it should: the full rows, the codes once trained, the graph only for HNSW, the keys.
import { describe, expect, it } from 'vitest'
import { Collection, FlatIndex, HnswIndex, type MemoryParts, type Quantization } from '../dist/index.js'
import { clusteredMatrix, seqKeys } from './hnsw-helpers'

const DIM = 48
const N = 3000
const rows = clusteredMatrix(N, DIM, 20, 5)

const sum = (parts: MemoryParts) => parts.vectors + parts.codes + parts.graph + parts.ids

describe('memory by part', () => {
  for (const quantization of ['none', 'sq8', 'sq4', 'binary', 'rabitq'] as Quantization[]) {
    it(`FlatIndex and HnswIndex, quantization ${JSON.stringify(quantization)}`, async () => {
      for (const kind of ['flat', 'hnsw'] as const) {
        const options = { dimensions: DIM, metric: 'l2sq' as const, quantization, trainingSize: 1000 }
        using index = kind === 'flat' ? new FlatIndex(options) : new HnswIndex({ ...options, seed: 1 })
        const empty = index.stats().memory
        expect(sum(empty)).toBe(index.stats().memoryBytes)
        await index.add(seqKeys(N), rows)
        const stats = index.stats()
        const { memory } = stats
        const label = `${kind} ${JSON.stringify(quantization)}`
        expect(sum(memory), label).toBe(stats.memoryBytes)
        expect(memory.vectors, label).toBeGreaterThanOrEqual(N * DIM * 4)
        expect(memory.vectors, label).toBeLessThan(3 * N * DIM * 4)
        const compression = index.compressionStats()
        const codeBytes = compression.codeBytes
        // compressionStats() carries the same parts, read with its own figures.
        expect(compression.memory, label).toEqual(memory)
        expect(memory.vectors, label).toBeGreaterThanOrEqual(compression.vectorBytes)
        if (quantization === 'none') expect(memory.codes, label).toBe(0)
        else expect(memory.codes, label).toBeGreaterThanOrEqual(codeBytes)
        expect(memory.ids, label).toBeGreaterThanOrEqual(N * 8)
        if (kind === 'flat') expect(memory.graph, label).toBe(0)
        // Layer 0 alone: 2m + 1 u32 words per slot (m 16 by default).
        else expect(memory.graph, label).toBeGreaterThanOrEqual(N * 33 * 4)
      }
    })
  }

  it('Collection: stats().index adds up to indexBytes', async () => {
    for (const index of ['flat', 'hnsw'] as const) {
      using docs = new Collection({ dimensions: DIM, index, quantization: 'sq8', trainingSize: 500 })
      await docs.upsert(Array.from({ length: 1000 }, (_, i) => ({ id: `doc-${i}`, vector: rows.subarray(i * DIM, (i + 1) * DIM), text: 'x'.repeat(i % 50), metadata: { i } })))
      const stats = docs.stats()
      expect(sum(stats.index), index).toBe(stats.indexBytes)
      expect(stats.index.vectors, index).toBeGreaterThanOrEqual(1000 * DIM * 4)
      expect(stats.index.codes, index).toBeGreaterThanOrEqual(1000 * DIM)
      expect(stats.index.graph > 0, index).toBe(index === 'hnsw')
      expect(stats.memoryBytes).toBe(stats.indexBytes + stats.idBytes + stats.textBytes + stats.metadataBytes + stats.columnBytes)
    }
  })
})
