/**
 * Part 2, crash safety of `save`: a child process loads A and B and saves B, A, B, … over a file
 * that holds A, printing "save i" as it starts save number i; the parent SIGKILLs it at a random
 * moment inside one of its first saves: after the line of save s (s uniform in 0–2) plus a delay
 * uniform over one save's duration, so kills land in every phase of a save (opening the
 * temporary file, writing, fsync, rename, folder fsync) and sometimes just after one. Then it
 * loads the file. Half the runs use saveSync, half `await save`. Two checks:
 * - an index: A and B are HNSW indexes of 20,000 × 64 (an 8 MB file), so a save takes tens of
 *   milliseconds;
 * - a collection (issue 19): A and B are HNSW collections of 4,000 items × 384 with ids (strings
 *   and integers), texts and metadata (declared and undeclared fields), 7 to 10 MB files; B is A
 *   with items replaced (new vectors, texts and metadata), added, and deleted by id and by
 *   filter. A collection's save builds the file's image in memory before it creates the
 *   temporary file (about three quarters of its time, measured by polling the folder during a
 *   save): a quarter of the kills are timed uniformly over that build (from the "save i" line),
 *   the rest uniformly over the rest of the save (writing, fsync, rename), timed from the moment
 *   the temporary file shows in the folder (fs.watch): a window of a few milliseconds, which
 *   timing from the line alone hits too rarely on a loaded machine. The window's length starts
 *   from a measurement in this process and then follows where these kills land (shorter after
 *   one lands past the write, slowly longer after one inside it), because the parent's timing
 *   of a save under load can be far from the child's.
 *
 * Proves: after a kill at any moment the file loads and equals (bytes of toBufferSync, and the
 * file's own bytes) A or B, whole: saves are atomic. For the collection, every part of the loaded
 * one is compared on its own with A's and B's: its ids, its texts, its metadata, its vectors and
 * the count of a filter over declared and undeclared fields must all be A's or all B's, never a
 * mix. And that the kills landed mid-save, not before or between saves: a kill that finds the
 * save's temporary file in the folder came after the save created it and before it renamed it
 * over the target. Each such run checks that the temporary file holds a beginning of the bytes
 * of the save in progress (the last "save i" line) while the target still holds the previous
 * save's (a kill during a save leaves the old file), so the counted kills are known to have
 * interrupted a real write. Temporary files a killed save leaves in the folder are then removed.
 *
 * Targets, each check: ≥ 200 runs (index) and ≥ 60 runs (collection); 0 runs whose file fails to
 * load or equals neither A nor B (for the collection: in some part); most kills landed mid-save
 * (temporary file present, consistent with the save in progress): ≥ 50 % (index: about 70 % on
 * a 2-core machine, the rest early in a save, before its temporary file exists, or after its
 * rename; collection: about 70 % too, three quarters of its kills being timed from its
 * temporary file); 0 temporary files inconsistent with the save in progress.
 */
import { spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, watch } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { createResult, labelOf, mulberry32, progress, randomMatrix, scaled, seqKeys, SUITE_DIR, tempDir, vecdex } from './lib/common.mjs'

export const title = 'crash safety'

const { Collection, HnswIndex } = vecdex
const ROWS = 20_000
const DIM = 64
const TARGET = 'index.idx'

const COLLECTION_ITEMS = 4_000
const COLLECTION_DIM = 384
const COLLECTION_TARGET = 'collection.vdx'
const COLLECTION_FIELDS = { lang: 'string', year: 'number', tags: 'string[]', 'source.kind': 'string' }
/** The filtered count compared between states: declared fields, an undeclared nested one, $or. */
const COLLECTION_FILTER = { lang: { $in: ['fr', 'de'] }, $or: [{ year: { $gte: 2005 } }, { 'source.page': { $lt: 40 } }, { tags: { $contains: 'x' } }] }
const COLLECTION_PARTS = ['ids', 'texts', 'metadata', 'vectors', 'filtered count']

/** Median duration of five calls of `work`. */
function medianMs(work) {
  const times = []
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    work()
    times.push(performance.now() - started)
  }
  return times.sort((x, y) => x - y)[2]
}

