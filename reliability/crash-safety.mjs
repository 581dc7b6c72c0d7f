/**
 * Part 2, crash safety of `save`: a child process loads indexes A and B and saves B, A, B, …
 * over a file that holds A, printing "save i" as it starts save number i; the parent SIGKILLs
 * it at a random moment inside one of its first saves: after the line of save s (s uniform in
 * 0–2) plus a delay uniform over one save's duration, so kills land in every phase of a save
 * (opening the temporary file, writing, fsync, rename, folder fsync) and sometimes just after
 * one. Then it loads the file. Half the runs use saveSync, half `await save`. The index is an
 * HNSW of 20,000 × 64 (an 8 MB file), so a save takes tens of milliseconds.
 *
 * Proves: after a kill at any moment the file loads and equals (bytes of toBufferSync, and the
 * file's own bytes) A or B, whole: saves are atomic. And that the kills landed mid-save, not
 * before or between saves: a kill that finds the save's temporary file in the folder came
 * after the save created it and before it renamed it over the target. Each such run checks
 * that the temporary file holds a beginning of the bytes of the save in progress (the last
 * "save i" line) while the target still holds the previous save's (a kill during a save
 * leaves the old file), so the counted kills are known to have interrupted a real write.
 * Temporary files a killed save leaves in the folder are then removed.
 *
 * Targets: ≥ 200 runs; 0 runs whose file fails to load or equals neither A nor B; most kills
 * (≥ 50 %; about 70 % on a 2-core machine, the rest early in a save, before its temporary file
 * exists, or after its rename) landed mid-save: temporary file present, consistent with the
 * save in progress; 0 temporary files inconsistent with it.
 */
import { spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createResult, labelOf, mulberry32, progress, randomMatrix, scaled, seqKeys, SUITE_DIR, tempDir, vecdex } from './lib/common.mjs'

export const title = 'crash safety'

const { HnswIndex } = vecdex
const ROWS = 20_000
const DIM = 64
const TARGET = 'index.idx'

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
  // Median duration of a save of B, which sets the span of kill delays.
  const times = []
  for (let i = 0; i < 5; i++) {
    const started = performance.now()
    b.saveSync(join(dir, 'timing.idx'))
    times.push(performance.now() - started)
  }
  sources.saveMs = times.sort((x, y) => x - y)[2]
  a.close()
  b.close()
  return sources
}

/**
 * One run: start the saver, kill it `delayMs` after it reports starting save number `save`;
 * resolves, once it is dead and its output read, to the number of the last save it started.
 */
function killedSaver(sources, target, mode, save, delayMs) {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(process.execPath, [join(SUITE_DIR, 'lib/saver-child.mjs'), sources.aFile, sources.bFile, target, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    let stdout = ''
    let armed = false
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      if (!armed && stdout.includes(`\nsave ${save}\n`)) {
        armed = true
        setTimeout(() => child.kill('SIGKILL'), delayMs)
      }
    })
    child.on('close', (code, signal) => {
      const started = [...stdout.matchAll(/^save (\d+)$/gm)].map((m) => Number(m[1]))
      if (signal === 'SIGKILL') resolveRun(started.length > 0 ? started.at(-1) : -1)
      else rejectRun(new Error(`saver exited by itself (code ${code}): ${stderr.slice(-500)}`))
    })
  })
}

/** The bytes save number `i` writes (B, A, B, …), and what the file held before it (A, B, …). */
const savedBy = (sources, i) => (i % 2 === 0 ? sources.bBytes : sources.aBytes)
const heldBefore = (sources, i) => (i % 2 === 0 ? sources.aBytes : sources.bBytes)

