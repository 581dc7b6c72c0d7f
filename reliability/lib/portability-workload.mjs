/**
 * Child process of the portability part: a deterministic workload, run once per SIMD level
 * (the parent sets VECDEX_SIMD and VECDEX_THREADS=1, which vecdex reads once per process).
 * Prints one JSON line: the kernel level in use, and for each index kind and metric the keys and
 * distances of a fixed query batch (FlatIndex and HnswIndex under cosine, dot and l2sq, the
 * multi-vector index's exact and FDE searches, the FDE encodings), each also searched again
 * after a save/load round trip through a file, which must give identical results.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { clusteredMatrix, seqKeys, tempDir, vecdex } from './common.mjs'

const { FlatIndex, HnswIndex, MultiVectorIndex, FdeEncoder, capabilities } = vecdex
const DIM = 67 // odd: exercises the kernels' tail loops
const ROWS = 3000
const QUERIES = 200
const K = 10
const data = clusteredMatrix(ROWS, DIM, 32, 61)
const queries = clusteredMatrix(QUERIES, DIM, 32, 61, 62)
const documents = Array.from({ length: 300 }, (_, i) => data.subarray(i * 10 * DIM, (i * 10 + 2 + (i % 8)) * DIM))
const queryClouds = Array.from({ length: 20 }, (_, i) => queries.subarray(i * 4 * DIM, (i * 4 + 4) * DIM))

const plain = (results) => ({ keys: Array.from(results.keys, String), distances: Array.from(results.distances) })
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

const dir = tempDir('portability')
const out = { kernel: capabilities().scanKernel, threads: capabilities().threads, results: {}, roundTripsDiffering: [] }
try {
  const builds = []
  for (const metric of ['cosine', 'dot', 'l2sq']) {
    builds.push([`flat/${metric}`, FlatIndex, new FlatIndex({ dimensions: DIM, metric }), (i) => i.searchBatch(queries, { k: K })])
    builds.push([`hnsw/${metric}`, HnswIndex, new HnswIndex({ dimensions: DIM, metric, m: 12, efConstruction: 100, seed: 5 }), (i) => i.searchBatch(queries, { k: K, efSearch: 64 })])
  }
  for (const [name, Class, index, search] of builds) {
    await index.add(seqKeys(ROWS), data)
    const before = plain(await search(index))
    const file = join(dir, `${name.replace('/', '-')}.idx`)
    await index.save(file)
    const loaded = await Class.load(file)
    if (!same(before, plain(await search(loaded))) || !loaded.toBufferSync().equals(index.toBufferSync())) out.roundTripsDiffering.push(name)
    out.results[name] = before
    for (const i of [index, loaded]) i.close()
  }
  const multi = new MultiVectorIndex({ dimensions: DIM, seed: 5 })
  await multi.add(seqKeys(documents.length), documents)
  out.results['multi/exact'] = plain(await multi.searchExactBatch({ tokens: concat(queryClouds), offsets: offsets(queryClouds) }, { k: K }))
  out.results['multi/search'] = plain(await multi.searchBatch({ tokens: concat(queryClouds), offsets: offsets(queryClouds) }, { k: K }))
  const file = join(dir, 'multi.idx')
  await multi.save(file)
  const loaded = await MultiVectorIndex.load(file)
  if (!same(out.results['multi/search'], plain(await loaded.searchBatch({ tokens: concat(queryClouds), offsets: offsets(queryClouds) }, { k: K })))) out.roundTripsDiffering.push('multi')
  for (const i of [multi, loaded]) i.close()
  const fde = new FdeEncoder({ dimensions: DIM, seed: 5 })
  out.results['fde/encodings'] = { keys: [], distances: Array.from(await fde.encodeDocuments(documents.slice(0, 20))) }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
process.stdout.write(`${JSON.stringify(out)}\n`)

function concat(clouds) {
  const tokens = new Float32Array(clouds.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const c of clouds) {
    tokens.set(c, at)
    at += c.length
  }
  return tokens
}

function offsets(clouds) {
  const o = new Uint32Array(clouds.length + 1)
  clouds.forEach((c, i) => (o[i + 1] = o[i] + c.length / DIM))
  return o
}