/** Median duration of a save of `source` (it sets the span of kill delays). */
const medianSaveMs = (source, file) => medianMs(() => source.saveSync(file))

/**
 * The two phases of a save of `source`, medians of five: the share of it that comes before the
 * creation of its temporary file (building the file's image in memory), and the milliseconds
 * from that file showing to the saved file showing (writing, fsync, rename). The main thread
 * polls the folder while the async save runs on the pool. The share holds whatever the
 * machine's load; the write window is measured rather than derived from the whole save's time
 * (which, under load, overstated it: kills timed from the temporary file then landed after the
 * rename too often).
 */
async function savePhases(source, dir) {
  const folder = join(dir, 'probe')
  mkdirSync(folder)
  const file = join(folder, 'probe.vdx')
  const shares = []
  const writes = []
  for (let i = 0; i < 5; i++) {
    rmSync(file, { force: true })
    const started = performance.now()
    const saving = source.save(file)
    let temporaryAt
    // Polls until the saved file shows (or a failed save's time is up).
    while (performance.now() - started < 10_000) {
      const names = readdirSync(folder)
      if (names.includes('probe.vdx')) {
        const savedAt = performance.now() - started
        if (temporaryAt !== undefined) {
          shares.push(temporaryAt / savedAt)
          writes.push(savedAt - temporaryAt)
        }
        break
      }
      if (temporaryAt === undefined && names.length > 0) temporaryAt = performance.now() - started
    }
    await saving
  }
  rmSync(folder, { recursive: true, force: true })
  if (shares.length === 0) throw new Error('no poll saw the temporary file of a save')
  const median = (values) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)]
  return { shareBefore: median(shares), writeMs: median(writes) }
}

/** Indexes A and B, saved under `dir`; B is A with 1,000 vectors added and 500 removed. */
function makeSources(dir) {
  const a = new HnswIndex({ dimensions: DIM, metric: 'l2sq', m: 16, efConstruction: 64, seed: 1 })
  a.addSync(seqKeys(ROWS), randomMatrix(ROWS, DIM, 21))
  const aBytes = a.toBufferSync()
  const b = HnswIndex.fromBufferSync(aBytes)
  b.addSync(seqKeys(1000, ROWS), randomMatrix(1000, DIM, 22))
  b.removeSync(seqKeys(500, 5000))
  const sources = { aFile: join(dir, 'A.idx'), bFile: join(dir, 'B.idx'), aBytes, bBytes: b.toBufferSync() }
  a.saveSync(sources.aFile)
  b.saveSync(sources.bFile)
  sources.saveMs = medianSaveMs(b, join(dir, 'timing.idx'))
  a.close()
  b.close()
  return sources
}

const LANGS = ['en', 'fr', 'de', 'ja']
const TAGS = ['x', 'y', 'z', 'w']

/** The id of item `i`: an integer, or a string. */
const collectionId = (i) => (i % 3 === 0 ? i : i % 3 === 1 ? `doc-${i}` : `${(i * 2654435761) >>> 0}-${i}`)

/** Item `i` of a collection state: `version` ('A' or 'B') shows in its text and metadata. */
function collectionItem(i, version, vectors, row, next) {
  const id = collectionId(i)
  const metadata = {
    lang: LANGS[Math.floor(next() * LANGS.length)],
    year: 1990 + Math.floor(next() * 35),
    tags: TAGS.filter(() => next() < 0.3),
    source: { kind: next() < 0.5 ? 'web' : 'book', page: Math.floor(next() * 100) },
    version,
  }
  if (next() < 0.1) delete metadata.lang
  const item = { id, vector: vectors.subarray(row * COLLECTION_DIM, (row + 1) * COLLECTION_DIM), metadata }
  if (next() < 0.9) item.text = `${version}: text of item ${i}, ${'lorem ipsum '.repeat(1 + (i % 5))}`
  return item
}