export async function run({ scale }) {
  const r = createResult()
  const dir = tempDir('crash-safety')
  const runDir = join(dir, 'run')
  mkdirSync(runDir)
  const target = join(runDir, TARGET)
  const next = mulberry32(5)
  const runs = scaled(200, scale)
  const tally = { old: 0, new: 0, failures: 0, midSave: 0, beforeTemporary: 0, afterRename: 0, inconsistentTemporaries: 0 }
  try {
    const sources = makeSources(dir)
    r.line(`index: HNSW ${ROWS} × ${DIM}, file ${(sources.aBytes.length / 1e6).toFixed(1)} MB (A) / ${(sources.bBytes.length / 1e6).toFixed(1)} MB (B); median saveSync ${sources.saveMs.toFixed(1)} ms; kill delay uniform in [0, ${sources.saveMs.toFixed(0)}] ms after the start of save 0, 1 or 2`)
    for (let i = 0; i < runs; i++) {
      copyFileSync(sources.aFile, target)
      const mode = i % 2 === 0 ? 'sync' : 'async'
      const save = Math.floor(next() * 3)
      const delayMs = next() * sources.saveMs
      const inProgress = await killedSaver(sources, target, mode, save, delayMs)
      const label = `run ${i} (${mode}, killed ${delayMs.toFixed(1)} ms after save ${save} started; last started: ${inProgress})`
      let verdict
      let file
      try {
        const loaded = HnswIndex.loadSync(target)
        const bytes = loaded.toBufferSync()
        loaded.close()
        file = readFileSync(target)
        if (bytes.equals(sources.aBytes) && file.equals(sources.aBytes)) verdict = 'old'
        else if (bytes.equals(sources.bBytes) && file.equals(sources.bBytes)) verdict = 'new'
        else verdict = 'equals neither A nor B'
      } catch (error) {
        verdict = `does not load: ${labelOf(error)}`
      }
      if (verdict === 'old' || verdict === 'new') tally[verdict]++
      else {
        tally.failures++
        r.fail(`${label}: file ${verdict}`)
      }
      // Where the kill landed: the temporary file exists from its creation to the rename.
      const temporaries = readdirSync(runDir).filter((name) => name !== TARGET)
      if (temporaries.length === 0) {
        // Before the save made its temporary file (the target holds the previous save's
        // bytes), or after it renamed it (the target holds this save's).
        if (inProgress >= 0 && file?.equals(savedBy(sources, inProgress))) tally.afterRename++
        else tally.beforeTemporary++
      } else {
        const partial = readFileSync(join(runDir, temporaries[0]))
        const writing = savedBy(sources, inProgress)
        const consistent =
          temporaries.length === 1 &&
          inProgress >= 0 &&
          partial.length <= writing.length &&
          writing.subarray(0, partial.length).equals(partial) &&
          file?.equals(heldBefore(sources, inProgress))
        if (consistent) tally.midSave++
        else {
          tally.inconsistentTemporaries++
          r.fail(`${label}: temporary files ${temporaries.join(', ')} (first ${partial.length} bytes) do not fit a kill inside save ${inProgress}`)
        }
        for (const name of temporaries) rmSync(join(runDir, name), { force: true })
      }
      if ((i + 1) % 50 === 0) progress(`${i + 1}/${runs} runs: ${tally.old} old, ${tally.new} new, ${tally.failures} failures, ${tally.midSave} mid-save`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  r.figure('runs', runs)
  for (const [name, value] of Object.entries(tally)) r.figure(name, value)
  r.line(`${runs} killed saves (half saveSync, half await save): file equals A (old) ${tally.old}, B (new) ${tally.new}, neither or unloadable ${tally.failures}`)
  r.line(`where the kills landed: mid-save (temporary file holding a beginning of the save in progress, old file in place) ${tally.midSave}, before the temporary file ${tally.beforeTemporary}, after the rename ${tally.afterRename}`)
  r.check('runs', runs, '>=', scaled(200, scale))
  r.check('runs whose file fails to load or equals neither A nor B', tally.failures, '==', 0)
  r.check('share of kills that landed mid-save', tally.midSave / runs, '>=', 0.5)
  r.check('temporary files inconsistent with the save in progress', tally.inconsistentTemporaries, '==', 0)
  return r.result
}
