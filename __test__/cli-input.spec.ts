// Issue 16, finding 9 (command line) and the CLI's minor input findings: every numeric option
// of every command is range-checked, a bad one being a usage error (ERR_USAGE, exit 2) before
// any work, never ERR_INTERNAL with a stack trace; the ends of each range are accepted; huge
// k and batch sizes work on small inputs; JSON lines may start with a UTF-8 byte-order mark;
// a .npy shape that is not a tuple of integers is ERR_INPUT_FORMAT.
//
// Usage errors run in this process (cli/main.mjs's `main`, fast); runs that do work spawn
// `bin/vecdex.mjs` as a user would.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
// @ts-expect-error: plain ES module without type declarations
import { main, optionSpec } from '../cli/main.mjs'
import * as native from '../index.js'
import { fvecs, npyFile, randomMatrix } from './helpers'

const bin = resolve(__dirname, '..', 'bin', 'vecdex.mjs')
const dir = mkdtempSync(join(tmpdir(), 'vecdex-cli-input-'))
const file = (name: string) => join(dir, name)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const DIM = 12
const N = 40
const base = randomMatrix(N, DIM, 21)

const npy = (descr: string, shape: string, data: Buffer) => npyFile(descr, shape, data)

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** `main(argv)` in this process, with its console output captured. */
async function inProcess(...args: string[]): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')))
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')))
  try {
    const status = await main(args)
    return { status, stdout: out.join('\n'), stderr: err.join('\n') }
  } finally {
    log.mockRestore()
    error.mockRestore()
  }
}

/** `main` in this process with `--json`: the result or error printed, parsed. */
async function inJson(...args: string[]): Promise<Run & { json: any }> {
  const r = await inProcess(...args)
  return { ...r, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined }
}

function spawned(...args: string[]): Run & { json: any } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, VECDEX_THREADS: '2' } })
  let json
  if (args.includes('--json') && r.stdout.trim()) json = JSON.parse(r.stdout)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json }
}

beforeAll(() => {
  writeFileSync(file('base.fvecs'), fvecs(base, DIM))
  writeFileSync(file('base.npy'), npy('<f4', `${N}, ${DIM}`, Buffer.from(base.buffer)))
  const built = spawned('build', file('base.fvecs'), '-o', file('base.vdx'), '--index', 'flat', '--metric', 'l2sq')
  expect(built.status, built.stderr).toBe(0)
  const hnsw = spawned('build', file('base.fvecs'), '-o', file('hnsw.vdx'), '--metric', 'l2sq')
  expect(hnsw.status, hnsw.stderr).toBe(0)
})

const MAX_SAFE = Number.MAX_SAFE_INTEGER
const TWO_64 = 2n ** 64n

/** Each numeric option: the command, the arguments it needs besides the option, its range. */
interface NumericFlag {
  command: 'build' | 'query'
  flag: string
  min: bigint
  max: bigint
  /** Other arguments the command needs to get as far as its option checks. */
  args: () => string[]
}

const buildArgs = () => [file('base.fvecs'), '-o', file('unused.vdx')]
const queryArgs = () => [file('hnsw.vdx'), '--vector', JSON.stringify(Array.from(base.subarray(0, DIM)))]

const FLAGS: NumericFlag[] = [
  ...(
    [
      ['--m', 2n, 256n],
      ['--ef-construction', 1n, 65_536n],
      ['--ef-search', 1n, 65_536n],
      ['--seed', 0n, BigInt(MAX_SAFE)],
      ['--oversample', 1n, 1000n],
      ['--training-size', 1n, 4_294_967_295n],
      ['--limit', 1n, BigInt(MAX_SAFE)],
      ['--start-key', 0n, TWO_64 - 1n],
      ['--batch', 1n, 1n << 24n],
      ['--threads', 1n, 1024n],
    ] as const
  ).map(([flag, min, max]) => ({ command: 'build' as const, flag, min, max, args: buildArgs })),
  { command: 'build', flag: '--subspaces', min: 1n, max: 65_536n, args: () => [...buildArgs(), '--quantization', 'pq'] },
  { command: 'build', flag: '--bits', min: 1n, max: 4n, args: () => [...buildArgs(), '--quantization', 'rabitq'] },
  ...(
    [
      ['-k', 1n, 4_294_967_295n],
      ['--k', 1n, 4_294_967_295n],
      ['--ef-search', 1n, 65_536n],
      ['--limit', 1n, BigInt(MAX_SAFE)],
      ['--batch', 1n, 1n << 24n],
      ['--show', 0n, BigInt(MAX_SAFE)],
      ['--threads', 1n, 1024n],
    ] as const
  ).map(([flag, min, max]) => ({ command: 'query' as const, flag, min, max, args: queryArgs })),
]

