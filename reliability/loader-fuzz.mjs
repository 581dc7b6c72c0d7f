/**
 * Part 3, loader robustness: damaged images of small valid files of each index kind (HNSW with
 * tombstones, flat, multi-vector), fed to the loaders from JS (fromBufferSync; samples through
 * async fromBuffer, through loadSync of a file and, for HNSW, through the memory-mapped
 * viewSync):
 *   - every byte of the header (bytes 0 .. H, H = the u32 at offset 12) flipped, each of its 8
 *     bits alone and all 8 at once;
 *   - truncation at every offset of the first 4 KiB, and at every section boundary (start and
 *     end of each section, ±1 byte), and bytes appended;
 *   - random mutations: 1–8 random bytes changed (XOR with a non-zero byte; a third of them
 *     inside the header);
 *   - re-sealed mutations: as above, with the section and header CRCs recomputed afterwards, so
 *     the damage gets past the checksums to the structural checks (links < count, levels,
 *     lengths = counts × sizes, …);
 *   - crafted images: one field set to an extreme value (count 2^64 − 1, dimensions 65,536,
 *     256 sections, a section at offset 2^63 or of length 2^62 or past the end; for the
 *     multi-vector kind a huge FDE) and the header re-sealed, each loaded in a child process
 *     (lib/load-child.mjs) so that an abort or a memory blow-up is reported, not suffered.
 *
 * Proves: every damaged image is refused with ERR_CORRUPT_FILE or ERR_UNSUPPORTED_FORMAT
 * (ERR_INVALID_ARGUMENT only when the kind byte changed); none loads with changed bytes; none
 * crashes or hangs (the slowest single load is reported). A re-sealed image may be valid again
 * (e.g. a changed vector value): it may load, but must then round-trip (toBufferSync equals the
 * image) and search without error.
 *
 * Targets: all header bytes and truncations covered; ≥ 100,000 random mutations per file;
 * 0 wrongly accepted images; 0 unexpected outcomes; slowest load < 1 s; every crafted image
 * refused in < 1 s with < 256 MB of peak memory growth, without a crash.
 */
import { execFile } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { clusteredMatrix, createResult, labelOf, mulberry32, progress, randInt, scaled, seqKeys, SUITE_DIR, syncCodeOf, tempDir, vecdex } from './lib/common.mjs'
import { KIND_BYTE, parseLayout, reseal, resealHeader } from './lib/format.mjs'

export const title = 'loader robustness'

const { FlatIndex, HnswIndex, MultiVectorIndex } = vecdex
const REFUSED = new Set(['ERR_CORRUPT_FILE', 'ERR_UNSUPPORTED_FORMAT'])
const TRUNCATE_ALL_BELOW = 4096
const DIM = 16
const ROWS = 256
const CRAFTED_TIMEOUT_MS = 10_000
const CRAFTED_MAX_MS = 1000
const CRAFTED_MAX_GROWTH_MB = 256

/** A search of a loaded index, to prove it works. */
const probeVector = (index) => index.searchSync(new Float32Array(index.dimensions).fill(0.5), { k: 10 })
const probeMulti = (index) => index.searchSync([new Float32Array(index.dimensions).fill(0.5)], { k: 10 })

/** The valid images under test, with how to load and probe them (`view`: has viewSync). */
function makeSubjects() {
  const data = clusteredMatrix(ROWS, DIM, 8, 11)
  const hnsw = new HnswIndex({ dimensions: DIM, metric: 'cosine', m: 8, seed: 3 })
  hnsw.addSync(seqKeys(ROWS), data)
  hnsw.removeSync(seqKeys(12, 100)) // tombstones: one more section and state to validate
  const flat = new FlatIndex({ dimensions: DIM, metric: 'l2sq' })
  flat.addSync(seqKeys(ROWS, 1000), data)
  const multi = new MultiVectorIndex({ dimensions: DIM, fde: { numRepetitions: 2, numSimhashProjections: 2 } })
  const documents = Array.from({ length: 32 }, (_, i) => data.subarray(i * 6 * DIM, (i * 6 + 2 + (i % 5)) * DIM))
  multi.addSync(seqKeys(documents.length), documents)
  multi.removeSync([3, 7])
  const subjects = [
    { name: 'HNSW', Class: HnswIndex, image: hnsw.toBufferSync(), probe: probeVector, view: true },
    { name: 'flat', Class: FlatIndex, image: flat.toBufferSync(), probe: probeVector, view: false },
    { name: 'multi-vector', Class: MultiVectorIndex, image: multi.toBufferSync(), probe: probeMulti, view: false, crafted: craftedFde },
  ]
  for (const index of [hnsw, flat, multi]) index.close()
  for (const s of subjects) s.layout = parseLayout(s.image)
  return subjects
}

