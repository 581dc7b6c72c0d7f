/**
 * Part 6, panics: for every native entry point reachable from the public API — constructors,
 * methods sync and async, static loaders, the FDE encoder, chamfer — the test hook
 * `debugArmPanic(true)` (exported by the generated loader, index.js) makes the next guarded
 * native call panic inside the binding's guard; the call is then made with valid arguments.
 *
 * Proves: each panic reaches JS as VecdexError ERR_INTERNAL (a synchronous method throws, a
 * Promise-returning one rejects); the panic changed nothing (the index keeps its size) and the
 * same object still works afterwards (no poisoned lock); and at the end the process builds and
 * searches a new index normally.
 *
 * Targets: ≥ 25 entry points; 0 that do not surface ERR_INTERNAL correctly; 0 objects broken
 * by a panic; the final build and search work.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { ASYNC_METHODS, createResult, native, outcomeOf, randomMatrix, seqKeys, tempDir, vecdex } from './lib/common.mjs'

export const title = 'panics'

const { FlatIndex, HnswIndex, MultiVectorIndex, FdeEncoder, chamfer, inspectIndexFile, inspectIndexFileSync } = vecdex
const DIM = 8
const ROWS = 64
const DATA = randomMatrix(ROWS, DIM, 51)
const Q = DATA.subarray(0, DIM)
const DOCS = Array.from({ length: 8 }, (_, i) => DATA.subarray(i * 3 * DIM, (i * 3 + 3) * DIM))

/** Files and images the loader entry points read, made once. */
function makeFiles(dir) {
  const files = { dir, hnswFile: join(dir, 'hnsw.idx'), flatFile: join(dir, 'flat.idx'), multiFile: join(dir, 'multi.idx') }
  const made = makeIndexes(files)
  made.hnsw.saveSync(files.hnswFile)
  made.flat.saveSync(files.flatFile)
  made.multi.saveSync(files.multiFile)
  Object.assign(files, { hnswBuf: made.hnsw.toBufferSync(), flatBuf: made.flat.toBufferSync(), multiBuf: made.multi.toBufferSync() })
  for (const index of made.all) index.close()
  return files
}

/** Fresh objects for one entry point. */
function makeIndexes(files) {
  const flat = new FlatIndex({ dimensions: DIM, metric: 'l2sq' })
  flat.addSync(seqKeys(ROWS), DATA)
  const hnsw = new HnswIndex({ dimensions: DIM, metric: 'l2sq' })
  hnsw.addSync(seqKeys(ROWS), DATA)
  hnsw.removeSync([5]) // a tombstone, so compact has work
  const sq8 = new FlatIndex({ dimensions: DIM, metric: 'l2sq', quantization: 'sq8', trainingSize: 32 })
  sq8.addSync(seqKeys(ROWS), DATA)
  const multi = new MultiVectorIndex({ dimensions: DIM })
  multi.addSync(seqKeys(DOCS.length), DOCS)
  return { ...files, flat, hnsw, sq8, multi, fde: new FdeEncoder({ dimensions: DIM }), all: [flat, hnsw, sq8, multi] }
}

/** Proof that a vector index still answers correctly: row 0's self-query finds key 0. */
const vectorWorks = (index) => index.searchSync(Q, { k: 1 }).get(0).keys[0] === 0n
const multiWorks = (index) => index.searchExactSync(DOCS[0], { k: 1 }).get(0).keys[0] === 0n

