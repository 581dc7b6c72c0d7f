// What a TypeScript user writes with vecdex: every line must type-check in a strict consumer
// project (strict, skipLibCheck false), against the packed tarball, as an ES module and as
// CommonJS. Checked by scripts/package-test/types.mjs (npm run test:package); never run.
import {
  FlatIndex,
  HnswIndex,
  KeyFilter,
  MultiVectorIndex,
  SearchResults,
  VecdexError,
  capabilities,
  chamfer,
  distance,
  distanceMatrix,
  distanceMatrixSync,
  inspectIndexFile,
  inspectIndexFileSync,
  type Capabilities,
  type CompressionOptions,
  type ErrorCode,
  type FlatIndexOptions,
  type HnswIndexOptions,
  type HnswSearchOptions,
  type HnswStats,
  type IndexFileInfo,
  type Key,
  type KeysInput,
  type Metric,
  type MultiVectorIndexOptions,
  type MultiVectorSearchOptions,
  type MultiVectorStats,
  type PointCloud,
  type QueryResult,
  type SearchOptions,
  type StreamItem,
  type VectorsInput,
} from 'vecdex'

export async function hnswIndex(file: string): Promise<number> {
  const options: HnswIndexOptions = { dimensions: 4, metric: 'cosine', m: 16, efConstruction: 128, efSearch: 64, seed: 7 }
  using index = new HnswIndex(options)
  const keys: KeysInput = new BigUint64Array([1n, 2n])
  const vectors: VectorsInput = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
  ]
  await index.add(keys, vectors, { signal: AbortSignal.timeout(1000) })
  index.addSync(3, new Float32Array(4).fill(0.5))
  const key: Key = 4n
  index.addSync(key, [0, 0, 1, 0])

  const search: HnswSearchOptions = { k: 2, efSearch: 32, filter: [1, 2] }
  const results: SearchResults = await index.search(new Float32Array([1, 0, 0, 0]), search)
  const hit: QueryResult = results.get(0)
  const found: BigUint64Array = hit.keys
  const distances: Float32Array = hit.distances
  const numbers: number[] = hit.numberKeys()
  for (const row of index.searchSync([1, 0, 0, 0], { k: 1, filter: new KeyFilter([1, 2]) })) row.keys.at(0)
  for await (const batch of index.searchStream([[1, 0, 0, 0]], { k: 1, batchSize: 16 })) batch.length
  const streamed: StreamItem[] = [{ key: 5, vector: [0, 0, 0, 1] }, [0.5, 0.5, 0, 0]]
  await index.addStream(streamed, { batchSize: 2, startKey: 10 })

  const stats: HnswStats = index.stats()
  const removed: number = await index.remove([1])
  index.contains(2) && index.get(2)?.length
  await index.compact()
  await index.save(file)
  const loaded: HnswIndex = await HnswIndex.load(file)
  const viewed: HnswIndex = HnswIndex.viewSync(file)
  const copy: HnswIndex = await HnswIndex.fromBuffer(await index.toBuffer())
  loaded.close()
  viewed[Symbol.dispose]()
  copy.close()
  return found.length + distances.length + numbers.length + stats.memoryBytes + removed + index.size + index.m
}

export async function flatIndex(): Promise<number> {
  const compression: CompressionOptions = { quantization: { type: 'sq8', symmetric: false }, oversample: 4 }
  const options: FlatIndexOptions = { dimensions: 8, metric: 'l2sq', ...compression }
  const index = new FlatIndex(options)
  await index.add([1, 2, 3], new Float32Array(24))
  await index.train(new Float32Array(24))
  const search: SearchOptions = { k: 3, rescore: false, oversample: 2 }
  const results = index.searchSync(new Float32Array(8), search)
  const pq = new FlatIndex({ dimensions: 8, quantization: 'pq', trainingSize: 1000 })
  pq.close()
  index.close()
  index.compressionStats()
  return results.k + results.counts.length
}

export async function multiVector(): Promise<number> {
  const options: MultiVectorIndexOptions = { dimensions: 4, metric: 'dot', candidates: 50, strategy: 'walk', fdeMetric: 'cosine' }
  using index = new MultiVectorIndex(options)
  const document: PointCloud = [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
  ]
  await index.add([1], [document])
  const search: MultiVectorSearchOptions = { k: 1, strategy: 'tokens', tokenNeighbours: 8 }
  const results = await index.search([[1, 0, 0, 0]], search)
  const exact = index.searchExactSync([[1, 0, 0, 0]], { k: 1 })
  const stats: MultiVectorStats = index.stats()
  return results.length + exact.length + stats.fdeDimension + chamfer([[1, 0, 0, 0]], document, 4)
}

export async function functions(file: string): Promise<number> {
  const metric: Metric = 'cosine'
  const d: number = distance([1, 0], new Float32Array([0, 1]), metric)
  const matrix: Float32Array = await distanceMatrix([[1, 0]], [[0, 1]], { dimensions: 2, metric: 'dot' })
  const sync: Float32Array = distanceMatrixSync(new Float32Array(2), new Float32Array(4), { dimensions: 2, metric: 'l2sq' })
  const caps: Capabilities = capabilities()
  const info: IndexFileInfo = await inspectIndexFile(file)
  inspectIndexFileSync(file)
  return d + matrix.length + sync.length + caps.threads + JSON.stringify(info).length
}

export function errors(index: FlatIndex): ErrorCode | undefined {
  try {
    index.searchSync([1, 2, 3], { k: 1 })
  } catch (error) {
    if (error instanceof VecdexError) {
      const code: ErrorCode = error.code
      if (code === 'ERR_DIMENSION_MISMATCH' || code === 'ERR_CLOSED') return code
    }
  }
  return undefined
}
