/**
 * Part 1, bad input: every public method of FlatIndex, HnswIndex, MultiVectorIndex, FdeEncoder
 * and the loaders, fed wrong types, wrong shapes, NaN/Infinity, empty input, huge k, bad keys
 * (negative, above 2^64 − 1, fractional), closed indexes, writes to read-only views, files of
 * the wrong index kind, truncated, oversized and non-Uint8Array buffers, bad paths and folders
 * as paths.
 *
 * Proves: each case ends with its EXPECTED VecdexError code (asserted per case), synchronous
 * methods throw and Promise-returning methods reject (never throw), a failed call leaves the
 * index unchanged (same size), and nothing crashes. Every public method (found by reflection on
 * the built classes) has at least one case.
 *
 * Targets: ≥ 40 distinct cases, 0 unexpected outcomes, 0 public methods without a case.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ASYNC_METHODS, createResult, mulberry32, outcomeOf, publicMembers, tempDir, vecdex } from './lib/common.mjs'
import { parseLayout, resealHeader, KIND_BYTE } from './lib/format.mjs'

export const title = 'bad input'

const { FlatIndex, HnswIndex, MultiVectorIndex, FdeEncoder, KeyFilter, chamfer, inspectIndexFile, inspectIndexFileSync } = vecdex

const INVALID = 'ERR_INVALID_ARGUMENT'
const DIMS = 'ERR_DIMENSION_MISMATCH'
const ZERO = 'ERR_ZERO_VECTOR'
const CLOSED = 'ERR_CLOSED'
const CORRUPT = 'ERR_CORRUPT_FILE'
const UNSUPPORTED = 'ERR_UNSUPPORTED_FORMAT'
const IO = 'ERR_IO'
const READ_ONLY = 'ERR_READ_ONLY'

const D = 4
const V = [1, 2, 3, 4]
const doc = (seed) => [[1, seed, 0, 0], [0, 1, seed, 1]]

/** Valid files and buffers the loader cases start from, made once. */
function makeFiles(dir) {
  const hnsw = new HnswIndex({ dimensions: D })
  hnsw.addSync([1, 2, 3], [V, [4, 3, 2, 1], [1, 0, 0, 1]])
  const flat = new FlatIndex({ dimensions: D })
  flat.addSync([1, 2], [V, [4, 3, 2, 1]])
  const multi = new MultiVectorIndex({ dimensions: D })
  multi.addSync([1, 2], [doc(1), doc(2)])
  const files = {
    dir,
    hnswBuf: hnsw.toBufferSync(),
    flatBuf: flat.toBufferSync(),
    multiBuf: multi.toBufferSync(),
    hnswFile: join(dir, 'hnsw.idx'),
    flatFile: join(dir, 'flat.idx'),
    emptyFile: join(dir, 'empty.idx'),
    truncatedFile: join(dir, 'truncated.idx'),
    missing: join(dir, 'no-such-file.idx'),
    missingFolder: join(dir, 'no-such-folder', 'x.idx'),
    folder: join(dir, 'a-folder'),
  }
  hnsw.saveSync(files.hnswFile)
  flat.saveSync(files.flatFile)
  writeFileSync(files.emptyFile, Buffer.alloc(0))
  writeFileSync(files.truncatedFile, files.hnswBuf.subarray(0, files.hnswBuf.length >> 1))
  mkdirSync(files.folder)
  hnsw.close()
  flat.close()
  multi.close()
  // The same HNSW image, claiming a newer format version / the multi-vector kind, re-sealed so
  // only that field is wrong.
  const layout = parseLayout(files.hnswBuf)
  files.newerVersion = Buffer.from(files.hnswBuf)
  files.newerVersion.writeUInt32LE(layout.version + 1, 8)
  resealHeader(files.newerVersion, layout)
  files.multiKind = Buffer.from(files.hnswBuf)
  files.multiKind[KIND_BYTE] = 3
  resealHeader(files.multiKind, layout)
  const next = mulberry32(7)
  files.garbage = Buffer.from(Uint8Array.from({ length: 4096 }, () => Math.floor(next() * 256)))
  return files
}