/** A collection's parts, each in one comparable value (items in the order of their ids). */
function collectionParts(collection) {
  const keyOf = (id) => `${typeof id}:${id}`
  const ids = collection.ids().sort((x, y) => (keyOf(x) < keyOf(y) ? -1 : keyOf(x) > keyOf(y) ? 1 : 0))
  const records = collection.getSync(ids)
  const vectors = new Float32Array(ids.length * collection.dimensions)
  records.forEach((record, i) => vectors.set(record.vector, i * collection.dimensions))
  return {
    ids: ids.map(keyOf).join('\n'),
    texts: records.map((record) => record.text ?? '(none)').join('\n\u0000'),
    metadata: records.map((record) => JSON.stringify(record.metadata ?? null)).join('\n'),
    vectors: Buffer.from(vectors.buffer),
    'filtered count': collection.countSync({ filter: COLLECTION_FILTER }),
  }
}

const samePart = (x, y) => (Buffer.isBuffer(x) ? x.equals(y) : x === y)

/**
 * Collections A and B, saved under `dir`. B is A with 1,000 items replaced (new vectors, texts,
 * metadata; some lose their text), 500 added, 300 deleted by id and those of one year deleted by
 * filter, so that each part (ids, texts, metadata, vectors, the filtered count) differs.
 */
async function makeCollectionSources(dir) {
  const next = mulberry32(23)
  const settings = { dimensions: COLLECTION_DIM, metric: 'l2sq', m: 16, efConstruction: 64, seed: 2, fields: COLLECTION_FIELDS }
  const a = new Collection(settings)
  const aVectors = randomMatrix(COLLECTION_ITEMS, COLLECTION_DIM, 31)
  a.upsertSync(Array.from({ length: COLLECTION_ITEMS }, (_, i) => collectionItem(i, 'A', aVectors, i, next)))
  const aBytes = a.toBufferSync()
  const b = Collection.fromBufferSync(aBytes)
  const bVectors = randomMatrix(1500, COLLECTION_DIM, 32)
  const replaced = Array.from({ length: 1000 }, (_, j) => collectionItem(j * 4, 'B', bVectors, j, next))
  const added = Array.from({ length: 500 }, (_, j) => collectionItem(COLLECTION_ITEMS + j, 'B', bVectors, 1000 + j, next))
  b.upsertSync([...replaced, ...added])
  b.deleteSync(Array.from({ length: 300 }, (_, j) => collectionId(j * 4 + 1)))
  b.deleteSync({ filter: { year: 1999, version: 'A' } })
  const sources = { aFile: join(dir, 'A.vdx'), bFile: join(dir, 'B.vdx'), aBytes, bBytes: b.toBufferSync() }
  a.saveSync(sources.aFile)
  b.saveSync(sources.bFile)
  sources.aParts = collectionParts(a)
  sources.bParts = collectionParts(b)
  const alike = COLLECTION_PARTS.filter((part) => samePart(sources.aParts[part], sources.bParts[part]))
  if (alike.length > 0) throw new Error(`collections A and B must differ in every part; alike: ${alike.join(', ')}`)
  sources.sizes = [a.size, b.size]
  sources.saveMs = medianSaveMs(b, join(dir, 'timing.vdx'))
  const phases = await savePhases(b, dir)
  sources.temporaryMs = phases.shareBefore * sources.saveMs
  sources.writeMs = phases.writeMs
  a.close()
  b.close()
  return sources
}

/**
 * One run: start the saver (`childScript`), kill it `delayMs` after it reports starting save
 * number `save` (with `afterTemporary`: `delayMs` after, from then on, a temporary file shows in
 * the target's folder); resolves, once it is dead and its output read, to the number of the last
 * save it started.
 */