/** [entry point, call with valid arguments, the object to check afterwards (or none)] */
const ENTRIES = [
  ['FlatIndex.new', () => new FlatIndex({ dimensions: DIM })],
  ['FlatIndex.add', (f) => f.flat.add([100], [Q]), 'flat'],
  ['FlatIndex.addSync', (f) => f.flat.addSync([100], [Q]), 'flat'],
  ['FlatIndex.addStream', (f) => f.flat.addStream([{ key: 100, vector: Q }]), 'flat'],
  ['FlatIndex.search', (f) => f.flat.search(Q, { k: 3 }), 'flat'],
  ['FlatIndex.searchSync', (f) => f.flat.searchSync(Q, { k: 3 }), 'flat'],
  ['FlatIndex.searchStream', (f) => f.flat.searchStream([Q], { k: 3 }).next(), 'flat'],
  ['FlatIndex.get', (f) => f.flat.get(1), 'flat'],
  ['FlatIndex.contains', (f) => f.flat.contains(1), 'flat'],
  ['FlatIndex.keys', (f) => f.flat.keys(), 'flat'],
  ['FlatIndex.remove', (f) => f.flat.remove([1]), 'flat'],
  ['FlatIndex.removeSync', (f) => f.flat.removeSync([1]), 'flat'],
  ['FlatIndex.train', (f) => f.sq8.train(DATA), 'sq8'],
  ['FlatIndex.trainSync', (f) => f.sq8.trainSync(DATA), 'sq8'],
  ['FlatIndex.compressionStats', (f) => f.sq8.compressionStats(), 'sq8'],
  ['FlatIndex.save', (f) => f.flat.save(join(f.dir, 'flat-save.idx')), 'flat'],
  ['FlatIndex.saveSync', (f) => f.flat.saveSync(join(f.dir, 'flat-save.idx')), 'flat'],
  ['FlatIndex.toBuffer', (f) => f.flat.toBuffer(), 'flat'],
  ['FlatIndex.toBufferSync', (f) => f.flat.toBufferSync(), 'flat'],
  ['FlatIndex.load', (f) => FlatIndex.load(f.flatFile)],
  ['FlatIndex.loadSync', (f) => FlatIndex.loadSync(f.flatFile)],
  ['FlatIndex.fromBuffer', (f) => FlatIndex.fromBuffer(f.flatBuf)],
  ['FlatIndex.fromBufferSync', (f) => FlatIndex.fromBufferSync(f.flatBuf)],
  ['HnswIndex.new', () => new HnswIndex({ dimensions: DIM })],
  ['HnswIndex.add', (f) => f.hnsw.add([100], [Q]), 'hnsw'],
  ['HnswIndex.addSync', (f) => f.hnsw.addSync([100], [Q]), 'hnsw'],
  ['HnswIndex.search', (f) => f.hnsw.search(Q, { k: 3 }), 'hnsw'],
  ['HnswIndex.searchSync', (f) => f.hnsw.searchSync(Q, { k: 3 }), 'hnsw'],
  ['HnswIndex.get', (f) => f.hnsw.get(1), 'hnsw'],
  ['HnswIndex.contains', (f) => f.hnsw.contains(1), 'hnsw'],
  ['HnswIndex.keys', (f) => f.hnsw.keys(), 'hnsw'],
  ['HnswIndex.remove', (f) => f.hnsw.remove([1]), 'hnsw'],
  ['HnswIndex.removeSync', (f) => f.hnsw.removeSync([1]), 'hnsw'],
  ['HnswIndex.compact', (f) => f.hnsw.compact(), 'hnsw'],
  ['HnswIndex.compactSync', (f) => f.hnsw.compactSync(), 'hnsw'],
  ['HnswIndex.stats', (f) => f.hnsw.stats(), 'hnsw'],
  ['HnswIndex.save', (f) => f.hnsw.save(join(f.dir, 'hnsw-save.idx')), 'hnsw'],
  ['HnswIndex.saveSync', (f) => f.hnsw.saveSync(join(f.dir, 'hnsw-save.idx')), 'hnsw'],
  ['HnswIndex.toBuffer', (f) => f.hnsw.toBuffer(), 'hnsw'],
  ['HnswIndex.toBufferSync', (f) => f.hnsw.toBufferSync(), 'hnsw'],
  ['HnswIndex.load', (f) => HnswIndex.load(f.hnswFile)],
  ['HnswIndex.loadSync', (f) => HnswIndex.loadSync(f.hnswFile)],
  ['HnswIndex.fromBuffer', (f) => HnswIndex.fromBuffer(f.hnswBuf)],
  ['HnswIndex.fromBufferSync', (f) => HnswIndex.fromBufferSync(f.hnswBuf)],
  ['HnswIndex.view', (f) => HnswIndex.view(f.hnswFile)],
  ['HnswIndex.viewSync', (f) => HnswIndex.viewSync(f.hnswFile)],
  ['MultiVectorIndex.new', () => new MultiVectorIndex({ dimensions: DIM })],
  ['MultiVectorIndex.add', (f) => f.multi.add([100], [DOCS[1]]), 'multi'],
  ['MultiVectorIndex.addSync', (f) => f.multi.addSync([100], [DOCS[1]]), 'multi'],
  ['MultiVectorIndex.search', (f) => f.multi.search(DOCS[0], { k: 3 }), 'multi'],
  ['MultiVectorIndex.searchSync', (f) => f.multi.searchSync(DOCS[0], { k: 3 }), 'multi'],
  ['MultiVectorIndex.searchExact', (f) => f.multi.searchExact(DOCS[0], { k: 3 }), 'multi'],
  ['MultiVectorIndex.searchExactSync', (f) => f.multi.searchExactSync(DOCS[0], { k: 3 }), 'multi'],
  ['MultiVectorIndex.get', (f) => f.multi.get(1), 'multi'],
  ['MultiVectorIndex.contains', (f) => f.multi.contains(1), 'multi'],
  ['MultiVectorIndex.keys', (f) => f.multi.keys(), 'multi'],
  ['MultiVectorIndex.remove', (f) => f.multi.remove([1]), 'multi'],
  ['MultiVectorIndex.removeSync', (f) => f.multi.removeSync([1]), 'multi'],
  ['MultiVectorIndex.stats', (f) => f.multi.stats(), 'multi'],
  ['MultiVectorIndex.compactSync', (f) => f.multi.compactSync(), 'multi'],
  ['MultiVectorIndex.compressionStats', (f) => f.multi.compressionStats(), 'multi'],
  ['MultiVectorIndex.save', (f) => f.multi.save(join(f.dir, 'multi-save.idx')), 'multi'],
  ['MultiVectorIndex.saveSync', (f) => f.multi.saveSync(join(f.dir, 'multi-save.idx')), 'multi'],
  ['MultiVectorIndex.toBuffer', (f) => f.multi.toBuffer(), 'multi'],
  ['MultiVectorIndex.toBufferSync', (f) => f.multi.toBufferSync(), 'multi'],
  ['MultiVectorIndex.load', (f) => MultiVectorIndex.load(f.multiFile)],
  ['MultiVectorIndex.loadSync', (f) => MultiVectorIndex.loadSync(f.multiFile)],
  ['MultiVectorIndex.fromBuffer', (f) => MultiVectorIndex.fromBuffer(f.multiBuf)],
  ['MultiVectorIndex.fromBufferSync', (f) => MultiVectorIndex.fromBufferSync(f.multiBuf)],
  ['FdeEncoder.new', () => new FdeEncoder({ dimensions: DIM })],
  ['FdeEncoder.encodeQuery', (f) => f.fde.encodeQuery(DOCS[0]), 'fde'],
  ['FdeEncoder.encodeDocument', (f) => f.fde.encodeDocument(DOCS[0]), 'fde'],
  ['FdeEncoder.encodeQueries', (f) => f.fde.encodeQueries(DOCS), 'fde'],
  ['FdeEncoder.encodeDocuments', (f) => f.fde.encodeDocuments(DOCS), 'fde'],
  ['FdeEncoder.encodeQueriesSync', (f) => f.fde.encodeQueriesSync(DOCS), 'fde'],
  ['FdeEncoder.encodeDocumentsSync', (f) => f.fde.encodeDocumentsSync(DOCS), 'fde'],
  ['chamfer', () => chamfer(DOCS[0], DOCS[1], DIM)],
  ['inspectIndexFile', (f) => inspectIndexFile(f.multiFile)],
  ['inspectIndexFileSync', (f) => inspectIndexFileSync(f.multiFile)],
]

