import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
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

  it('a default export holds every public export: `import vecdex from "vecdex"` and `require("vecdex").default`', async () => {
    const require = createRequire(resolve(root, 'package.json'))
    const cjs = require('vecdex')
    const names = Object.keys(cjs).filter((name) => name !== 'default' && name !== '__esModule')
    expect(names).toEqual(expect.arrayContaining(['FlatIndex', 'HnswIndex', 'MultiVectorIndex', 'FdeEncoder', 'KeyFilter', 'SearchResults', 'VecdexError', 'configure', 'distance', 'chamfer']))
    const esm = await import(resolve(root, 'dist', 'esm.mjs'))
    for (const vecdex of [cjs.default, esm.default]) {
      expect(vecdex).toBeTypeOf('object')
      for (const name of names) expect(vecdex[name], name).toBe(cjs[name])
    }
    // Every named ESM export is on the default object too.
    for (const name of Object.keys(esm).filter((n) => n !== 'default')) expect(esm.default[name], name).toBe(esm[name])
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "import vecdex from 'vecdex'; const i = new vecdex.FlatIndex({ dimensions: 2 }); i.addSync([7], [[1, 0]]); console.log(i.searchSync([1, 0], { k: 1 }).get(0).numberKeys()[0], typeof vecdex.configure)"],
      { cwd: root, encoding: 'utf8' },
    )
    expect(out.trim()).toBe('7 function')
  })

  it('benchmark-only methods are off the public surface', async () => {
    const { FlatIndex } = await import(resolve(root, 'dist', 'esm.mjs'))
    expect('measureRustSearchNanos' in FlatIndex.prototype).toBe(false)
    for (const file of readdirSync(resolve(root, 'dist')).filter((f) => f.endsWith('.d.ts') || f.endsWith('.d.mts'))) {
      expect(readFileSync(resolve(root, 'dist', file), 'utf8'), file).not.toMatch(/measureRustSearchNanos/)
    }
    // The overhead benchmark reaches it through the raw native module.
    const native = createRequire(resolve(root, 'package.json'))('./index.js')
    expect(typeof native.NativeFlatIndex.prototype.measureRustSearchNanos).toBe('function')
  })
})
