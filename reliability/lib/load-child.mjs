/**
 * Child process of the loader part: `node load-child.mjs <FlatIndex|HnswIndex|MultiVectorIndex> <file>`.
 * Loads the image in <file> with the class's fromBufferSync and prints one JSON line:
 * { code, ms, growthMB } — the outcome's label, the load's duration, and how far the peak
 * resident memory rose above what it was before the load. Runs crafted images whose load might
 * abort the process or exhaust memory, so the parent survives to report it.
 */
import { readFileSync } from 'node:fs'
import { labelOf, vecdex } from './common.mjs'

const [className, file] = process.argv.slice(2)
const image = readFileSync(file)
const baseline = process.resourceUsage().maxRSS
const started = performance.now()
let code = 'OK'
try {
  vecdex[className].fromBufferSync(image).close()
} catch (error) {
  code = labelOf(error)
}
const ms = performance.now() - started
const growthMB = (process.resourceUsage().maxRSS - baseline) / 1024
process.stdout.write(`${JSON.stringify({ code, ms, growthMB })}\n`)