/** Values that are not an integer in range, for an option with range [min, max]. */
function badValues(min: bigint, max: bigint): string[] {
  return [
    ...(min > 0n ? [String(min - 1n)] : []),
    '-1',
    '-0',
    String(max + 1n),
    '10000000000',
    '99999999999999999999999999999999',
    '1.5',
    `${min}.0`,
    '1e3',
    '0x10',
    '0b1',
    'NaN',
    'Infinity',
    'ten',
    '',
    ' 7',
    '7 ',
    '+7',
    '٣', // an Arabic-Indic digit
  ].filter((v) => !/^\d+$/.test(v) || BigInt(v) < min || BigInt(v) > max)
}

describe('numeric options: out of range or not an integer is a usage error (exit 2)', () => {
  it.each(FLAGS.map((f) => [`${f.command} ${f.flag}`, f] as const))('%s', async (_, { command, flag, min, max, args }) => {
    for (const value of badValues(min, max)) {
      // `--flag=value` carries values that start with a dash; a short flag takes the next one.
      const option = flag.startsWith('--') ? [`${flag}=${value}`] : [flag, value]
      const r = await inProcess(command, ...args(), ...option, '--json')
      expect(r.status, `${flag}=${JSON.stringify(value)}: ${r.stdout}`).toBe(2)
      const { error } = JSON.parse(r.stdout)
      expect(error.code).toBe('ERR_USAGE')
      expect(error.message).toContain(flag.replace(/^-k$/, '--k'))
    }
  })
})