/**
 * The checks of one subject. `test(what, image, how, changedKind)` loads a damaged image by
 * `how` ('sync' | 'async' | 'file' | 'view') and records the outcome: refused as expected,
 * wrongly accepted, or unexpected (another code, or a non-vecdex error). `record` records an
 * outcome obtained elsewhere; `timed` counts a load and keeps the slowest.
 */
function tester(subject, r, dir) {
  const stats = { loads: 0, slowestMs: 0, slowest: '', codes: {}, wronglyAccepted: 0, unexpected: 0 }
  const file = join(dir, `${subject.name}.idx`)

  function record(what, code, changedKind) {
    stats.codes[code] = (stats.codes[code] ?? 0) + 1
    if (code === 'OK') {
      stats.wronglyAccepted++
      r.fail(`${subject.name} ${what}: loaded although bytes changed`)
    } else if (!(REFUSED.has(code) || (code === 'ERR_INVALID_ARGUMENT' && changedKind))) {
      stats.unexpected++
      r.fail(`${subject.name} ${what}: ${code}`)
    }
  }

  function timed(started, what) {
    const ms = performance.now() - started
    if (ms > stats.slowestMs) Object.assign(stats, { slowestMs: ms, slowest: what })
    stats.loads++
  }

  async function test(what, image, how, changedKind) {
    const started = performance.now()
    let code = 'OK'
    try {
      let index
      if (how === 'sync') index = subject.Class.fromBufferSync(image)
      else if (how === 'async') index = await subject.Class.fromBuffer(image)
      else {
        writeFileSync(file, image)
        index = how === 'view' ? subject.Class.viewSync(file) : subject.Class.loadSync(file)
      }
      index.close()
    } catch (error) {
      code = labelOf(error)
    }
    timed(started, `${what} (${how})`)
    record(what, code, changedKind)
  }

  return { stats, test, record, timed }
}

/** A copy of `image` with 1–8 random bytes changed (never back to the original bytes). */
function mutate(image, layout, next) {
  const copy = Buffer.from(image)
  const positions = []
  const changes = randInt(next, 1, 8)
  for (let i = 0; i < changes; i++) {
    const limit = next() < 1 / 3 ? layout.headerLength : image.length
    const at = Math.floor(next() * limit)
    copy[at] ^= randInt(next, 1, 255)
    positions.push(at)
  }
  return positions.some((p) => copy[p] !== image[p]) ? { copy, positions } : mutate(image, layout, next)
}

