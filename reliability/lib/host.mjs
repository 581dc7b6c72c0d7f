/**
 * Child-process entry of one part: `node --expose-gc reliability/lib/host.mjs <part> <scale>`.
 * Imports reliability/<part>.mjs, runs it and sends its result to the parent over IPC. Running
 * each part in a process of its own keeps a crash (a signal, an abort) from taking the runner
 * down: the runner reports it as the part's failure instead.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SUITE_DIR } from './common.mjs'

const [name, scaleArg] = process.argv.slice(2)
const part = await import(pathToFileURL(join(SUITE_DIR, `${name}.mjs`)).href)
const result = await part.run({ scale: Number(scaleArg) })
process.send({ title: part.title, ...result }, () => process.exit(0))
