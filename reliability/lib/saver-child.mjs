/**
 * Child process of the crash-safety part: `node saver-child.mjs <A file> <B file> <target> <sync|async>`.
 * Loads indexes A and B, prints "ready", then saves B, A, B, A, … over <target> for ever (with
 * saveSync, or with `await save`) until the parent SIGKILLs it at a random moment.
 */
import { vecdex } from './common.mjs'

const [aFile, bFile, target, mode] = process.argv.slice(2)
const indexes = [vecdex.HnswIndex.loadSync(bFile), vecdex.HnswIndex.loadSync(aFile)]
process.stdout.write('ready\n')
for (let i = 0; ; i++) {
  const index = indexes[i % 2]
  if (mode === 'sync') index.saveSync(target)
  else await index.save(target)
}