function killedSaver(childScript, sources, target, mode, save, delayMs, afterTemporary = false) {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(process.execPath, [join(SUITE_DIR, childScript), sources.aFile, sources.bFile, target, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    let stdout = ''
    let armed = false
    let watcher
    const kill = () => setTimeout(() => child.kill('SIGKILL'), delayMs)
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      if (!armed && stdout.includes(`\nsave ${save}\n`)) {
        armed = true
        if (!afterTemporary) kill()
        else {
          const folder = dirname(target)
          const targetName = basename(target)
          watcher = watch(folder, (_, name) => {
            if (name === targetName || watcher === undefined) return
            watcher.close()
            watcher = undefined
            kill()
          })
        }
      }
    })
    child.on('close', (code, signal) => {
      watcher?.close()
      const started = [...stdout.matchAll(/^save (\d+)$/gm)].map((m) => Number(m[1]))
      if (signal === 'SIGKILL') resolveRun(started.length > 0 ? started.at(-1) : -1)
      else rejectRun(new Error(`saver exited by itself (code ${code}): ${stderr.slice(-500)}`))
    })
  })
}

/** The bytes save number `i` writes (B, A, B, …), and what the file held before it (A, B, …). */
const savedBy = (sources, i) => (i % 2 === 0 ? sources.bBytes : sources.aBytes)
const heldBefore = (sources, i) => (i % 2 === 0 ? sources.aBytes : sources.bBytes)

/** Which state the file at `target` holds: 'old' (A), 'new' (B) or a failure's description. */
function indexVerdict(sources, target) {
  const loaded = HnswIndex.loadSync(target)
  const bytes = loaded.toBufferSync()
  loaded.close()
  const file = readFileSync(target)
  if (bytes.equals(sources.aBytes) && file.equals(sources.aBytes)) return 'old'
  if (bytes.equals(sources.bBytes) && file.equals(sources.bBytes)) return 'new'
  return 'equals neither A nor B'
}

/** Which state the collection file holds, part by part: 'old' when every part (and the bytes)
 * are A's, 'new' when all are B's, else which part came from which. */
function collectionVerdict(sources, target) {
  const loaded = Collection.loadSync(target)
  let parts
  let bytes
  try {
    parts = collectionParts(loaded)
    bytes = loaded.toBufferSync()
  } finally {
    loaded.close()
  }
  const file = readFileSync(target)
  const origin = COLLECTION_PARTS.map((part) => [part, samePart(parts[part], sources.aParts[part]) ? 'A' : samePart(parts[part], sources.bParts[part]) ? 'B' : 'neither'])
  const bytesOrigin = bytes.equals(sources.aBytes) && file.equals(sources.aBytes) ? 'A' : bytes.equals(sources.bBytes) && file.equals(sources.bBytes) ? 'B' : 'neither'
  origin.push(['bytes', bytesOrigin])
  if (origin.every(([, state]) => state === 'A')) return 'old'
  if (origin.every(([, state]) => state === 'B')) return 'new'
  return `is not one state: ${origin.map(([part, state]) => `${part} from ${state}`).join(', ')}`
}

/**
 * `runs` killed saves of `sources` by `childScript` over `target` (in `runDir`, which holds
 * nothing else), each followed by `verdictOf`; `timingOf()` draws each kill's timing (see
 * {@link killedSaver}; default: a delay uniform over a save, from its start) and `landed(where,
 * timing)` hears where each kill landed ('mid-save', 'before the temporary file', 'after the
 * rename'); failures go to `r` prefixed by `what`. Returns the tally.
 */
