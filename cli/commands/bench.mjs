// vecdex bench: the benchmark harness (benchmark/run.mjs) in a child Node process started with
// --expose-gc, so engines are measured after a full collection; the ann suite by default. The
// child runs in the caller's folder: results, the Python venv and peer installs go to
// ./vecdex-results or --out (benchmark/workspace.mjs), never into the installed package.

import { spawn } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { packageRoot } from '../main.mjs'

export function usage() {
  return 'vecdex bench --help prints the benchmark options'
}

export async function run(args) {
  const harness = path.join(packageRoot, 'benchmark', 'run.mjs')
  const withSuite = args.some((a) => a === '-s' || a === '--suite' || a.startsWith('--suite=')) || args.includes('--help') || args.includes('-h') ? args : ['--suite', 'ann', ...args]
  const child = spawn(process.execPath, ['--expose-gc', harness, ...withSuite], {
    stdio: 'inherit',
    env: { ...process.env, VECDEX_BENCH_COMMAND: 'vecdex bench' },
  })
  const forward = (signal) => child.kill(signal)
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      // A child killed by a signal exits the way a shell reports it: 128 + the signal's number.
      resolve(code ?? 128 + (os.constants.signals[signal] ?? 0))
    })
  })
}