async function fuzz(subject, r, dir, scale) {
  const { image, layout } = subject
  const t = tester(subject, r, dir)
  const counts = {}

  // Every header byte: each bit alone, then all 8 bits.
  counts.headerFlips = 0
  for (let at = 0; at < layout.headerLength; at++) {
    for (const mask of [1, 2, 4, 8, 16, 32, 64, 128, 255]) {
      const copy = Buffer.from(image)
      copy[at] ^= mask
      await t.test(`header byte ${at} ^ ${mask}`, copy, 'sync', at === KIND_BYTE)
      counts.headerFlips++
    }
  }

  // Truncation at every offset of the first 4 KiB, at every section boundary ±1 (also through
  // the async loader, a file and a view), and bytes appended.
  const slowPaths = subject.view ? ['async', 'file', 'view'] : ['async', 'file']
  counts.truncations = 0
  for (let length = 0; length < Math.min(TRUNCATE_ALL_BELOW, image.length); length++) {
    await t.test(`truncated to ${length}`, image.subarray(0, length), 'sync', false)
    counts.truncations++
  }
  const boundaries = new Set([image.length - 1])
  for (const s of layout.sections) for (const edge of [s.offset, s.offset + s.length]) for (const d of [-1, 0, 1]) boundaries.add(edge + d)
  counts.sectionBoundaries = 0
  for (const length of [...boundaries].filter((n) => n >= 0 && n < image.length).sort((a, b) => a - b)) {
    for (const how of ['sync', ...slowPaths]) {
      await t.test(`truncated to ${length}`, image.subarray(0, length), how, false)
      counts.truncations++
    }
    counts.sectionBoundaries++
  }
  for (const extra of [1, 7, 64, 4096]) {
    await t.test(`${extra} bytes appended`, Buffer.concat([image, Buffer.alloc(extra, 0)]), 'sync', false)
    counts.truncations++
  }

  // Random mutations (1 in 100 through each slow path).
  const next = mulberry32(101 + subject.name.length)
  counts.randomMutations = scaled(100_000, scale)
  for (let i = 0; i < counts.randomMutations; i++) {
    const { copy } = mutate(image, layout, next)
    const how = (i % 100 < slowPaths.length && slowPaths[i % 100]) || 'sync'
    await t.test(`mutation ${i}`, copy, how, copy[KIND_BYTE] !== image[KIND_BYTE])
    if ((i + 1) % 25_000 === 0) progress(`${subject.name}: ${i + 1} random mutations`)
  }

  // Re-sealed mutations: past the checksums, into the structural checks. An image valid again
  // may load, but must then round-trip and search.
  counts.resealed = scaled(20_000, scale)
  let accepted = 0
  counts.resealedInconsistent = 0
  for (let i = 0; i < counts.resealed; i++) {
    const { copy, positions } = mutate(image, layout, next)
    reseal(copy, layout, positions)
    let index
    const started = performance.now()
    try {
      index = subject.Class.fromBufferSync(copy)
    } catch (error) {
      t.timed(started, `re-sealed mutation ${i}`)
      t.record(`re-sealed mutation ${i}`, labelOf(error), copy[KIND_BYTE] !== image[KIND_BYTE])
      continue
    }
    t.timed(started, `re-sealed mutation ${i}`)
    accepted++
    const roundTrip = syncCodeOf(() => {
      if (!index.toBufferSync().equals(copy)) throw new Error('re-saved bytes differ')
    })
    const search = syncCodeOf(() => subject.probe(index))
    index.close()
    if (roundTrip !== 'OK' || search !== 'OK') {
      counts.resealedInconsistent++
      r.fail(`${subject.name} re-sealed mutation ${i} (bytes ${positions}): loaded, but round trip ${roundTrip}, search ${search}`)
    }
  }
  counts.resealedAccepted = accepted
  return { ...counts, ...t.stats }
}

/**
 * Multi-vector only: an FDE of token dimension 256 (header and configuration) and 16,384
 * repetitions — a 30 KB file announcing a huge encoder. The configuration starts with the token
 * dimension (u32 at byte 0) and numRepetitions (u32 at byte 8), as this build writes it.
 */
function craftedFde(b) {
  b.writeUInt32LE(256, 20)
  b.writeUInt32LE(256, 40)
  b.writeUInt32LE(16_384, 48)
}

/** Crafted images of a subject: [what, edit of a copy of the image]; the header is re-sealed. */
function craftedEdits(subject) {
  const { layout, image } = subject
  const first = layout.sections[0].entryOffset
  const last = layout.sections[layout.sections.length - 1].entryOffset
  const edits = [
    ['count 2^64 − 1', (b) => b.writeBigUInt64LE(2n ** 64n - 1n, 24)],
    ['count + 1', (b) => b.writeBigUInt64LE(image.readBigUInt64LE(24) + 1n, 24)],
    ['dimensions 65,536', (b) => b.writeUInt32LE(65_536, 20)],
    ['256 sections', (b) => b.writeUInt32LE(256, 36)],
    ['first section at offset 2^63', (b) => b.writeBigUInt64LE(2n ** 63n, first + 8)],
    ['first section of length 2^62', (b) => b.writeBigUInt64LE(2n ** 62n, first + 16)],
    ['last section 8 bytes past the end', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(last + 16) + 8n, last + 16)],
  ]
  if (subject.crafted) edits.push(['FDE of token dimension 256 × 16,384 repetitions', subject.crafted])
  return edits
}