async function killedSaves(r, { what, childScript, sources, runDir, target, runs, next, verdictOf, timingOf = () => ({ delayMs: next() * sources.saveMs, afterTemporary: false }), landed = () => {} }) {
  const tally = { old: 0, new: 0, failures: 0, midSave: 0, beforeTemporary: 0, afterRename: 0, inconsistentTemporaries: 0 }
  const targetName = target.slice(runDir.length + 1)
  for (let i = 0; i < runs; i++) {
    copyFileSync(sources.aFile, target)
    const mode = i % 2 === 0 ? 'sync' : 'async'
    const save = Math.floor(next() * 3)
    const timing = timingOf()
    const { delayMs, afterTemporary } = timing
    const inProgress = await killedSaver(childScript, sources, target, mode, save, delayMs, afterTemporary)
    const label = `${what}run ${i} (${mode}, killed ${delayMs.toFixed(1)} ms after save ${save} started${afterTemporary ? ' and a temporary file showed' : ''}; last started: ${inProgress})`
    let verdict
    let file
    try {
      verdict = verdictOf(sources, target)
      file = readFileSync(target)
    } catch (error) {
      verdict = `does not load: ${labelOf(error)}`
    }
    if (verdict === 'old' || verdict === 'new') tally[verdict]++
    else {
      tally.failures++
      r.fail(`${label}: file ${verdict}`)
    }
    // Where the kill landed: the temporary file exists from its creation to the rename.
    const temporaries = readdirSync(runDir).filter((name) => name !== targetName)
    if (temporaries.length === 0) {
      // Before the save made its temporary file (the target holds the previous save's
      // bytes), or after it renamed it (the target holds this save's).
      if (inProgress >= 0 && file?.equals(savedBy(sources, inProgress))) {
        tally.afterRename++
        landed('after the rename', timing)
      } else {
        tally.beforeTemporary++
        landed('before the temporary file', timing)
      }
    } else {
      const partial = readFileSync(join(runDir, temporaries[0]))
      const writing = savedBy(sources, inProgress)
      const consistent =
        temporaries.length === 1 &&
        inProgress >= 0 &&
        partial.length <= writing.length &&
        writing.subarray(0, partial.length).equals(partial) &&
        file?.equals(heldBefore(sources, inProgress))
      if (consistent) {
        tally.midSave++
        landed('mid-save', timing)
      } else {
        tally.inconsistentTemporaries++
        r.fail(`${label}: temporary files ${temporaries.join(', ')} (first ${partial.length} bytes) do not fit a kill inside save ${inProgress}`)
      }
      for (const name of temporaries) rmSync(join(runDir, name), { force: true })
    }
    if ((i + 1) % 50 === 0) progress(`${what}${i + 1}/${runs} runs: ${tally.old} old, ${tally.new} new, ${tally.failures} failures, ${tally.midSave} mid-save`)
  }
  return tally
}

