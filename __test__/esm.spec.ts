import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(__dirname, '..')

describe('package entry points', () => {
  it('CommonJS require and ESM import expose the same API', async () => {
    const require = createRequire(resolve(root, 'package.json'))
    const cjs = require('vecdex')
    const esm = await import(resolve(root, 'dist', 'esm.mjs'))
    for (const name of ['FlatIndex', 'SearchResults', 'distance', 'distanceMatrix', 'distanceMatrixSync', 'capabilities', 'VecdexError']) {
      expect(typeof cjs[name], name).toBe('function')
      expect(esm[name], name).toBe(cjs[name])
    }
  })

  it('`import from "vecdex"` works from a plain Node ES module', () => {
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "import { FlatIndex } from 'vecdex'; const i = new FlatIndex({ dimensions: 2 }); i.addSync([1], [[1, 0]]); console.log(i.searchSync([1, 0], { k: 1 }).get(0).numberKeys()[0])"],
      { cwd: root, encoding: 'utf8' },
    )
    expect(out.trim()).toBe('1')
  })
})