describe('the ends of every range are accepted', () => {
  it('build: every option at its minimum, and every one at its maximum', () => {
    const low = spawned('build', file('base.fvecs'), '-o', file('low.vdx'), '--m', '2', '--ef-construction', '1', '--ef-search', '1', '--seed', '0', '--oversample', '1', '--training-size', '1', '--limit', '1', '--start-key', '0', '--batch', '1', '--threads', '1', '--quantization', 'sq8', '--json')
    expect(low.status, low.stderr).toBe(0)
    expect(low.json.vectors).toBe(1)
    const high = spawned('build', file('base.fvecs'), '-o', file('high.vdx'), '--m', '256', '--ef-construction', '65536', '--ef-search', '65536', '--seed', String(MAX_SAFE), '--oversample', '1000', '--training-size', '4294967295', '--limit', String(MAX_SAFE), '--start-key', String(TWO_64 - 1n - BigInt(N)), '--batch', String(1 << 24), '--threads', '1024', '--quantization', 'sq8', '--json')
    expect(high.status, high.stderr).toBe(0)
    expect(high.json.vectors).toBe(N)
    // (That index cannot search: sq8 with trainingSize 2^32 − 1 never trains by itself.)
    const top = spawned('build', file('base.fvecs'), '-o', file('top.vdx'), '--start-key', String(TWO_64 - 1n - BigInt(N)), '--json')
    expect(top.status, top.stderr).toBe(0)
    const keys = spawned('query', file('top.vdx'), '--vector', JSON.stringify(Array.from(base.subarray(0, DIM))), '-k', '1', '--json')
    expect(keys.status, keys.stderr).toBe(0)
    expect(keys.json.results[0].keys[0]).toBe(String(TWO_64 - 1n - BigInt(N)))
    const pq = spawned('build', file('base.fvecs'), '-o', file('pq.vdx'), '--index', 'flat', '--quantization', 'pq', '--subspaces', '1', '--json')
    expect(pq.status, pq.stderr).toBe(0)
    const rabitq = spawned('build', file('base.fvecs'), '-o', file('rabitq4.vdx'), '--index', 'flat', '--quantization', 'rabitq', '--bits', '4', '--json')
    expect(rabitq.status, rabitq.stderr).toBe(0)
    const usage = spawned('build', file('base.fvecs'), '-o', file('bits.vdx'), '--quantization', 'sq8', '--bits', '4', '--json')
    expect(usage.status).toBe(2)
    expect(usage.json.error.code).toBe('ERR_USAGE')
    // Full vectors in a file: the index answers through it; without a codec it is a usage error.
    const onDisk = spawned('build', file('base.fvecs'), '-o', file('disk.vdx'), '--quantization', 'sq8', '--training-size', '20', '--full-vectors', file('disk.vdr'), '--json')
    expect(onDisk.status, onDisk.stderr).toBe(0)
    expect(onDisk.json.stats.memory.vectors).toBeLessThan(N * DIM)
    const found = spawned('query', file('disk.vdx'), '--vector', JSON.stringify(Array.from(base.subarray(3 * DIM, 4 * DIM))), '-k', '1', '--json')
    expect(found.status, found.stderr).toBe(0)
    expect(found.json.results[0].keys[0]).toBe(3)
    for (const extra of [[], ['--quantization', 'none']]) {
      const plain = spawned('build', file('base.fvecs'), '-o', file('plain.vdx'), ...extra, '--full-vectors', file('plain.vdr'), '--json')
      expect(plain.status).toBe(2)
      expect(plain.json.error.code).toBe('ERR_USAGE')
    }
  })

  it('build: keys from --start-key that would pass 2^64 − 1 are a usage error', () => {
    for (const start of [TWO_64 - 1n, TWO_64 - BigInt(N - 1), TWO_64 - 2n]) {
      const r = spawned('build', file('base.fvecs'), '-o', file('wrap.vdx'), '--start-key', String(start), '--json')
      expect(r.status, String(start)).toBe(2)
      expect(r.json.error.code).toBe('ERR_USAGE')
    }
  })

  it('query: huge k on a small index returns every vector, for flat and HNSW, with any batch', () => {
    for (const index of ['base.vdx', 'hnsw.vdx']) {
      for (const [k, batch] of [
        ['4294967295', '1'],
        ['4294967295', String(1 << 24)],
        [String(N + 1), '3'],
        ['100000', '1000'],
      ]) {
        const r = spawned('query', file(index), '--queries', file('base.fvecs'), '--limit', '5', '-k', k, '--batch', batch, '--show', '0', '--threads', '1', '--json')
        expect(r.status, `${index} -k ${k}: ${r.stderr}`).toBe(0)
        expect(r.json.results).toHaveLength(5)
        for (const row of r.json.results) expect(row.keys).toHaveLength(N)
        expect(r.json.results[2].keys[0]).toBe(2)
      }
    }
    const shown = spawned('query', file('base.vdx'), '--queries', file('base.fvecs'), '-k', '2', '--show', '0')
    expect(shown.status, shown.stderr).toBe(0)
    expect(shown.stdout).not.toMatch(/^query 0:/m)
  })

  it('build: a --batch far above the file (or memory) works, for every input format', () => {
    const lines = Array.from({ length: N }, (_, i) => JSON.stringify(Array.from(base.subarray(i * DIM, (i + 1) * DIM))))
    writeFileSync(file('base.jsonl'), lines.join('\n'))
    for (const input of ['base.fvecs', 'base.npy', 'base.jsonl']) {
      const r = spawned('build', file(input), '-o', file(`${input}.vdx`), '--index', 'flat', '--batch', String(1 << 24), '--json')
      expect(r.status, `${input}: ${r.stderr}`).toBe(0)
      expect(r.json.vectors).toBe(N)
    }
  })
})