export async function run({ scale }) {
  const r = createResult()
  const dir = tempDir('crash-safety')
  const runDir = join(dir, 'run')
  mkdirSync(runDir)
  const next = mulberry32(5)
  const runs = scaled(200, scale)
  const collectionRuns = scaled(60, scale)
  let tally
  let collectionTally
  try {
    const sources = makeSources(dir)
    r.line(`index: HNSW ${ROWS} × ${DIM}, file ${(sources.aBytes.length / 1e6).toFixed(1)} MB (A) / ${(sources.bBytes.length / 1e6).toFixed(1)} MB (B); median saveSync ${sources.saveMs.toFixed(1)} ms; kill delay uniform in [0, ${sources.saveMs.toFixed(0)}] ms after the start of save 0, 1 or 2`)
    let started = performance.now()
    tally = await killedSaves(r, { what: '', childScript: 'lib/saver-child.mjs', sources, runDir, target: join(runDir, TARGET), runs, next, verdictOf: indexVerdict })
    tally.seconds = (performance.now() - started) / 1000
    rmSync(join(runDir, TARGET), { force: true })

    started = performance.now()
    const collection = await makeCollectionSources(dir)
    // A write is part of a save: no longer than the whole one (measured with saveSync).
    let writeWindow = Math.min(collection.writeMs, collection.saveMs)
    const windows = []
    r.line(`collection: HNSW, ${collection.sizes[0]} items (A) / ${collection.sizes[1]} (B) × ${COLLECTION_DIM} with ids, texts, metadata (fields ${Object.keys(COLLECTION_FIELDS).join(', ')} declared), file ${(collection.aBytes.length / 1e6).toFixed(1)} MB (A) / ${(collection.bBytes.length / 1e6).toFixed(1)} MB (B); median saveSync ${collection.saveMs.toFixed(1)} ms, its temporary file created after ${collection.temporaryMs.toFixed(1)} ms (the median share of a save before it, times that); its temporary file shown for a median ${collection.writeMs.toFixed(1)} ms before the rename; kill delay uniform in [0, ${collection.temporaryMs.toFixed(0)}] ms after the start of save 0, 1 or 2 (a quarter of the runs) or uniform in a window after its temporary file shows (the rest: the window starts at ${Math.min(collection.writeMs, collection.saveMs).toFixed(0)} ms and follows where those kills land); filtered count ${collection.aParts['filtered count']} (A) / ${collection.bParts['filtered count']} (B)`)
    collectionTally = await killedSaves(r, {
      what: 'collection ',
      childScript: 'lib/collection-saver-child.mjs',
      sources: collection,
      runDir,
      target: join(runDir, COLLECTION_TARGET),
      runs: collectionRuns,
      next,
      verdictOf: collectionVerdict,
      // A quarter of the kills over the build of the image, from the start of a save; the rest
      // over the write, from the moment its temporary file shows.
      timingOf: () =>
        next() < 0.25
          ? { delayMs: next() * collection.temporaryMs, afterTemporary: false }
          : { delayMs: next() * writeWindow, afterTemporary: true },
      // The write window is calibrated in this process, whose timing under load can differ
      // from the child's (CI once measured 76 ms for a write of about 20): it follows where
      // the kills timed from the temporary file land, shrinking when one lands past the write
      // (after the rename, or already in the next save) and growing back slowly when one
      // lands inside it, so the kills keep spanning the whole write.
      landed: (where, { afterTemporary }) => {
        if (!afterTemporary) return
        // Settles where about 92 % of these kills land mid-save (0.92 · ln 1.03 = 0.08 · ln(1/0.7)).
        writeWindow = where === 'mid-save' ? Math.min(writeWindow * 1.03, collection.saveMs) : writeWindow * 0.7
        windows.push(writeWindow)
      },
    })
    collectionTally.seconds = (performance.now() - started) / 1000
    const sorted = [...windows].sort((x, y) => x - y)
    collectionTally.windowMedianMs = sorted[Math.floor(sorted.length / 2)] ?? writeWindow
    collectionTally.windowLastMs = writeWindow
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  r.figure('runs', runs)
  for (const [name, value] of Object.entries(tally)) r.figure(name, value)
  r.figure('collectionRuns', collectionRuns)
  for (const [name, value] of Object.entries(collectionTally)) r.figure(`collection${name[0].toUpperCase()}${name.slice(1)}`, value)
  r.line(`${runs} killed saves (half saveSync, half await save) in ${tally.seconds.toFixed(1)} s: file equals A (old) ${tally.old}, B (new) ${tally.new}, neither or unloadable ${tally.failures}`)
  r.line(`where the kills landed: mid-save (temporary file holding a beginning of the save in progress, old file in place) ${tally.midSave}, before the temporary file ${tally.beforeTemporary}, after the rename ${tally.afterRename}`)
  r.line(`collection: ${collectionRuns} killed saves in ${collectionTally.seconds.toFixed(1)} s (with building A and B): every part (ids, texts, metadata, vectors, filtered count, bytes) from A (old) ${collectionTally.old}, all from B (new) ${collectionTally.new}, a mix or unloadable ${collectionTally.failures}`)
  r.line(`collection: kills mid-save ${collectionTally.midSave}, before the temporary file ${collectionTally.beforeTemporary}, after the rename ${collectionTally.afterRename}; the window after the temporary file shows followed the landings: median ${collectionTally.windowMedianMs.toFixed(1)} ms, last ${collectionTally.windowLastMs.toFixed(1)} ms`)
  r.check('runs', runs, '>=', scaled(200, scale))
  r.check('runs whose file fails to load or equals neither A nor B', tally.failures, '==', 0)
  r.check('share of kills that landed mid-save', tally.midSave / runs, '>=', 0.5)
  r.check('temporary files inconsistent with the save in progress', tally.inconsistentTemporaries, '==', 0)
  r.check('collection runs', collectionRuns, '>=', scaled(60, scale))
  r.check('collection runs whose file fails to load or mixes A and B in some part', collectionTally.failures, '==', 0)
  r.check('collection: share of kills that landed mid-save', collectionTally.midSave / collectionRuns, '>=', 0.5)
  r.check('collection: temporary files inconsistent with the save in progress', collectionTally.inconsistentTemporaries, '==', 0)
  return r.result
}
