/**
 * vecdex reliability suite: runs the parts below against the BUILT package (dist/ and the .node
 * binary; it never builds), prints a report of each part's figures against its targets, writes
 * reliability/report.json, and exits 1 when any figure misses its target (2 on a usage error).
 *
 *   1 bad-input     every public method fed bad input yields its expected typed error code
 *   2 crash-safety  a save SIGKILLed at a random moment leaves the old or the new index, whole
 *   3 loader-fuzz   damaged, truncated and mutated files are refused, never half-loaded
 *   4 concurrency   concurrent async adds and searches lose nothing and keep recall
 *   5 lifecycle     10,000 create/use/close cycles do not grow RSS; closed indexes refuse all
 *   6 panics        a Rust panic at every native entry point becomes ERR_INTERNAL
 *   7 portability   results agree across SIMD levels; parts 1, 3, 6 pass on scalar kernels
 *   8 graph-health  GloVe with 20% copies through 50,000 upserts, removals and compactions:
 *                   every vector reachable and found by its own query, recall as a fresh build
 *
 * Usage: npm run test:reliability [-- options]   (node --expose-gc reliability/run.mjs)
 *   --only <part>[,<part>…]  run these parts (names or numbers above); repeatable
 *   --quick[=N]              divide counts and durations by N (default 10), count targets too:
 *                            for development only, the default run is the full targets
 *
 * Each part runs in a child process of its own (lib/host.mjs), so a crash or a hang (killed
 * after PART_TIMEOUT_MS) is reported as that part's failure instead of ending the run.
 */
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { native, passed, spawnPart, SUITE_DIR } from './lib/common.mjs'

const PARTS = ['bad-input', 'crash-safety', 'loader-fuzz', 'concurrency', 'lifecycle', 'panics', 'portability', 'graph-health']
const PART_TIMEOUT_MS = 5 * 60_000
const FAILURES_SHOWN = 10

function usage(message) {
  process.stderr.write(`${message}\nusage: node reliability/run.mjs [--only part[,part…]] [--quick[=N]]\nparts: ${PARTS.map((p, i) => `${i + 1} ${p}`).join(', ')}\n`)
  process.exit(2)
}

function parseArgs(argv) {
  const only = []
  let divisor = 1
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length)
      if (!value) usage('--only needs a part')
      for (const item of value.split(',')) {
        const part = /^\d+$/.test(item) ? PARTS[Number(item) - 1] : item
        if (!PARTS.includes(part)) usage(`unknown part ${JSON.stringify(item)}`)
        only.push(part)
      }
    } else if (arg === '--quick' || arg.startsWith('--quick=')) {
      divisor = arg === '--quick' ? 10 : Number(arg.slice('--quick='.length))
      if (!(divisor >= 1)) usage('--quick=N needs N ≥ 1')
    } else usage(`unknown option ${JSON.stringify(arg)}`)
  }
  return { parts: only.length > 0 ? PARTS.filter((p) => only.includes(p)) : PARTS, scale: 1 / divisor, divisor }
}

function formatSeconds(seconds) {
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
}

function formatValue(value) {
  return typeof value === 'number' && !Number.isInteger(value) ? String(Number(value.toPrecision(6))) : String(value)
}

function printPart(number, name, result) {
  const status = result.crashed ? `FAIL (${result.crashed})` : passed(result) ? 'PASS' : 'FAIL'
  console.log(`\n${number}. ${result.title ?? name} — ${status}, ${formatSeconds(result.seconds)}`)
  for (const line of result.lines) console.log(`   ${line}`)
  for (const c of result.checks) {
    console.log(`   ${c.pass ? '✓' : '✗'} ${c.label}: ${formatValue(c.value)} (target ${c.op} ${formatValue(c.target)})`)
  }
  if (result.failures.length > 0) {
    console.log(`   failures (${result.failures.length}${result.failures.length > FAILURES_SHOWN ? `, first ${FAILURES_SHOWN}` : ''}):`)
    for (const f of result.failures.slice(0, FAILURES_SHOWN)) console.log(`     - ${f}`)
  }
  if (!passed(result) && result.stderr) {
    console.log(`   stderr (last lines):`)
    for (const line of result.stderr.trimEnd().split('\n').slice(-15)) console.log(`     | ${line}`)
  }
}

const { parts, scale, divisor } = parseArgs(process.argv.slice(2))
const started = performance.now()
const caps = native.capabilities()
const mode = divisor === 1 ? 'full targets' : `QUICK run (counts and durations ÷ ${divisor}; development only)`
console.log(`vecdex reliability suite — ${mode}`)
console.log(`node ${process.version} · ${process.platform} ${process.arch} · ${cpus().length} CPUs · kernels ${caps.scanKernel} · VECDEX_SIMD=${process.env.VECDEX_SIMD ?? '(unset)'}`)

const results = {}
for (const [i, name] of parts.entries()) {
  console.log(`▶ [${i + 1}/${parts.length}] ${name}`)
  results[name] = await spawnPart(name, { scale, timeoutMs: PART_TIMEOUT_MS, onProgress: (line) => console.log(`    ${line}`) })
}
const totalSeconds = (performance.now() - started) / 1000

console.log(`\n${'═'.repeat(78)}\nvecdex reliability report — ${mode}\n${'═'.repeat(78)}`)
for (const name of parts) printPart(PARTS.indexOf(name) + 1, name, results[name])
const failed = parts.filter((name) => !passed(results[name]))
console.log(`\n${'═'.repeat(78)}`)
console.log(
  failed.length === 0
    ? `RESULT: PASS — ${parts.length}/${parts.length} parts met every target in ${formatSeconds(totalSeconds)}`
    : `RESULT: FAIL — ${failed.join(', ')} missed a target (${parts.length - failed.length}/${parts.length} passed) in ${formatSeconds(totalSeconds)}`,
)

const reportPath = join(SUITE_DIR, 'report.json')
const report = {
  date: new Date().toISOString(),
  mode: divisor === 1 ? 'full' : `quick/${divisor}`,
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
  cpus: cpus().length,
  capabilities: caps,
  vecdexSimd: process.env.VECDEX_SIMD ?? null,
  totalSeconds,
  passed: failed.length === 0,
  parts: Object.fromEntries(parts.map((name) => [name, { passed: passed(results[name]), ...results[name] }])),
}
writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`)
console.log(`machine-readable results: reliability/report.json`)
process.exit(failed.length === 0 ? 0 : 1)