/** Fresh indexes for one case: live ones (their sizes are checked after the call) and closed ones. */
function makeFixtures(files) {
  const flat = new FlatIndex({ dimensions: D })
  flat.addSync([1, 2], [V, [4, 3, 2, 1]])
  const hnsw = new HnswIndex({ dimensions: D })
  hnsw.addSync([1, 2, 3], [V, [4, 3, 2, 1], [1, 0, 0, 1]])
  const multi = new MultiVectorIndex({ dimensions: D })
  multi.addSync([1, 2], [doc(1), doc(2)])
  const sq8 = new FlatIndex({ dimensions: D, quantization: 'sq8' })
  sq8.addSync([1, 2], [V, [4, 3, 2, 1]])
  const view = HnswIndex.viewSync(files.hnswFile)
  const closed = {
    flat: new FlatIndex({ dimensions: D }),
    hnsw: new HnswIndex({ dimensions: D }),
    multi: new MultiVectorIndex({ dimensions: D }),
  }
  for (const index of Object.values(closed)) index.close()
  return { ...files, flat, hnsw, multi, sq8, view, fde: new FdeEncoder({ dimensions: D }), closed, live: [flat, hnsw, multi, sq8, view] }
}

/** [method, what is wrong, call, expected code] */
const CASES = [
  // FlatIndex
  ['FlatIndex.new', 'dimensions 0', () => new FlatIndex({ dimensions: 0 }), INVALID],
  ['FlatIndex.new', 'dimensions as a string', () => new FlatIndex({ dimensions: '4' }), INVALID],
  ['FlatIndex.new', "metric 'hamming'", () => new FlatIndex({ dimensions: D, metric: 'hamming' }), INVALID],
  ['FlatIndex.new', 'options null', () => new FlatIndex(null), INVALID],
  ['FlatIndex.new', "unknown quantization 'zip'", () => new FlatIndex({ dimensions: D, quantization: 'zip' }), INVALID],
  ['FlatIndex.add', 'NaN in a vector', (f) => f.flat.add([3], [[NaN, 1, 1, 1]]), INVALID],
  ['FlatIndex.add', 'row of 3 values in a 4-d index', (f) => f.flat.add([3, 4], [V, [1, 2, 3]]), DIMS],
  ['FlatIndex.add', 'empty vectors', (f) => f.flat.add([], new Float32Array(0)), INVALID],
  ['FlatIndex.add', 'zero vector under cosine', (f) => f.flat.add([3], [[0, 0, 0, 0]]), ZERO],
  ['FlatIndex.add', 'more keys than vectors', (f) => f.flat.add([3, 4], [V]), DIMS],
  ['FlatIndex.add', 'one key, 8 values (two vectors)', (f) => f.flat.add([3], [...V, ...V]), DIMS],
  ['FlatIndex.add', 'signal already aborted', (f) => f.flat.add([3], [V], { signal: AbortSignal.abort() }), 'ERR_ABORTED'],
  ['FlatIndex.addSync', 'Infinity in a vector', (f) => f.flat.addSync([3], [[Infinity, 1, 1, 1]]), INVALID],
  ['FlatIndex.addSync', 'key 2^64 (above 2^64 − 1)', (f) => f.flat.addSync([2n ** 64n], [V]), INVALID],
  ['FlatIndex.addSync', 'negative key', (f) => f.flat.addSync([-1], [V]), INVALID],
  ['FlatIndex.addSync', 'fractional key', (f) => f.flat.addSync([1.5], [V]), INVALID],
  ['FlatIndex.addSync', 'vectors as a string', (f) => f.flat.addSync([3], 'abcd'), INVALID],
  ['FlatIndex.addSync', '7 values: not whole 4-d rows', (f) => f.flat.addSync([3], new Float32Array(7)), DIMS],
  ['FlatIndex.addStream', 'source not iterable', (f) => f.flat.addStream(42), INVALID],
  ['FlatIndex.search', 'k = 0', (f) => f.flat.search(V, { k: 0 }), INVALID],
  ['FlatIndex.search', 'k = 2^40 (beyond u32)', (f) => f.flat.search(V, { k: 2 ** 40 }), INVALID],
  ['FlatIndex.search', 'huge k = 2^32 − 1 returns what there is', (f) => f.flat.search(V, { k: 2 ** 32 - 1 }), 'OK'],
  ['FlatIndex.search', 'query of 3 dimensions', (f) => f.flat.search([1, 2, 3], { k: 1 }), DIMS],
  ['FlatIndex.search', 'query of 8 values (two rows) in a 4-d index', (f) => f.flat.search(new Float32Array(2 * D).fill(1), { k: 1 }), DIMS],
  ['FlatIndex.search', 'a batch of rows', (f) => f.flat.search([V, V], { k: 1 }), INVALID],
  ['FlatIndex.searchBatch', '7 values: not whole 4-d rows', (f) => f.flat.searchBatch(new Float32Array(7).fill(1), { k: 1 }), DIMS],
  ['FlatIndex.searchBatch', 'empty batch', (f) => f.flat.searchBatch([], { k: 1 }), INVALID],
  ['FlatIndex.searchBatchSync', 'row of 3 values', (f) => f.flat.searchBatchSync([V, [1, 2, 3]], { k: 1 }), DIMS],
  ['FlatIndex.search', 'options missing', (f) => f.flat.search(V), INVALID],
  ['FlatIndex.search', 'negative key in filter', (f) => f.flat.search(V, { k: 1, filter: [-1] }), INVALID],
  ['FlatIndex.search', 'signal of the wrong type', (f) => f.flat.search(V, { k: 1, signal: {} }), INVALID],
  ['FlatIndex.search', 'signal already aborted', (f) => f.flat.search(V, { k: 1, signal: AbortSignal.abort() }), 'ERR_ABORTED'],
  ['FlatIndex.search', 'zero query under cosine', (f) => f.flat.search([0, 0, 0, 0], { k: 1 }), ZERO],
  ['FlatIndex.search', 'compressed index searched before training', (f) => f.sq8.search(V, { k: 1 }), 'ERR_NOT_TRAINED'],
  ['FlatIndex.searchSync', '-Infinity in a query', (f) => f.flat.searchSync([-Infinity, 1, 1, 1], { k: 1 }), INVALID],
  ['FlatIndex.searchSync', 'k NaN', (f) => f.flat.searchSync(V, { k: NaN }), INVALID],
  ['FlatIndex.searchSync', 'huge k = 2^32 − 1 returns what there is', (f) => f.flat.searchSync(V, { k: 2 ** 32 - 1 }), 'OK'],
  ['FlatIndex.searchSync', 'oversample 0.5', (f) => f.flat.searchSync(V, { k: 1, oversample: 0.5 }), INVALID],
  ['FlatIndex.searchStream', 'k = 0', (f) => f.flat.searchStream([V], { k: 0 }).next(), INVALID],
  ['FlatIndex.get', "key as a string '7'", (f) => f.flat.get('7'), INVALID],
  ['FlatIndex.get', 'key 2^64', (f) => f.flat.get(2n ** 64n), INVALID],
  ['FlatIndex.contains', 'negative bigint key', (f) => f.flat.contains(-5n), INVALID],
  ['FlatIndex.remove', 'negative key in an Int32Array', (f) => f.flat.remove(new Int32Array([-3])), INVALID],
  ['FlatIndex.removeSync', 'fractional key', (f) => f.flat.removeSync([0.5]), INVALID],
  ['FlatIndex.keys', 'closed index', (f) => f.closed.flat.keys(), CLOSED],
  ['FlatIndex.train', 'index without compression', (f) => f.flat.train([V]), INVALID],
  ['FlatIndex.trainSync', 'sample of 3-d vectors', (f) => f.sq8.trainSync([[1, 2, 3]]), DIMS],
  ['FlatIndex.compressionStats', 'closed index', (f) => f.closed.flat.compressionStats(), CLOSED],
  ['FlatIndex.stats', 'closed index', (f) => f.closed.flat.stats(), CLOSED],
  ['FlatIndex.save', 'a folder as the path', (f) => f.flat.save(f.folder), IO],
  ['FlatIndex.saveSync', 'path in a missing folder', (f) => f.flat.saveSync(f.missingFolder), IO],
  ['FlatIndex.saveSync', 'empty path', (f) => f.flat.saveSync(''), INVALID],
  ['FlatIndex.toBuffer', 'closed index', (f) => f.closed.flat.toBuffer(), CLOSED],
  ['FlatIndex.toBufferSync', 'closed index', (f) => f.closed.flat.toBufferSync(), CLOSED],
  ['FlatIndex.search', 'closed index', (f) => f.closed.flat.search(V, { k: 1 }), CLOSED],
  ['FlatIndex.loadSync', 'file of an HNSW index', (f) => FlatIndex.loadSync(f.hnswFile), INVALID],
  ['FlatIndex.loadSync', 'a folder as the path', (f) => FlatIndex.loadSync(f.folder), IO],
  ['FlatIndex.loadSync', 'empty file', (f) => FlatIndex.loadSync(f.emptyFile), CORRUPT],
  ['FlatIndex.load', 'missing file', (f) => FlatIndex.load(f.missing), IO],
  ['FlatIndex.fromBufferSync', 'buffer of an HNSW index', (f) => FlatIndex.fromBufferSync(f.hnswBuf), INVALID],
  ['FlatIndex.fromBufferSync', 'an ArrayBuffer, not a Uint8Array', (f) => FlatIndex.fromBufferSync(f.flatBuf.buffer.slice(0)), INVALID],
  ['FlatIndex.fromBufferSync', 'oversized: 64 bytes appended', (f) => FlatIndex.fromBufferSync(Buffer.concat([f.flatBuf, Buffer.alloc(64)])), CORRUPT],
  ['FlatIndex.fromBuffer', 'truncated by one byte', (f) => FlatIndex.fromBuffer(f.flatBuf.subarray(0, f.flatBuf.length - 1)), CORRUPT],
  // HnswIndex
  ['HnswIndex.new', 'm = 1', () => new HnswIndex({ dimensions: D, m: 1 }), INVALID],
  ['HnswIndex.new', 'efConstruction 0', () => new HnswIndex({ dimensions: D, efConstruction: 0 }), INVALID],
  ['HnswIndex.new', "insertionOrder 'sorted'", () => new HnswIndex({ dimensions: D, insertionOrder: 'sorted' }), INVALID],
  ['HnswIndex.new', 'dimensions 70,000', () => new HnswIndex({ dimensions: 70_000 }), INVALID],
  ['HnswIndex.new', 'negative seed', () => new HnswIndex({ dimensions: D, seed: -1 }), INVALID],
  ['HnswIndex.add', 'duplicate key in one batch', (f) => f.hnsw.add([5, 5], [V, [1, 1, 1, 2]]), INVALID],
  ['HnswIndex.addSync', 'NaN in a Float64Array row', (f) => f.hnsw.addSync([5], [Float64Array.of(1, NaN, 1, 1)]), INVALID],
  ['HnswIndex.addSync', 'vector of 5 values', (f) => f.hnsw.addSync([5], new Float32Array(5)), DIMS],
  ['HnswIndex.addSync', 'two keys, 12 values', (f) => f.hnsw.addSync([5, 6], new Float32Array(12).fill(1)), DIMS],
  ['HnswIndex.addStream', 'item of 3 dimensions', (f) => f.hnsw.addStream([{ key: 9, vector: [1, 2, 3] }]), DIMS],
  ['HnswIndex.search', 'efSearch 0', (f) => f.hnsw.search(V, { k: 1, efSearch: 0 }), INVALID],
  ['HnswIndex.search', 'k negative', (f) => f.hnsw.search(V, { k: -1 }), INVALID],
  ['HnswIndex.search', 'huge k = 2^32 − 1 returns what there is', (f) => f.hnsw.search(V, { k: 2 ** 32 - 1 }), 'OK'],
  ['HnswIndex.searchSync', 'efSearch 10^6', (f) => f.hnsw.searchSync(V, { k: 1, efSearch: 1e6 }), INVALID],
  ['HnswIndex.searchSync', 'query of strings', (f) => f.hnsw.searchSync(['1', '2', '3', '4'], { k: 1 }), INVALID],
  ['HnswIndex.searchSync', 'query of 8 values (two rows) in a 4-d index', (f) => f.hnsw.searchSync([...V, ...V], { k: 1 }), DIMS],
  ['HnswIndex.searchBatch', 'efSearch 0', (f) => f.hnsw.searchBatch([V, V], { k: 1, efSearch: 0 }), INVALID],
  ['HnswIndex.searchBatchSync', '9 values: not whole 4-d rows', (f) => f.hnsw.searchBatchSync(new Float32Array(9).fill(1), { k: 1 }), DIMS],
  ['HnswIndex.searchSync', 'huge k = 2^32 − 1 returns what there is', (f) => f.hnsw.searchSync(V, { k: 2 ** 32 - 1 }), 'OK'],
  ['HnswIndex.searchStream', 'closed index', (f) => f.closed.hnsw.searchStream([V], { k: 1 }).next(), CLOSED],
  ['HnswIndex.get', 'key NaN', (f) => f.hnsw.get(NaN), INVALID],
  ['HnswIndex.contains', 'number key 2^60 (not exact as a number)', (f) => f.hnsw.contains(2 ** 60), INVALID],
  ['HnswIndex.remove', 'negative bigint key', (f) => f.hnsw.remove([-1n]), INVALID],
  ['HnswIndex.removeSync', 'keys as a string', (f) => f.hnsw.removeSync('abc'), INVALID],
  ['HnswIndex.keys', 'closed index', (f) => f.closed.hnsw.keys(), CLOSED],
  ['HnswIndex.compact', 'closed index', (f) => f.closed.hnsw.compact(), CLOSED],
  ['HnswIndex.compactSync', 'closed index', (f) => f.closed.hnsw.compactSync(), CLOSED],
  ['HnswIndex.stats', 'closed index', (f) => f.closed.hnsw.stats(), CLOSED],
  ['HnswIndex.train', 'index without compression', (f) => f.hnsw.train([V]), INVALID],
  ['HnswIndex.trainSync', 'closed index', (f) => f.closed.hnsw.trainSync([V]), CLOSED],
  ['HnswIndex.compressionStats', 'closed index', (f) => f.closed.hnsw.compressionStats(), CLOSED],
  ['HnswIndex.save', 'closed index', (f) => f.closed.hnsw.save(join(f.dir, 'closed.idx')), CLOSED],
  ['HnswIndex.saveSync', 'path with a NUL byte', (f) => f.hnsw.saveSync(join(f.dir, 'a\0b')), INVALID],
  ['HnswIndex.saveSync', 'a folder as the path', (f) => f.hnsw.saveSync(f.folder), IO],
  ['HnswIndex.toBuffer', 'closed index', (f) => f.closed.hnsw.toBuffer(), CLOSED],
  ['HnswIndex.toBufferSync', 'closed index', (f) => f.closed.hnsw.toBufferSync(), CLOSED],
  ['HnswIndex.loadSync', 'file of a flat index', (f) => HnswIndex.loadSync(f.flatFile), INVALID],
  ['HnswIndex.loadSync', 'missing file', (f) => HnswIndex.loadSync(f.missing), IO],
  ['HnswIndex.loadSync', 'path as a number', () => HnswIndex.loadSync(42), INVALID],
  ['HnswIndex.loadSync', 'file truncated at half', (f) => HnswIndex.loadSync(f.truncatedFile), CORRUPT],
  ['HnswIndex.load', 'file of a flat index', (f) => HnswIndex.load(f.flatFile), INVALID],
  ['HnswIndex.load', 'a folder as the path', (f) => HnswIndex.load(f.folder), IO],
  ['HnswIndex.fromBufferSync', 'buffer of a flat index', (f) => HnswIndex.fromBufferSync(f.flatBuf), INVALID],
  ['HnswIndex.fromBufferSync', 'truncated to 100 bytes', (f) => HnswIndex.fromBufferSync(f.hnswBuf.subarray(0, 100)), CORRUPT],
  ['HnswIndex.fromBufferSync', 'oversized: 1 byte appended', (f) => HnswIndex.fromBufferSync(Buffer.concat([f.hnswBuf, Buffer.of(0)])), CORRUPT],
  ['HnswIndex.fromBufferSync', 'a string', () => HnswIndex.fromBufferSync('VECDEXIX'), INVALID],
  ['HnswIndex.fromBufferSync', 'null', () => HnswIndex.fromBufferSync(null), INVALID],
  ['HnswIndex.fromBufferSync', 'empty buffer', () => HnswIndex.fromBufferSync(Buffer.alloc(0)), CORRUPT],
  ['HnswIndex.fromBufferSync', '4 KiB of random bytes', (f) => HnswIndex.fromBufferSync(f.garbage), CORRUPT],
  ['HnswIndex.fromBufferSync', 'newer format version (re-sealed)', (f) => HnswIndex.fromBufferSync(f.newerVersion), UNSUPPORTED],
  ['HnswIndex.fromBuffer', 'a Float32Array, not a Uint8Array', () => HnswIndex.fromBuffer(new Float32Array(64)), INVALID],
  ['HnswIndex.fromBuffer', 'multi-vector kind (re-sealed)', (f) => HnswIndex.fromBuffer(f.multiKind), INVALID],
  ['HnswIndex.fromBuffer', 'buffer of a multi-vector index', (f) => HnswIndex.fromBuffer(f.multiBuf), INVALID],
  ['HnswIndex.viewSync', 'missing file', (f) => HnswIndex.viewSync(f.missing), IO],
  ['HnswIndex.viewSync', 'file of a flat index', (f) => HnswIndex.viewSync(f.flatFile), INVALID],
  ['HnswIndex.viewSync', 'empty path', () => HnswIndex.viewSync(''), INVALID],
  ['HnswIndex.view', 'file truncated at half', (f) => HnswIndex.view(f.truncatedFile), CORRUPT],
  ['HnswIndex.view', 'a folder as the path', (f) => HnswIndex.view(f.folder), IO],
  ['HnswIndex.addSync', 'read-only view', (f) => f.view.addSync([7], [V]), READ_ONLY],
  ['HnswIndex.add', 'read-only view', (f) => f.view.add([7], [V]), READ_ONLY],
  ['HnswIndex.remove', 'read-only view', (f) => f.view.remove([1]), READ_ONLY],
  ['HnswIndex.compactSync', 'read-only view', (f) => f.view.compactSync(), READ_ONLY],
  // MultiVectorIndex
  ['MultiVectorIndex.new', "metric 'l2sq'", () => new MultiVectorIndex({ dimensions: D, metric: 'l2sq' }), INVALID],
  ['MultiVectorIndex.new', 'numSimhashProjections 31', () => new MultiVectorIndex({ dimensions: D, fde: { numSimhashProjections: 31 } }), INVALID],
  ['MultiVectorIndex.new', 'candidates 0', () => new MultiVectorIndex({ dimensions: D, candidates: 0 }), INVALID],
  ['MultiVectorIndex.new', 'ballCarving NaN', () => new MultiVectorIndex({ dimensions: D, ballCarving: NaN }), INVALID],
  ['MultiVectorIndex.new', "strategy 'fast'", () => new MultiVectorIndex({ dimensions: D, strategy: 'fast' }), INVALID],
  ['MultiVectorIndex.add', 'token of 3 dimensions', (f) => f.multi.add([3], [[[1, 2, 3]]]), DIMS],
  ['MultiVectorIndex.add', 'two keys for one document', (f) => f.multi.add([3, 4], [doc(3)]), DIMS],
  ['MultiVectorIndex.add', 'one key (not an array) with a list of documents', (f) => f.multi.add(3, [doc(3)]), INVALID],
  ['MultiVectorIndex.addSync', 'offsets decreasing', (f) => f.multi.addSync([3, 4], { tokens: new Float32Array(2 * D).fill(1), offsets: [0, 2, 1] }), INVALID],
  ['MultiVectorIndex.addSync', 'offsets past the tokens', (f) => f.multi.addSync([3], { tokens: new Float32Array(2 * D).fill(1), offsets: [0, 5] }), INVALID],
  ['MultiVectorIndex.addSync', 'no documents', (f) => f.multi.addSync([], []), INVALID],
  ['MultiVectorIndex.addSync', 'NaN in a token', (f) => f.multi.addSync([3], [[[1, NaN, 1, 1]]]), INVALID],
  ['MultiVectorIndex.addStream', 'item without tokens', (f) => f.multi.addStream([{ key: 3 }]), INVALID],
  ['MultiVectorIndex.search', 'k = 0', (f) => f.multi.search([V], { k: 0 }), INVALID],
  ['MultiVectorIndex.search', 'query as a flat number array', (f) => f.multi.search(V, { k: 1 }), INVALID],
  ['MultiVectorIndex.search', 'zero query token under cosine', (f) => f.multi.search([[0, 0, 0, 0]], { k: 1 }), ZERO],
  ['MultiVectorIndex.search', 'a batch ({ tokens, offsets })', (f) => f.multi.search({ tokens: new Float32Array(2 * D).fill(1), offsets: [0, 1, 2] }, { k: 1 }), INVALID],
  ['MultiVectorIndex.searchBatch', 'one cloud, not an array of clouds', (f) => f.multi.searchBatch(doc(1), { k: 1 }), INVALID],
  ['MultiVectorIndex.searchBatchSync', 'no clouds', (f) => f.multi.searchBatchSync([], { k: 1 }), INVALID],
  ['MultiVectorIndex.searchSync', "strategy 'fast'", (f) => f.multi.searchSync([V], { k: 1, strategy: 'fast' }), INVALID],
  ['MultiVectorIndex.searchExact', 'negative key in filter', (f) => f.multi.searchExact([V], { k: 1, filter: [-1] }), INVALID],
  ['MultiVectorIndex.searchExactSync', 'query token of 5 dimensions', (f) => f.multi.searchExactSync([[1, 2, 3, 4, 5]], { k: 1 }), DIMS],
  ['MultiVectorIndex.searchExactBatch', 'k = 0', (f) => f.multi.searchExactBatch([[V], [V]], { k: 0 }), INVALID],
  ['MultiVectorIndex.searchExactBatchSync', 'token of 5 dimensions in the second cloud', (f) => f.multi.searchExactBatchSync([[V], [[1, 2, 3, 4, 5]]], { k: 1 }), DIMS],
  ['MultiVectorIndex.get', 'negative key', (f) => f.multi.get(-1), INVALID],
  ['MultiVectorIndex.contains', 'fractional key', (f) => f.multi.contains(1.5), INVALID],
  ['MultiVectorIndex.remove', 'closed index', (f) => f.closed.multi.remove([1]), CLOSED],
  ['MultiVectorIndex.removeSync', 'key 2^64', (f) => f.multi.removeSync([2n ** 64n]), INVALID],
  ['MultiVectorIndex.keys', 'closed index', (f) => f.closed.multi.keys(), CLOSED],
  ['MultiVectorIndex.stats', 'closed index', (f) => f.closed.multi.stats(), CLOSED],
  ['MultiVectorIndex.train', 'index without compression', (f) => f.multi.train([doc(1)]), INVALID],
  ['MultiVectorIndex.trainSync', 'sample token of 2 dimensions', (f) => f.multi.trainSync([[[1, 2]]]), DIMS],
  ['MultiVectorIndex.compactSync', 'closed index', (f) => f.closed.multi.compactSync(), CLOSED],
  ['MultiVectorIndex.compact', 'closed index', (f) => f.closed.multi.compact(), CLOSED],
  ['MultiVectorIndex.searchStream', 'unknown option tokenNeighbors', (f) => f.multi.searchStream([doc(1)], { k: 1, tokenNeighbors: 3 }).next(), INVALID],
  ['MultiVectorIndex.compressionStats', 'closed index', (f) => f.closed.multi.compressionStats(), CLOSED],
  ['MultiVectorIndex.save', 'a folder as the path', (f) => f.multi.save(f.folder), IO],
  ['MultiVectorIndex.saveSync', 'path in a missing folder', (f) => f.multi.saveSync(f.missingFolder), IO],
  ['MultiVectorIndex.toBuffer', 'closed index', (f) => f.closed.multi.toBuffer(), CLOSED],
  ['MultiVectorIndex.toBufferSync', 'closed index', (f) => f.closed.multi.toBufferSync(), CLOSED],
  ['MultiVectorIndex.loadSync', 'file of an HNSW index', (f) => MultiVectorIndex.loadSync(f.hnswFile), INVALID],
  ['MultiVectorIndex.load', 'missing file', (f) => MultiVectorIndex.load(f.missing), IO],
  ['MultiVectorIndex.fromBufferSync', 'buffer of a flat index', (f) => MultiVectorIndex.fromBufferSync(f.flatBuf), INVALID],
  ['MultiVectorIndex.fromBufferSync', 'a plain number array', () => MultiVectorIndex.fromBufferSync([86, 69, 67]), INVALID],
  ['MultiVectorIndex.fromBuffer', 'truncated by 8 bytes', (f) => MultiVectorIndex.fromBuffer(f.multiBuf.subarray(0, f.multiBuf.length - 8)), CORRUPT],
  // FdeEncoder, chamfer, KeyFilter
  ['FdeEncoder.new', 'dimensions 0', () => new FdeEncoder({ dimensions: 0 }), INVALID],
  ['FdeEncoder.new', 'numRepetitions 0', () => new FdeEncoder({ dimensions: D, numRepetitions: 0 }), INVALID],
  ['FdeEncoder.new', "projectionType 'gaussian'", () => new FdeEncoder({ dimensions: D, projectionType: 'gaussian' }), INVALID],
  ['FdeEncoder.new', "fillEmptyPartitions 'yes'", () => new FdeEncoder({ dimensions: D, fillEmptyPartitions: 'yes' }), INVALID],
  ['FdeEncoder.encodeQuery', 'token of 3 dimensions', (f) => f.fde.encodeQuery([[1, 2, 3]]), DIMS],
  ['FdeEncoder.encodeDocument', 'a flat number array', (f) => f.fde.encodeDocument(V), INVALID],
  ['FdeEncoder.encodeQueries', 'no clouds', (f) => f.fde.encodeQueries([]), INVALID],
  ['FdeEncoder.encodeDocuments', 'offsets past the tokens', (f) => f.fde.encodeDocuments({ tokens: new Float32Array(2 * D).fill(1), offsets: [0, 5] }), INVALID],
  ['FdeEncoder.encodeQueriesSync', 'tokens as a number array', (f) => f.fde.encodeQueriesSync({ tokens: [1, 2, 3, 4], offsets: [0, 1] }), INVALID],
  ['FdeEncoder.encodeDocumentsSync', 'Infinity in a token', (f) => f.fde.encodeDocumentsSync([[[1, Infinity, 1, 1]]]), INVALID],
  ['chamfer', 'dimension 0', () => chamfer([V], [V], 0), INVALID],
  ['KeyFilter.new', 'negative key', () => new KeyFilter([-1]), INVALID],
  ['inspectIndexFileSync', 'missing file', (f) => inspectIndexFileSync(f.missing), IO],
  ['inspectIndexFileSync', 'empty file', (f) => inspectIndexFileSync(f.emptyFile), CORRUPT],
  ['inspectIndexFileSync', 'path as a number', () => inspectIndexFileSync(42), INVALID],
  ['inspectIndexFile', 'a folder as the path', (f) => inspectIndexFile(f.folder), IO],
  ['inspectIndexFile', 'an index image whose header is cut', (f) => {
    writeFileSync(join(f.dir, 'cut-header.idx'), f.hnswBuf.subarray(0, 100))
    return inspectIndexFile(join(f.dir, 'cut-header.idx'))
  }, CORRUPT],
]