/** Whether the object `which` of fixtures `f` still works, and its size if it has one. */
function state(f, which) {
  if (which === 'fde') return { works: f.fde.encodeQuery(DOCS[0]).length === f.fde.outputDimension, size: 0 }
  const index = f[which]
  return { works: which === 'multi' ? multiWorks(index) : vectorWorks(index), size: index.size }
}

export async function run() {
  const r = createResult()
  const dir = tempDir('panics')
  let wrong = 0
  let broken = 0
  try {
    const files = makeFiles(dir)
    for (const [name, call, which] of ENTRIES) {
      const f = makeIndexes(files)
      const before = which ? state(f, which) : null
      native.debugArmPanic(true)
      const outcome = await outcomeOf(() => call(f))
      native.debugArmPanic(false) // in case the call never reached a guard
      const asyncMethod = ASYNC_METHODS.has(name.split('.').at(-1))
      const shape = asyncMethod ? outcome.rejected : outcome.threw
      if (outcome.code !== 'ERR_INTERNAL' || !shape) {
        wrong++
        r.fail(`${name}: ${outcome.code === 'OK' ? 'no panic reached the guard' : outcome.code}${outcome.code === 'ERR_INTERNAL' && !shape ? (asyncMethod ? ' thrown instead of rejected' : ' rejected instead of thrown') : ''}`)
      }
      if (which) {
        let after
        try {
          after = state(f, which)
        } catch (error) {
          after = { works: false, size: `${error.code ?? error.message}` }
        }
        if (!after.works || after.size !== before.size) {
          broken++
          r.fail(`${name}: after the panic the ${which} object ${after.works ? `changed size ${before.size} → ${after.size}` : `no longer works (${after.size})`}`)
        }
      }
      for (const index of f.all) index.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  // The process lives on: a new build and search work.
  const n = 2000
  const data = randomMatrix(n, 32, 52)
  const index = new HnswIndex({ dimensions: 32, metric: 'l2sq' })
  await index.add(seqKeys(n), data)
  const hits = await index.searchBatch(data.subarray(0, 100 * 32), { k: 1 })
  let self = 0
  for (let q = 0; q < 100; q++) if (hits.get(q).keys[0] === BigInt(q)) self++
  index.close()

  const classes = new Set(ENTRIES.map(([name]) => name.split('.')[0]))
  r.figure('entryPoints', ENTRIES.length)
  r.figure('wrongOutcomes', wrong)
  r.figure('brokenObjects', broken)
  r.figure('finalSelfQueryHits', self)
  r.line(`${ENTRIES.length} entry points armed and called (${[...classes].join(', ')}); ${ENTRIES.length - wrong} surfaced ERR_INTERNAL as they should`)
  r.line(`objects still working with their size after their panic: ${ENTRIES.filter((e) => e[2]).length - broken}/${ENTRIES.filter((e) => e[2]).length}; final build + search: ${self}/100 self-queries found`)
  r.check('entry points', ENTRIES.length, '>=', 25)
  r.check('entry points without a correct ERR_INTERNAL (sync throw, async reject)', wrong, '==', 0)
  r.check('objects broken or changed by a panic', broken, '==', 0)
  r.check('final build + search self-queries found (of 100)', self, '>=', 99)
  return r.result
}
