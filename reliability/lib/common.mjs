/**
 * Shared pieces of the reliability suite: the built package, seeded data, outcome capture
 * (which error code a call produced, and whether it threw or rejected), the result format every
 * part returns, and the child-process host that runs a part in a process of its own.
 *
 * A part module exports `title` and `run({ scale })`, where `scale` is 1 for the full targets
 * and smaller for a quick development run; `run` returns the `result` of {@link createResult}.
 */
import { fork } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)

export const SUITE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ROOT = resolve(SUITE_DIR, '..')
/** The package as users get it (dist/, compiled from lib/). */
export const vecdex = require(join(ROOT, 'dist/index.js'))
/** The generated napi loader (the native contract, with the test hooks). */
export const native = require(join(ROOT, 'index.js'))

/** mulberry32: a small seeded PRNG, uniform in [0, 1), so every run is reproducible. */
export function mulberry32(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Uniform random integer in [lo, hi]. */
export function randInt(next, lo, hi) {
  return lo + Math.floor(next() * (hi - lo + 1))
}

/** `rows × dim` values uniform in [−1, 1), row-major. */
export function randomMatrix(rows, dim, seed) {
  const next = mulberry32(seed)
  const out = new Float32Array(rows * dim)
  for (let i = 0; i < out.length; i++) out[i] = next() * 2 - 1
  return out
}

/**
 * `rows × dim` points around `clusters` random centres (noise: sum of three uniforms), closer to
 * real embeddings than uniform noise. Centres come from `seed`, points from `seed + 1`, so
 * `clusteredMatrix(…, seed)` and queries drawn with another point seed share the centres.
 */
export function clusteredMatrix(rows, dim, clusters, seed, pointSeed = seed + 1) {
  const centre = mulberry32(seed)
  const centres = Float32Array.from({ length: clusters * dim }, () => centre() * 4 - 2)
  const next = mulberry32(pointSeed)
  const out = new Float32Array(rows * dim)
  for (let i = 0; i < rows; i++) {
    const c = Math.floor(next() * clusters)
    for (let d = 0; d < dim; d++) out[i * dim + d] = centres[c * dim + d] + (next() + next() + next() - 1.5) * 0.5
  }
  return out
}

/** Keys `start … start + n − 1`. */
export function seqKeys(n, start = 0) {
  return Uint32Array.from({ length: n }, (_, i) => start + i)
}

/** Methods whose result is a Promise (or, for searchStream, an async generator): their errors
 * must arrive as rejections, never as synchronous throws. */
export const ASYNC_METHODS = new Set([
  'add', 'remove', 'search', 'searchBatch', 'searchExact', 'searchExactBatch', 'searchStream', 'train', 'save', 'toBuffer', 'load', 'fromBuffer',
  'view', 'compact', 'addStream', 'encodeQueries', 'encodeDocuments', 'inspectIndexFile',
])

/** Prototype members of the index classes that are TypeScript-`protected`, not public API. */
const NOT_PUBLIC = new Set(['constructor', 'handle', 'queryArgs', 'searchInto', 'searchOptionSet', 'searchAhead', 'released'])

/** Public instance members of a class, inherited ones included: method and getter names. */
export function publicMembers(Class) {
  const methods = new Set()
  const getters = new Set()
  for (let p = Class.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const key of Object.getOwnPropertyNames(p)) {
      if (NOT_PUBLIC.has(key)) continue
      const descriptor = Object.getOwnPropertyDescriptor(p, key)
      if (typeof descriptor.value === 'function') methods.add(key)
      else if (descriptor.get) getters.add(key)
    }
  }
  return { methods, getters }
}

/** What an error is, as a short label: its VecdexError code, or `NOT_VECDEX(Name: message)`. */
export function labelOf(error) {
  if (error instanceof vecdex.VecdexError) return error.code
  const name = error?.constructor?.name ?? typeof error
  return `NOT_VECDEX(${name}: ${String(error?.message ?? error).slice(0, 120)})`
}

/**
 * Runs `call` and reports how it ended: `code` is the error label or 'OK'; `threw` says the call
 * threw synchronously, `rejected` that it returned a promise that rejected.
 */
export async function outcomeOf(call) {
  let value
  try {
    value = call()
  } catch (error) {
    return { code: labelOf(error), threw: true, rejected: false }
  }
  if (value && typeof value.then === 'function') {
    try {
      await value
    } catch (error) {
      return { code: labelOf(error), threw: false, rejected: true }
    }
  }
  return { code: 'OK', threw: false, rejected: false }
}