/** Loads each crafted image in a child process; fails any that is not refused promptly.
 * Returns a report row per image and the count that failed. */
async function crafted(subject, r, dir) {
  const file = join(dir, `crafted-${subject.name}.idx`)
  const child = join(SUITE_DIR, 'lib/load-child.mjs')
  const rows = []
  let failed = 0
  for (const [what, edit] of craftedEdits(subject)) {
    const copy = Buffer.from(subject.image)
    edit(copy)
    resealHeader(copy, subject.layout)
    writeFileSync(file, copy)
    let verdict
    try {
      const { stdout } = await promisify(execFile)(process.execPath, [child, subject.Class.name, file], { timeout: CRAFTED_TIMEOUT_MS })
      const { code, ms, growthMB } = JSON.parse(stdout)
      rows.push(`${what}: ${code} in ${ms.toFixed(1)} ms, +${growthMB.toFixed(0)} MB`)
      if (!REFUSED.has(code) && !(code === 'ERR_INVALID_ARGUMENT' && copy[KIND_BYTE] !== subject.image[KIND_BYTE])) verdict = code
      else if (ms >= CRAFTED_MAX_MS) verdict = `refused only after ${ms.toFixed(0)} ms`
      else if (growthMB >= CRAFTED_MAX_GROWTH_MB) verdict = `peak memory grew by ${growthMB.toFixed(0)} MB`
    } catch (error) {
      verdict = error.killed ? `no answer within ${CRAFTED_TIMEOUT_MS / 1000} s` : `the process died (${error.signal ?? `code ${error.code}`}): ${String(error.stderr).split('\n')[0]}`
      rows.push(`${what}: ${verdict}`)
    }
    if (verdict) {
      failed++
      r.fail(`${subject.name} crafted image, ${what}: ${verdict}`)
    }
  }
  return { rows, failed }
}

export async function run({ scale }) {
  const r = createResult()
  const dir = tempDir('loader-fuzz')
  try {
    for (const subject of makeSubjects()) {
      const started = performance.now()
      const s = await fuzz(subject, r, dir, scale)
      const seconds = (performance.now() - started) / 1000
      r.figure(subject.name, { ...s, imageBytes: subject.image.length, headerBytes: subject.layout.headerLength, sections: subject.layout.sectionCount, seconds })
      r.line(`${subject.name} image: ${subject.image.length} bytes, header ${subject.layout.headerLength} bytes, ${subject.layout.sectionCount} sections`)
      r.line(`  header flips ${s.headerFlips} (${subject.layout.headerLength} bytes × 9), truncations ${s.truncations} (${s.sectionBoundaries} at section boundaries), random mutations ${s.randomMutations}, re-sealed ${s.resealed} (${s.resealedAccepted} valid again, round-tripped)`)
      r.line(`  ${s.loads} loads in ${seconds.toFixed(1)} s, slowest ${s.slowestMs.toFixed(1)} ms (${s.slowest}); outcomes: ${Object.entries(s.codes).map(([c, n]) => `${c} ${n}`).join(', ')}`)
      r.check(`${subject.name}: header bytes flipped`, s.headerFlips / 9, '==', subject.layout.headerLength)
      r.check(`${subject.name}: random mutations`, s.randomMutations, '>=', scaled(100_000, scale))
      r.check(`${subject.name}: wrongly accepted images`, s.wronglyAccepted, '==', 0)
      r.check(`${subject.name}: unexpected outcomes`, s.unexpected, '==', 0)
      r.check(`${subject.name}: re-sealed images loaded that do not round-trip or search`, s.resealedInconsistent, '==', 0)
      r.check(`${subject.name}: slowest single load (ms)`, Math.round(s.slowestMs * 10) / 10, '<', 1000)
      const { rows, failed } = await crafted(subject, r, dir)
      r.figure(`${subject.name} crafted`, rows)
      r.line(`  crafted images (each in a child process):`)
      for (const row of rows) r.line(`    ${row}`)
      r.check(`${subject.name}: crafted images refused late (≥ ${CRAFTED_MAX_MS} ms), with ≥ ${CRAFTED_MAX_GROWTH_MB} MB, or by a crash`, failed, '==', 0)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return r.result
}