/** Public methods by reflection: `Class.method` (instance; close takes no input), `Class.static`
 * and `Class.new`. */
function publicMethods() {
  const names = new Set(['chamfer', 'KeyFilter.new', 'inspectIndexFile', 'inspectIndexFileSync'])
  for (const C of [FlatIndex, HnswIndex, MultiVectorIndex, FdeEncoder]) {
    names.add(`${C.name}.new`)
    for (const method of publicMembers(C).methods) if (method !== 'close') names.add(`${C.name}.${method}`)
    for (const key of Object.getOwnPropertyNames(C)) if (typeof C[key] === 'function') names.add(`${C.name}.${key}`)
  }
  return names
}

export async function run() {
  const r = createResult()
  const dir = tempDir('bad-input')
  const files = makeFiles(dir)
  const tally = {}
  const names = new Set()
  let unexpected = 0
  try {
    for (const [method, what, call, expected] of CASES) {
      const name = `${method}: ${what}`
      if (names.has(name)) throw new Error(`duplicate case ${name}`)
      names.add(name)
      const fx = makeFixtures(files)
      const before = fx.live.map((index) => index.size)
      const outcome = await outcomeOf(() => call(fx))
      const after = fx.live.map((index) => index.size)
      const asyncMethod = ASYNC_METHODS.has(method.split('.').at(-1))
      const problems = []
      if (outcome.code !== expected) problems.push(`got ${outcome.code}, expected ${expected}`)
      if (outcome.code !== 'OK' && asyncMethod && outcome.threw) problems.push('threw synchronously instead of rejecting')
      if (outcome.code !== 'OK' && !asyncMethod && outcome.rejected) problems.push('returned a rejected promise instead of throwing')
      if (expected !== 'OK' && before.some((size, i) => size !== after[i])) problems.push(`sizes changed ${before} → ${after}`)
      if (problems.length > 0) {
        unexpected++
        r.fail(`${name}: ${problems.join('; ')}`)
      }
      tally[outcome.code] = (tally[outcome.code] ?? 0) + 1
      for (const index of fx.live) index.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const covered = new Set(CASES.map(([method]) => method))
  const missing = [...publicMethods()].filter((m) => !covered.has(m))
  const cases = r.figure('cases', CASES.length)
  r.figure('methods', covered.size)
  r.figure('perCode', tally)
  r.figure('unexpected', unexpected)
  r.figure('methodsWithoutCase', missing)
  r.line(`${cases} cases over ${covered.size} public methods; outcomes per code:`)
  for (const [code, count] of Object.entries(tally).sort((a, b) => b[1] - a[1])) r.line(`  ${code.padEnd(24)} ${count}`)
  if (missing.length > 0) r.line(`public methods without a case: ${missing.join(', ')}`)
  r.check('distinct cases', cases, '>=', 40)
  r.check('unexpected outcomes (wrong code, throw/reject, state change, crash)', unexpected, '==', 0)
  r.check('public methods without a case', missing.length, '==', 0)
  return r.result
}
