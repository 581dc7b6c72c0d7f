// The `vecdex` command line as a user runs it (a child process per call): build from each input
// format, query (with recall against a ground-truth file), info (with --verify), --help and
// --json everywhere, and typed error codes with clean exit codes for bad files and arguments.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FlatIndex, inspectIndexFileSync } from '../dist/index.js'
import { fvecs, npyFile, randomMatrix, runCli } from './helpers'

const dir = mkdtempSync(join(tmpdir(), 'vecdex-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const vecdex = runCli

const DIM = 12
const N = 800
const base = randomMatrix(N, DIM, 11)
const file = (name: string) => join(dir, name)

function ivecs(rows: number[][]): Buffer {
  const parts = rows.map((row) => {
    const b = Buffer.alloc(4 + 4 * row.length)
    b.writeInt32LE(row.length, 0)
    row.forEach((x, j) => b.writeInt32LE(x, 4 + 4 * j))
    return b
  })
  return Buffer.concat(parts)
}

/** A NumPy 1.0 file of this shape. */
function npy(descr: string, shape: number[], data: Buffer, fortran = false): Buffer {
  return npyFile(descr, `${shape.join(', ')}${shape.length === 1 ? ',' : ''}`, data, fortran)
}

writeFileSync(file('base.fvecs'), fvecs(base, DIM))
writeFileSync(file('queries.fvecs'), fvecs(base.slice(0, 20 * DIM), DIM))
// Each query is a base row, so its own row number is its nearest neighbour.
writeFileSync(file('truth.ivecs'), ivecs(Array.from({ length: 20 }, (_, i) => [i])))

describe('vecdex command line', () => {
  it('prints help and version, and refuses unknown commands and options with exit code 2', () => {
    const top = vecdex('--help')
    expect(top.status).toBe(0)
    for (const command of ['build', 'query', 'info', 'bench']) expect(top.stdout).toContain(command)
    const version = JSON.parse(readFileSync(resolve(__dirname, '..', 'package.json'), 'utf8')).version
    expect(vecdex('--version').stdout.trim()).toBe(version)
    for (const command of ['build', 'query', 'info', 'bench']) {
      const help = vecdex(command, '--help')
      expect(help.status, command).toBe(0)
      expect(help.stdout).toMatch(/Usage: vecdex /)
    }
    expect(vecdex('frobnicate').status).toBe(2)
    const badOption = vecdex('build', file('base.fvecs'), '--output', file('x.vdx'), '--nope', '--json')
    expect(badOption.status).toBe(2)
    expect(badOption.json.error.code).toBe('ERR_USAGE')
    expect(vecdex('build', file('base.fvecs'), '--json').json.error.code).toBe('ERR_USAGE') // no --output
    expect(vecdex('query', file('x.vdx'), '-k', 'ten', '--vector', '[1]').status).toBe(2)
  })

  it('builds an HNSW index from .fvecs, describes it, and finds every query with recall 1', () => {
    const built = vecdex('build', file('base.fvecs'), '-o', file('hnsw.vdx'), '--metric', 'l2sq', '--m', '8', '--ef-construction', '64', '--batch', '300', '--json')
    expect(built.status, built.stderr).toBe(0)
    expect(built.json).toMatchObject({ index: 'hnsw', vectors: N, dimensions: DIM, metric: 'l2sq' })

    const info = vecdex('info', file('hnsw.vdx'), '--verify', '--json')
    expect(info.status, info.stderr).toBe(0)
    expect(info.json).toMatchObject({ kind: 'hnsw', class: 'HnswIndex', count: N, dimensions: DIM, metric: 'l2sq', formatVersion: 1 })
    expect(info.json.settings).toMatchObject({ m: 8, efConstruction: 64 })
    expect(info.json.verified.ok).toBe(true)
    expect(info.json.sections.map((s: { name: string }) => s.name)).toContain('layer 0')
    const text = vecdex('info', file('hnsw.vdx'))
    expect(text.stdout).toContain('HnswIndex file, format v1')
    expect(text.stdout).toContain('efConstruction 64')

    for (const view of [[], ['--view']]) {
      const query = vecdex('query', file('hnsw.vdx'), '--queries', file('queries.fvecs'), '-k', '1', '--groundtruth', file('truth.ivecs'), '--json', ...view)
      expect(query.status, query.stderr).toBe(0)
      expect(query.json.queries).toBe(20)
      expect(query.json.recall).toBe(1)
      expect(query.json.results[3].keys[0]).toBe(3)
      expect(query.json.results[3].distances[0]).toBeCloseTo(0, 5)
    }
    const printed = vecdex('query', file('hnsw.vdx'), '--queries', file('queries.fvecs'), '-k', '3', '--show', '2')
    expect(printed.status).toBe(0)
    expect(printed.stdout).toMatch(/^query 0: 0 \(0\)/)
    expect(printed.stdout).toContain('18 more queries')
  })

  it('reads .npy (float32, float64) and JSON lines with keys, and answers like the library', async () => {
    const f32 = Buffer.from(base.buffer, base.byteOffset, base.byteLength)
    writeFileSync(file('base-f4.npy'), npy('<f4', [N, DIM], f32))
    writeFileSync(file('base-f8.npy'), npy('<f8', [N, DIM], Buffer.from(Float64Array.from(base).buffer)))
    const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ key: 1000 + i, vector: Array.from(base.subarray(i * DIM, (i + 1) * DIM)) }))
    writeFileSync(file('base.jsonl'), `${lines.join('\n')}\n\n`)

    const library = new FlatIndex({ dimensions: DIM, metric: 'cosine' })
    library.addSync(Array.from({ length: N }, (_, i) => i), base)
    const expected = library.searchSync(base.subarray(5 * DIM, 6 * DIM), { k: 5 }).get(0).numberKeys()
    library.close()
    const vector = JSON.stringify(Array.from(base.subarray(5 * DIM, 6 * DIM)))

    for (const input of ['base-f4.npy', 'base-f8.npy', 'base.jsonl']) {
      const out = file(`${input}.vdx`)
      const built = vecdex('build', file(input), '-o', out, '--index', 'flat', '--json')
      expect(built.status, built.stderr).toBe(0)
      expect(inspectIndexFileSync(out)).toMatchObject({ kind: 'flat', count: N, dimensions: DIM, metric: 'cosine' })
      const query = vecdex('query', out, '--vector', vector, '-k', '5', '--json')
      expect(query.status, query.stderr).toBe(0)
      const offset = input.endsWith('.jsonl') ? 1000 : 0
      expect(query.json.results[0].keys).toEqual(expected.map((k: number) => k + offset))
    }
  })

  it('reports bad input files with typed codes and exit code 1, never a crash', () => {
    const good = fvecs(base.slice(0, 10 * DIM), DIM)
    writeFileSync(file('truncated.fvecs'), good.subarray(0, good.length - 3))
    const wrongDim = Buffer.from(good)
    wrongDim.writeInt32LE(DIM + 1, 5 * (4 + 4 * DIM))
    writeFileSync(file('ragged.fvecs'), wrongDim)
    writeFileSync(file('nan.fvecs'), fvecs(Float32Array.from([1, NaN, 3]), 3))
    writeFileSync(file('empty.fvecs'), Buffer.alloc(0))
    writeFileSync(file('magic.npy'), Buffer.from('not numpy at all'))
    writeFileSync(file('fortran.npy'), npy('<f4', [3, 2], Buffer.alloc(24), true))
    writeFileSync(file('short.npy'), npy('<f4', [3, 2], Buffer.alloc(20)))
    writeFileSync(file('complex.npy'), npy('<c8', [1, 2], Buffer.alloc(16)))
    writeFileSync(file('ragged.jsonl'), '[1, 2, 3]\n[1, 2]\n')
    writeFileSync(file('text.jsonl'), '[1, 2, 3]\n{"vector": [1, "x", 3]}\n')
    writeFileSync(file('keys.jsonl'), '{"key": 1, "vector": [1, 2]}\n[3, 4]\n')
    writeFileSync(file('negative-key.jsonl'), '{"key": -4, "vector": [1, 2]}\n')
    writeFileSync(file('vectors.csv'), '1,2,3\n')
    const cases: Array<[string, RegExp]> = [
      ['truncated.fvecs', /not a whole number of 52-byte rows/],
      ['ragged.fvecs', /row 5 has dimension 13/],
      ['nan.fvecs', /row 0, component 1 is NaN/],
      ['empty.fvecs', /empty/],
      ['magic.npy', /bad magic/],
      ['fortran.npy', /Fortran/],
      ['short.npy', /truncated or damaged/],
      ['complex.npy', /dtype <c8 is not supported/],
      ['ragged.jsonl', /line 2: 2 components/],
      ['text.jsonl', /line 2: component 1/],
      ['keys.jsonl', /line 2: no key/],
      ['negative-key.jsonl', /key -4/],
      ['vectors.csv', /unknown vector format/],
    ]
    for (const [name, message] of cases) {
      const r = vecdex('build', file(name), '-o', file('never.vdx'), '--json')
      expect(r.status, name).toBe(1)
      expect(r.json.error.code, name).toBe('ERR_INPUT_FORMAT')
      expect(r.json.error.message, name).toMatch(message)
    }
    const missing = vecdex('build', file('missing.fvecs'), '-o', file('never.vdx'), '--json')
    expect(missing.json.error.code).toBe('ERR_IO')
    expect(() => readFileSync(file('never.vdx'))).toThrow()
  })

  it('reports bad index files and mismatched queries with the library codes', () => {
    const built = vecdex('build', file('base.fvecs'), '-o', file('small.vdx'), '--index', 'flat', '--limit', '50')
    expect(built.status, built.stderr).toBe(0)
    writeFileSync(file('garbage.vdx'), 'definitely not an index')
    expect(vecdex('info', file('garbage.vdx'), '--json').json.error.code).toBe('ERR_CORRUPT_FILE')
    const text = vecdex('info', file('garbage.vdx'))
    expect(text.status).toBe(1)
    expect(text.stderr).toMatch(/^vecdex info: ERR_CORRUPT_FILE: /)
    // A damaged payload passes the header-only description and fails --verify.
    const bytes = readFileSync(file('small.vdx'))
    bytes[bytes.length - 10] ^= 0x40
    writeFileSync(file('damaged.vdx'), bytes)
    expect(vecdex('info', file('damaged.vdx'), '--json').status).toBe(0)
    const verify = vecdex('info', file('damaged.vdx'), '--verify', '--json')
    expect(verify.status).toBe(1)
    expect(verify.json.error.code).toBe('ERR_CORRUPT_FILE')
    expect(vecdex('query', file('damaged.vdx'), '--vector', JSON.stringify(Array(DIM).fill(1)), '--json').json.error.code).toBe('ERR_CORRUPT_FILE')
    expect(vecdex('info', file('nothing-here.vdx'), '--json').json.error.code).toBe('ERR_IO')
    const mismatch = vecdex('query', file('small.vdx'), '--vector', '[1, 2, 3]', '--json')
    expect(mismatch.status).toBe(1)
    expect(mismatch.json.error.code).toBe('ERR_DIMENSION_MISMATCH')
    expect(vecdex('query', file('small.vdx'), '--vector', '[1, 2, 3]', '--view', '--json').json.error.code).toBe('ERR_USAGE')
  })
})
