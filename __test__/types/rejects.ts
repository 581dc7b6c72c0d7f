// What vecdex's types must refuse: each line below is a mistake a user can make, and tsc must
// report the error named after `@ts-expect-error` on it (scripts/package-test/types.mjs compiles
// this file once as is, where an expected error that does not occur fails the build, and once
// without the directives, checking each line's error code). Never run.
import { FlatIndex, HnswIndex, MultiVectorIndex } from 'vecdex'

declare const hnsw: HnswIndex
declare const flat: FlatIndex
declare const multi: MultiVectorIndex
const query = new Float32Array(4)

// @ts-expect-error TS2353 an unknown search option (ef is spelt efSearch)
void hnsw.search(query, { k: 1, ef: 5 })
// @ts-expect-error TS2353 the same on the blocking path
hnsw.searchSync(query, { k: 1, ef: 5 })
// @ts-expect-error TS2561 US spelling of tokenNeighbours
void multi.search([query], { k: 1, tokenNeighbors: 8 })
// @ts-expect-error TS2353 a graph option on an exact index
void flat.search(query, { k: 1, efSearch: 10 })
// @ts-expect-error TS2561 a misspelt index option (efConstruction)
new HnswIndex({ dimensions: 4, efconstruction: 100 })
// @ts-expect-error TS2322 k is a number
void flat.search(query, { k: '10' })
// @ts-expect-error TS2345 k is required
void flat.search(query, {})
// @ts-expect-error TS2345 dimensions is required
new HnswIndex({ metric: 'cosine' })
// @ts-expect-error TS2322 dimensions is a number
new FlatIndex({ dimensions: '4' })
// @ts-expect-error TS2322 an index metric is 'cosine', 'dot' or 'l2sq'
new HnswIndex({ dimensions: 4, metric: 'euclidean' })
// @ts-expect-error TS2322 a multi-vector index has no l2sq
new MultiVectorIndex({ dimensions: 4, metric: 'l2sq' })
// @ts-expect-error TS2322 quantization names a codec
new FlatIndex({ dimensions: 4, quantization: 'sq16' })
// @ts-expect-error TS2769 a key is a number or a bigint, never a string (no overload of add takes it)
void hnsw.add('a', query)
// @ts-expect-error TS2769 nor are keys of a batch
hnsw.addSync(['a', 'b'], [query, query])
// @ts-expect-error TS2353 a blocking search takes no AbortSignal
hnsw.searchSync(query, { k: 1, signal: AbortSignal.timeout(10) })
// @ts-expect-error TS2540 size is read-only
hnsw.size = 3
// @ts-expect-error TS2322 a batch of rows goes to searchBatch, never to search
void hnsw.search([query, query], { k: 1 })
// @ts-expect-error TS2322 the same on the blocking path
flat.searchSync([query, query], { k: 1 })