describe('JSON lines with a UTF-8 byte-order mark', () => {
  const BOM = '\uFEFF'
  const vector = (i: number) => Array.from(base.subarray(i * DIM, (i + 1) * DIM))

  it.each([
    ['plain vectors', (i: number) => JSON.stringify(vector(i))],
    ['keyed objects', (i: number) => JSON.stringify({ key: 500 + i, vector: vector(i) })],
    ['keyed objects, key as a string', (i: number) => JSON.stringify({ id: String(900 + i), embedding: vector(i) })],
  ])('%s: build, query --queries, and a ground-truth file', async (name, line) => {
    for (const [what, text] of [
      ['BOM then the first line', BOM + Array.from({ length: N }, (_, i) => line(i)).join('\n')],
      ['BOM, CRLF line ends', BOM + Array.from({ length: N }, (_, i) => line(i)).join('\r\n') + '\r\n'],
      ['BOM then a blank line', `${BOM}\n${Array.from({ length: N }, (_, i) => line(i)).join('\n')}`],
    ]) {
      const input = file(`bom-${name.replace(/\W/g, '')}.jsonl`)
      writeFileSync(input, text, 'utf8')
      const built = await inJson('build', input, '-o', file('bom.vdx'), '--index', 'flat', '--metric', 'l2sq', '--json')
      expect(built.status, `${what}: ${built.stderr}${built.stdout}`).toBe(0)
      expect(built.json.vectors).toBe(N)
    }
    const queries = file('bom-queries.jsonl')
    writeFileSync(queries, BOM + Array.from({ length: 4 }, (_, i) => JSON.stringify(vector(i))).join('\n'), 'utf8')
    const truth = file('bom-truth.jsonl')
    writeFileSync(truth, BOM + [0, 1, 2, 3].map((i) => JSON.stringify([i])).join('\n'), 'utf8')
    const r = await inJson('query', file('base.vdx'), '--queries', queries, '--groundtruth', truth, '-k', '1', '--json')
    expect(r.status, r.stderr + r.stdout).toBe(0)
    expect(r.json.recall).toBe(1)
  })

  it('a BOM anywhere but at the start of the file is still an error', async () => {
    const input = file('bom-late.jsonl')
    writeFileSync(input, `${JSON.stringify(vector(0))}\n${BOM}${JSON.stringify(vector(1))}\n`, 'utf8')
    const r = await inJson('build', input, '-o', file('late.vdx'), '--json')
    expect(r.status).toBe(1)
    expect(r.json.error.code).toBe('ERR_INPUT_FORMAT')
  })
})

describe('.npy shapes must be tuples of integers', () => {
  const data = Buffer.from(base.buffer, 0, 2 * DIM * 4)

  it.each([`2.0, ${DIM}`, `2, ${DIM}.0`, `2., ${DIM}`, `1e0 * 2, ${DIM}`, `0x2, ${DIM}`, `2L, ${DIM}L`, `+2, ${DIM}`, `2, , ${DIM}`, `, 2, ${DIM}`, `2 ${DIM}`, `'2', ${DIM}`, `2, ${DIM}, ,`, `${2 * DIM}`, `True, ${DIM}`, `2, 0${DIM}.`])(
    '(%s) is ERR_INPUT_FORMAT',
    async (shape) => {
      writeFileSync(file('bad.npy'), npy('<f4', shape, data))
      const r = await inJson('build', file('bad.npy'), '-o', file('bad.vdx'), '--json')
      expect(r.status, r.stdout).toBe(1)
      expect(r.json.error.code).toBe('ERR_INPUT_FORMAT')
    },
  )

  it.each([`2, ${DIM}`, `2,${DIM}`, ` 2 , ${DIM} `, `2, ${DIM},`, `0002, ${DIM}`])('(%s) is read', async (shape) => {
    writeFileSync(file('good.npy'), npy('<f4', shape, data))
    const r = await inJson('build', file('good.npy'), '-o', file('good.vdx'), '--index', 'flat', '--json')
    expect(r.status, r.stderr + r.stdout).toBe(0)
    expect(r.json.vectors).toBe(2)
  })

  it(`(${DIM},) is one vector`, async () => {
    writeFileSync(file('one.npy'), npy('<f4', `${DIM},`, Buffer.from(base.buffer, 0, DIM * 4)))
    const r = await inJson('build', file('one.npy'), '-o', file('one.vdx'), '--index', 'flat', '--json')
    expect(r.status, r.stderr + r.stdout).toBe(0)
    expect(r.json.vectors).toBe(1)
  })
})

describe('flags that set library options take their limits from the core table', () => {
  it("--threads' cap is the core's MAX_THREADS", () => {
    expect(optionSpec('ConfigureOptions', 'threads').max).toBe(native.MAX_THREADS)
  })

  it('a mistyped flag names the closest one', async () => {
    for (const [command, typo, near] of [
      ['build', '--ef-constrution', '--ef-construction'],
      ['build', '--quantisation', '--quantization'],
      ['query', '--efsearch', '--ef-search'],
    ]) {
      const r = await inProcess(command, 'x.fvecs', typo, '8')
      expect(r.status).toBe(2)
      expect(r.stderr).toContain(`did you mean ${near}?`)
    }
  })
})
