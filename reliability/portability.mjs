/**
 * Part 7, portability across SIMD levels: the deterministic workload of
 * lib/portability-workload.mjs (FlatIndex and HnswIndex under cosine, dot and l2sq on 67-d data,
 * the multi-vector index and FDE encodings, with save/load round trips; fixed seeds,
 * VECDEX_THREADS=1) runs in child processes with VECDEX_SIMD unset (the best kernels of this
 * CPU), `avx2` and `scalar` (on x64; elsewhere unset and `scalar`). Then parts 1 (bad input),
 * 3 (loader robustness, quick counts) and 6 (panics) run again in children under
 * VECDEX_SIMD=scalar.
 *
 * Proves: every level returns the same keys and distances equal within 1e-4 relative
 * (|a − b| / max(1, |a|, |b|): relative, absolute below 1, since distances like 1 − cos reach
 * 0), VECDEX_SIMD selects the kernel it names, round trips give identical results at every
 * level, and the bad-input, loader and panic guarantees hold on the scalar kernels too.
 *
 * Targets: 0 differing keys; max distance difference ≤ 1e-4 per level; 0 differing round trips;
 * each level's kernel as requested; parts 1, 3 and 6 pass under VECDEX_SIMD=scalar.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createResult, passed, progress, spawnPart, SUITE_DIR } from './lib/common.mjs'

export const title = 'portability'

const LEVELS = process.arch === 'x64' ? [undefined, 'avx2', 'scalar'] : [undefined, 'scalar']
const TOLERANCE = 1e-4
const SCALAR_PARTS = [
  ['bad-input', 1],
  ['loader-fuzz', 0.1],
  ['panics', 1],
]

async function workload(level) {
  const env = { ...process.env, VECDEX_THREADS: '1' }
  if (level) env.VECDEX_SIMD = level
  else delete env.VECDEX_SIMD
  const { stdout } = await promisify(execFile)(process.execPath, [join(SUITE_DIR, 'lib/portability-workload.mjs')], { env, maxBuffer: 1 << 28 })
  return JSON.parse(stdout)
}

/** Differences of `other` from `base`: differing keys and the largest distance difference. */
function compare(base, other) {
  let keys = 0
  let maxDiff = 0
  let worst = ''
  for (const [name, want] of Object.entries(base.results)) {
    const got = other.results[name]
    keys += want.keys.filter((key, i) => key !== got.keys[i]).length + Math.abs(want.keys.length - got.keys.length)
    want.distances.forEach((a, i) => {
      const b = got.distances[i]
      const diff = Math.abs(a - b) / Math.max(1, Math.abs(a), Math.abs(b))
      if (!(diff <= maxDiff)) {
        maxDiff = Number.isNaN(diff) ? Infinity : diff
        worst = name
      }
    })
  }
  return { keys, maxDiff, worst }
}

export async function run({ scale }) {
  const r = createResult()
  const runs = []
  for (const level of LEVELS) {
    progress(`workload with VECDEX_SIMD=${level ?? 'unset'}`)
    runs.push({ level: level ?? 'unset', requested: level, ...(await workload(level)) })
  }
  const [base] = runs
  const levels = {}
  let wrongKernel = 0
  for (const run of runs) {
    const { keys, maxDiff, worst } = compare(base, run)
    levels[run.level] = { kernel: run.kernel, differingKeys: keys, maxRelativeDistanceDifference: maxDiff, worst, roundTripsDiffering: run.roundTripsDiffering }
    if (run.requested && run.kernel !== run.requested) wrongKernel++
    const values = Object.values(run.results).reduce((n, x) => n + x.distances.length, 0)
    r.line(`VECDEX_SIMD=${run.level.padEnd(8)} kernel ${run.kernel.padEnd(7)} ${values} values: keys differing ${keys}, max distance difference ${maxDiff.toExponential(2)}${worst ? ` (${worst})` : ''}, round trips differing ${run.roundTripsDiffering.length}`)
    if (run !== base) {
      r.check(`keys differing from the default level (${run.level})`, keys, '==', 0)
      r.check(`max relative distance difference (${run.level})`, Number(maxDiff.toPrecision(3)), '<=', TOLERANCE)
    }
    r.check(`round trips giving different results (${run.level})`, run.roundTripsDiffering.length, '==', 0)
  }
  r.figure('levels', levels)
  r.check('levels whose kernel is not the one VECDEX_SIMD requested', wrongKernel, '==', 0)

  const scalarParts = {}
  for (const [name, partScale] of SCALAR_PARTS) {
    progress(`part ${name} under VECDEX_SIMD=scalar`)
    const result = await spawnPart(name, { scale: partScale * scale, env: { VECDEX_SIMD: 'scalar' } })
    scalarParts[name] = { passed: passed(result), crashed: result.crashed ?? null, checks: result.checks, failures: result.failures.slice(0, 10) }
    const missed = result.checks.filter((c) => !c.pass).map((c) => `${c.label}: ${c.value}`)
    r.line(`under VECDEX_SIMD=scalar, ${name}${partScale < 1 ? ' (quick counts)' : ''}: ${passed(result) ? 'pass' : `FAIL${result.crashed ? ` (${result.crashed})` : ''}`}, ${result.checks.length - missed.length}/${result.checks.length} targets met in ${result.seconds.toFixed(1)} s`)
    for (const line of missed) r.line(`  missed: ${line}`)
    for (const failure of result.failures.slice(0, 3)) r.line(`  - ${failure}`)
    r.check(`${name} passes under VECDEX_SIMD=scalar`, passed(result) ? 1 : 0, '==', 1)
  }
  r.figure('scalarParts', scalarParts)
  return r.result
}
