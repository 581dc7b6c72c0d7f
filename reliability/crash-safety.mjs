/**
 * Part 2, crash safety of `save`: a child process loads indexes A and B and saves B, A, B, …
 * over a file that holds A; the parent SIGKILLs it at a random moment (uniform over three save
 * durations, so kills land before, inside and between saves), then loads the file. Half the
 * runs use saveSync, half `await save`. The index is an HNSW of 20,000 × 64 (an 8 MB file), so
 * a save (write, fsync, rename, folder fsync) takes tens of milliseconds.
 *
 * Proves: after a kill at any moment the file loads and equals (bytes of toBufferSync, and the
 * file's own bytes) A or B, whole: saves are atomic. Temporary files a killed save leaves in the
 * folder are counted, then removed.
 *
 * Targets: ≥ 200 runs; 0 runs whose file fails to load or equals neither A nor B.
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

/** One run: start the saver, kill it `delayMs` after it is ready; resolves when it is dead. */
function killedSaver(sources, target, mode, delayMs) {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(process.execPath, [join(SUITE_DIR, 'lib/saver-child.mjs'), sources.aFile, sources.bFile, target, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.stdout.once('data', () => setTimeout(() => child.kill('SIGKILL'), delayMs))
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolveRun()
      else rejectRun(new Error(`saver exited by itself (code ${code}): ${stderr.slice(-500)}`))
    })
  })
}

export async function run({ scale }) {
  const r = createResult()
  const dir = tempDir('crash-safety')
  const runDir = join(dir, 'run')
  mkdirSync(runDir)
  const target = join(runDir, TARGET)
  const next = mulberry32(5)
  const runs = scaled(200, scale)
  const tally = { old: 0, new: 0, failures: 0, leftoverTemps: 0 }
  try {
    const sources = makeSources(dir)
    r.line(`index: HNSW ${ROWS} × ${DIM}, file ${(sources.aBytes.length / 1e6).toFixed(1)} MB (A) / ${(sources.bBytes.length / 1e6).toFixed(1)} MB (B); median saveSync ${sources.saveMs.toFixed(1)} ms; kill delay uniform in [0, ${(3 * sources.saveMs).toFixed(0)}] ms after ready`)
    for (let i = 0; i < runs; i++) {
      copyFileSync(sources.aFile, target)
      const mode = i % 2 === 0 ? 'sync' : 'async'
      const delayMs = next() * 3 * sources.saveMs
      await killedSaver(sources, target, mode, delayMs)
      let verdict
      try {
        const loaded = HnswIndex.loadSync(target)
        const bytes = loaded.toBufferSync()
        loaded.close()
        const file = readFileSync(target)
        if (bytes.equals(sources.aBytes) && file.equals(sources.aBytes)) verdict = 'old'
        else if (bytes.equals(sources.bBytes) && file.equals(sources.bBytes)) verdict = 'new'
        else verdict = 'equals neither A nor B'
      } catch (error) {
        verdict = `does not load: ${labelOf(error)}`
      }
      if (verdict === 'old' || verdict === 'new') tally[verdict]++
      else {
        tally.failures++
        r.fail(`run ${i} (${mode}, killed ${delayMs.toFixed(1)} ms after ready): file ${verdict}`)
      }
      for (const name of readdirSync(runDir)) {
        if (name === TARGET) continue
        tally.leftoverTemps++
        rmSync(join(runDir, name), { force: true })
      }
      if ((i + 1) % 50 === 0) progress(`${i + 1}/${runs} runs: ${tally.old} old, ${tally.new} new, ${tally.failures} failures`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  r.figure('runs', runs)
  for (const [name, value] of Object.entries(tally)) r.figure(name, value)
  r.line(`${runs} killed saves (half saveSync, half await save): file equals A (old) ${tally.old}, B (new) ${tally.new}, neither or unloadable ${tally.failures}`)
  r.line(`leftover temporary files from killed saves: ${tally.leftoverTemps} (removed)`)
  r.check('runs', runs, '>=', scaled(200, scale))
  r.check('runs whose file fails to load or equals neither A nor B', tally.failures, '==', 0)
  return r.result
}