/** Sync twin of {@link outcomeOf} for hot loops: the label of what `call` threw, or 'OK'. */
export function syncCodeOf(call) {
  try {
    call()
    return 'OK'
  } catch (error) {
    return labelOf(error)
  }
}

/** A fresh temporary folder. */
export function tempDir(name) {
  return mkdtempSync(join(tmpdir(), `vecdex-rel-${name}-`))
}

/** `n × scale`, rounded, at least `min`. */
export function scaled(n, scale, min = 1) {
  return Math.max(min, Math.round(n * scale))
}

/** A progress line on stdout (the runner shows it under the part's name). */
export function progress(message) {
  process.stdout.write(`${message}\n`)
}

const COMPARE = {
  '>=': (v, t) => v >= t,
  '<=': (v, t) => v <= t,
  '<': (v, t) => v < t,
  '==': (v, t) => v === t,
}

/**
 * A part's result under construction. `figures` are the numbers a part reports (in
 * report.json); `checks` are figures held against their targets; `lines` are the part's report
 * text; `failures` describe individual cases that went wrong (the first ones are printed).
 */
export function createResult() {
  const result = { figures: {}, checks: [], lines: [], failures: [] }
  return {
    result,
    figure(name, value) {
      result.figures[name] = value
      return value
    },
    check(label, value, op, target) {
      const pass = COMPARE[op](value, target)
      result.checks.push({ label, value, op, target, pass })
      return pass
    },
    line(text) {
      result.lines.push(text)
    },
    fail(text) {
      result.failures.push(text)
    },
  }
}

/** Environment of particular parts: the panics part panics on purpose, so its Rust panic
 * messages go without backtraces. */
const PART_ENV = { panics: { RUST_BACKTRACE: '0' } }

/**
 * Runs part `name` in a child process (`node --expose-gc reliability/lib/host.mjs`) and resolves
 * with its result, extended with `seconds`, `exit` and `stderr` (the tail of what it wrote
 * there, e.g. Rust panic messages). A child that dies or overruns `timeoutMs` yields a result
 * whose `crashed` says how, with no checks passed. `onProgress` gets each stdout line.
 */
export function spawnPart(name, { scale = 1, env = {}, timeoutMs = 15 * 60_000, onProgress = () => {} } = {}) {
  const started = performance.now()
  const child = fork(join(SUITE_DIR, 'lib/host.mjs'), [name, String(scale)], {
    execArgv: ['--expose-gc'],
    env: { ...process.env, ...PART_ENV[name], ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  let result = null
  let stderr = ''
  let stderrLines = 0
  let pending = ''
  child.on('message', (message) => {
    result = message
  })
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop()
    for (const line of lines) onProgress(line)
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => {
    stderrLines += chunk.split('\n').length - 1
    stderr = (stderr + chunk).slice(-4000)
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  return new Promise((resolvePart) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const seconds = (performance.now() - started) / 1000
      const exit = signal ? `signal ${signal}` : `code ${code}`
      if (result === null || code !== 0) {
        const crashed = timedOut ? `timed out after ${timeoutMs / 1000} s (hang?)` : result === null ? `died (${exit}) before reporting` : `exited with ${exit}`
        resolvePart({
          ...(result ?? { figures: {}, checks: [], lines: [], failures: [] }),
          crashed,
          seconds,
          exit,
          stderr,
          stderrLines,
        })
        return
      }
      resolvePart({ ...result, seconds, exit, stderr, stderrLines })
    })
  })
}

/** Whether a part's result met every target. */
export function passed(result) {
  return !result.crashed && result.checks.length > 0 && result.checks.every((c) => c.pass)
}

/** Share of queries whose exact top-k (ties within tolerance) the results recover. */
export function recallAt(results, exact, k) {
  let hits = 0
  let wanted = 0
  for (let q = 0; q < exact.length; q++) {
    const want = exact.get(q)
    const have = results.get(q)
    const n = Math.min(k, want.distances.length)
    const kth = want.distances[n - 1]
    wanted += n
    for (const d of have.distances) if (d <= kth + 1e-5 * Math.max(1, Math.abs(kth))) hits++
  }
  return hits / wanted
}
