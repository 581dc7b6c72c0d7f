// The README's compression memory table: code bytes and whole-index bytes per vector of every
// codec, FlatIndex and HnswIndex, on the 100,000-word GloVe base (d = 100, cosine).
//
//   node --expose-gc docs/measurements/memory-table.mjs
//
// memoryBytes and compressionStats() are counts, the same on any machine; the RSS delta of the
// FlatIndex build is printed beside them as a cross-check (it also holds transient buffers).
import { FlatIndex, HnswIndex } from 'vecdex'
import { loadDataset } from '../../benchmark/datasets.mjs'

const { n, dim, base } = loadDataset('glove-100k', { queries: 10 })
const keys = Uint32Array.from({ length: n }, (_, i) => i)
const codecs = [['f32', 'none'], ['f16', 'f16'], ['bf16', 'bf16'], ['sq8', 'sq8'], ['sq4', 'sq4'], ['binary', 'binary'], ['pq', { type: 'pq', subspaces: 25 }]]
const rss = () => {
  globalThis.gc?.()
  return process.memoryUsage().rss
}
for (const [name, quantization] of codecs) {
  const before = rss()
  const flat = new FlatIndex({ dimensions: dim, metric: 'cosine', quantization })
  await flat.add(keys, base)
  const after = rss()
  const stats = flat.compressionStats()
  // The graph's memory does not depend on efConstruction (its lists are reserved at 2m / m).
  const hnsw = new HnswIndex({ dimensions: dim, metric: 'cosine', quantization, m: 16, efConstruction: 16 })
  await hnsw.add(keys, base)
  console.log(JSON.stringify({
    codec: name,
    codeBytesPerVector: stats.codeBytes / n,
    flatBytesPerVector: flat.memoryBytes / n,
    hnswBytesPerVector: hnsw.memoryBytes / n,
    flatRssDeltaPerVector: (after - before) / n,
  }))
  flat.close()
  hnsw.close()
}
