/**
 * Child process of the crash-safety part's collection check:
 * `node collection-saver-child.mjs <A file> <B file> <target> <sync|async>`.
 * Loads collections A and B (each: index, ids, texts, metadata), prints "ready", then saves B, A,
 * B, A, … over <target> for ever (with saveSync, or with `await save`) until the parent SIGKILLs
 * it at a random moment. Before save number i (from 0) it prints "save i": the parent times its
 * kill from these lines, and knows which save was in progress when the kill landed. (stdout to
 * a pipe is synchronous on Linux: the line is in the pipe before the save starts.)
 */
import { vecdex } from './common.mjs'

const [aFile, bFile, target, mode] = process.argv.slice(2)
const collections = [vecdex.Collection.loadSync(bFile), vecdex.Collection.loadSync(aFile)]
process.stdout.write('ready\n')
for (let i = 0; ; i++) {
  const collection = collections[i % 2]
  process.stdout.write(`save ${i}\n`)
  if (mode === 'sync') collection.saveSync(target)
  else await collection.save(target)
}
