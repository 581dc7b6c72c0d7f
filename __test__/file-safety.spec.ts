// Index files against what else a path can name and against other programs, through the
// package (issue 16, findings 3, 4, 9 and 10). Cases that could hang a process (opening a
// FIFO), kill it (SIGBUS from a view's truncated file) or need their own VECDEX_THREADS run in
// a child process under a timeout (file-safety-child.cjs), so a regression fails instead of
// hanging the run.
import { spawnSync, execFileSync } from 'node:child_process'
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FlatIndex, HnswIndex, MultiVectorIndex } from '../dist/index.js'
import { codeOf } from './helpers'

const native = require('../index.js') as { MAX_THREADS: number }

const dir = mkdtempSync(join(tmpdir(), 'vecdex-file-safety-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const child = resolve(__dirname, 'file-safety-child.cjs')

function runChild(spec: object, env: Record<string, string> = {}): any {
  const r = spawnSync(process.execPath, [child, JSON.stringify(spec)], {
    encoding: 'utf8',
    timeout: 30_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, ...env },
  })
  expect(r.signal, `the child was killed (${r.signal}): hung or crashed. stderr: ${r.stderr}`).toBeNull()
  expect(r.status, r.stderr).toBe(0)
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!)
}

function caseDir(name: string): string {
  const d = join(dir, name.replace(/\W+/g, '-'))
  mkdirSync(d, { recursive: true })
  return d
}

describe('loading a FIFO fails at once with ERR_IO, and never starves other calls', () => {
  // 8 task threads used to block on the FIFOs' opens, and every async call of every index
  // queued behind them forever.
  for (const copies of [1, 4, 12]) {
    it(`${copies * 10} concurrent async loads of FIFOs (every loader), with a search and a real load racing them`, () => {
      const out = runChild({ mode: 'fifoLoads', dir: caseDir(`fifo-${copies}`), copies })
      expect(out.loads).toHaveLength(copies * 10)
      for (const [name, code] of out.loads) expect(code, name).toBe('ERR_IO')
      expect(out.search).toBe('ok')
      expect(out.load).toBe('ok')
      for (const [name, code] of Object.entries(out.sync)) expect(code, name).toBe('ERR_IO')
    })
  }
})

describe('saving over something that is not a regular file', () => {
  const d = caseDir('save-targets')
  const fifo = join(d, 'fifo')
  execFileSync('mkfifo', [fifo])
  const folder = join(d, 'folder')
  mkdirSync(folder)
  const socket = join(d, 'socket')
  const server = createServer()
  const listening = new Promise<void>((done) => server.listen(socket, done))
  afterAll(() => server.close())
  symlinkSync(fifo, join(d, 'to-fifo'))
  symlinkSync('to-fifo', join(d, 'to-to-fifo'))
  symlinkSync(folder, join(d, 'to-folder'))
  const targets = ['fifo', 'folder', 'socket', 'to-fifo', 'to-to-fifo', 'to-folder']
  const identity = (p: string) => {
    const l = lstatSync(p)
    const s = statSync(p)
    return [l.ino, l.mode, s.ino, s.mode, l.isSymbolicLink() ? readlinkSync(p) : null]
  }
  const indexes = async () => {
    const flat = new FlatIndex({ dimensions: 4, metric: 'l2sq' })
    await flat.add([1, 2], new Float32Array(8).fill(0.5))
    const hnsw = new HnswIndex({ dimensions: 4, metric: 'l2sq' })
    await hnsw.add([1, 2], new Float32Array(8).fill(0.5))
    const multi = new MultiVectorIndex({ dimensions: 4, fde: { numRepetitions: 2, numSimhashProjections: 2, projectionDimension: 4 } })
    await multi.add([1], [new Float32Array(8).fill(0.5)])
    return { FlatIndex: flat, HnswIndex: hnsw, MultiVectorIndex: multi }
  }

  it('is ERR_IO (sync and async, every index kind) and leaves the target as it was', async () => {
    await listening
    for (const [kind, index] of Object.entries(await indexes())) {
      for (const target of targets) {
        const p = join(d, target)
        const before = identity(p)
        expect(await codeOf(() => index.save(p)), `${kind}.save over ${target}`).toBe('ERR_IO')
        expect(await codeOf(() => index.saveSync(p)), `${kind}.saveSync over ${target}`).toBe('ERR_IO')
        expect(identity(p), `${kind}: ${target} unchanged`).toEqual(before)
      }
      index.close()
    }
  })

  it('through a symbolic link writes the file it points to, and the link stays', async () => {
    for (const [kind, index] of Object.entries(await indexes())) {
      const real = join(d, `${kind}-real.vdx`)
      writeFileSync(real, 'old')
      const link = join(d, `${kind}-link.vdx`)
      symlinkSync(`${kind}-real.vdx`, link)
      await index.save(link)
      expect(lstatSync(link).isSymbolicLink()).toBe(true)
      expect(readFileSync(real).subarray(0, 8).toString()).toBe('VECDEXIX')
      const loaded = await (index.constructor as typeof FlatIndex).load(link)
      expect(loaded.size).toBe(index.size)
      loaded.close()
      index.close()
    }
  })
})

describe('VECDEX_THREADS beyond MAX_THREADS (or not a count) is ERR_INVALID_ARGUMENT', () => {
  it('exports the limit', () => {
    expect(native.MAX_THREADS).toBe(1024)
  })
  for (const value of ['1025', '5000', '0', '-2', 'many']) {
    it(`VECDEX_THREADS=${value}: every async call fails typed, and no threads pile up`, () => {
      const out = runChild({ mode: 'threads' }, { VECDEX_THREADS: value })
      expect(out.add).toBe('ERR_INVALID_ARGUMENT')
      expect(out.search).toBe('ERR_INVALID_ARGUMENT')
      expect(out.flatSearch).toBe('ERR_INVALID_ARGUMENT')
      expect(out.load).toBe('ERR_INVALID_ARGUMENT')
      expect(out.osThreads).toBeLessThan(100)
    })
  }
  it('VECDEX_THREADS=2 still works', () => {
    const out = runChild({ mode: 'threads' }, { VECDEX_THREADS: '2' })
    expect([out.add, out.search, out.flatSearch, out.load]).toEqual(['ok', 'ok', 'ok', 'ERR_IO'])
  })
})

describe('a view whose file another program changes in place', () => {
  for (const change of ['truncate to zero', 'truncate to half', 'overwrite in place']) {
    it(`${change}: every later call is ERR_IO (no SIGBUS, no garbage)`, () => {
      const out = runChild({ mode: 'viewChange', dir: caseDir(`view-${change}`), change })
      expect(out).toEqual({ searchSync: 'ERR_IO', search: 'ERR_IO', get: 'ERR_IO', stats: 'ERR_IO', save: 'ERR_IO', toBuffer: 'ERR_IO' })
    })
  }
  it('replaced by a save (rename): the view keeps answering from the file it opened', () => {
    const out = runChild({ mode: 'viewChange', dir: caseDir('view-replace'), change: 'replace by save' })
    expect(out).toEqual({ searchSync: 'ok', search: 'ok', get: 'ok', stats: 'ok', save: 'ok', toBuffer: 'ok' })
  })
})
