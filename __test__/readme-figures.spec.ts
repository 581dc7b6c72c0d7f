// The README's figures and platform claims, checked against what the package measures and
// reports: the compression memory table against indexes built here, the words about codec
// sizes against that table, and the per-kernel platform table against capabilities().kernels
// (and, on x86-64, against the CPU's flags).
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { capabilities, FlatIndex, HnswIndex, type Quantization } from '../dist/index.js'

const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')

/** Relative tolerance of a README memory figure against a fresh index (see the README note). */
const TOLERANCE = 0.05

/** The markdown table right after `<!-- readme-figures:NAME -->`: header cells and row cells. */
function markedTable(name: string): { header: string[]; rows: string[][] } {
  const marker = `<!-- readme-figures:${name} -->`
  const at = README.indexOf(marker)
  expect(at, `README has no ${marker} table`).toBeGreaterThanOrEqual(0)
  const lines = README.slice(at + marker.length).trimStart().split('\n')
  const table: string[][] = []
  for (const line of lines) {
    if (!line.startsWith('|')) break
    table.push(line.slice(1, line.endsWith('|') ? -1 : undefined).split('|').map((c) => c.trim()))
  }
  expect(table.length, `${marker} is not followed by a table`).toBeGreaterThan(2)
  return { header: table[0], rows: table.slice(2) }
}

/** A codec cell: f32 (`'none'`), `'sq8'`, or an options literal in backticks. */
function codecOf(cell: string): Quantization {
  const literal = /`([^`]+)`/.exec(cell)?.[1]
  if (!literal) throw new Error(`no codec in "${cell}"`)
  // eslint-disable-next-line no-new-func
  return new Function(`return (${literal})`)() as Quantization
}

const number = (cell: string) => Number(cell.replace(/[,×\s]/g, ''))

/** Deterministic values in [-0.5, 0.5): code sizes do not depend on the data. */
function randomRows(n: number, dim: number): Float32Array {
  const out = new Float32Array(n * dim)
  let s = 12345
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    out[i] = s / 2 ** 32 - 0.5
  }
  return out
}

/** The options an index of the table's codec is built with here: fewer k-means rounds (the
 * model's size does not depend on them) and, for the small HNSW build, a smaller sample. */
function buildOptions(q: Quantization, small: boolean) {
  if (typeof q === 'object' && q.type === 'pq') {
    return { quantization: { ...q, iterations: 2 }, ...(small ? { trainingSize: 1000 } : {}) }
  }
  return { quantization: q }
}

/** The memory table and its columns (read inside each test, so each one fails by itself). */
function memoryTable() {
  const { header, rows } = markedTable('memory')
  const col = (re: RegExp) => {
    const i = header.findIndex((h) => re.test(h))
    expect(i, `memory table has no column matching ${re}`).toBeGreaterThan(0)
    return i
  }
  return {
    rows,
    codeCol: col(/^code B\/vector$/),
    flatCol: col(/^FlatIndex B\/vector$/),
    hnswCol: col(/^HnswIndex B\/vector$/),
    ratioCol: col(/÷ f32 index/),
  }
}

describe('README compression memory table', () => {
  const DIM = 100

  it('lists f32 and every codec', () => {
    const { rows } = memoryTable()
    const types = rows.map((r) => {
      const q = codecOf(r[0])
      return typeof q === 'string' ? q : q.type
    })
    expect(types.sort()).toEqual(['bf16', 'binary', 'f16', 'none', 'pq', 'sq4', 'sq8'])
  })

  // The README measures 100,000 GloVe vectors; 12,500 = 100,000 / 8 holds the same share of a
  // FlatIndex's doubling code buffer (and still reaches PQ's default training size of 10,000).
  it('matches FlatIndex memoryBytes and codeBytes (n = 12,500, d = 100)', async () => {
    const { rows, codeCol, flatCol, ratioCol } = memoryTable()
    const n = 12_500
    const data = randomRows(n, DIM)
    const keys = Uint32Array.from({ length: n }, (_, i) => i)
    const measured: Record<string, number> = {}
    for (const row of rows) {
      const q = codecOf(row[0])
      const index = new FlatIndex({ dimensions: DIM, metric: 'cosine', ...buildOptions(q, false) })
      try {
        await index.add(keys, data)
        expect(index.isTrained).toBe(true)
        const code = index.compressionStats().codeBytes / n
        const whole = index.memoryBytes / n
        measured[row[0]] = whole
        expect(code, `${row[0]} code B/vector`).toBeCloseTo(number(row[codeCol]), 0)
        expect(Math.abs(whole / number(row[flatCol]) - 1), `${row[0]} FlatIndex B/vector: measured ${whole.toFixed(1)}, README ${row[flatCol]}`).toBeLessThan(TOLERANCE)
      } finally {
        index.close()
      }
    }
    const f32 = measured[rows.find((r) => codecOf(r[0]) === 'none')![0]]
    for (const row of rows) {
      const stated = number(row[ratioCol].split('/')[0])
      expect(Math.abs(measured[row[0]] / f32 - stated), `${row[0]} flat ratio ${row[ratioCol]}`).toBeLessThan(0.05)
    }
  })

  it('matches HnswIndex memoryBytes and codeBytes (m 16, n = 4,096, d = 100)', async () => {
    const { rows, codeCol, hnswCol, ratioCol } = memoryTable()
    const n = 4096
    const data = randomRows(n, DIM)
    const keys = Uint32Array.from({ length: n }, (_, i) => i)
    const measured: Record<string, number> = {}
    for (const row of rows) {
      const q = codecOf(row[0])
      const index = new HnswIndex({ dimensions: DIM, metric: 'cosine', m: 16, efConstruction: 16, ...buildOptions(q, true) })
      try {
        await index.add(keys, data)
        expect(index.isTrained).toBe(true)
        const whole = index.memoryBytes / n
        measured[row[0]] = whole
        expect(index.compressionStats().codeBytes / n).toBeCloseTo(number(row[codeCol]), 0)
        expect(Math.abs(whole / number(row[hnswCol]) - 1), `${row[0]} HnswIndex B/vector: measured ${whole.toFixed(1)}, README ${row[hnswCol]}`).toBeLessThan(TOLERANCE)
      } finally {
        index.close()
      }
    }
    const f32 = measured[rows.find((r) => codecOf(r[0]) === 'none')![0]]
    for (const row of rows) {
      const stated = number(row[ratioCol].split('/')[1])
      expect(Math.abs(measured[row[0]] / f32 - stated), `${row[0]} HNSW ratio ${row[ratioCol]}`).toBeLessThan(0.05)
    }
  })
})

/**
 * Prose sentences and table rows (with their header) of the README: the units a size claim is
 * read in. Code blocks count too: a comment there is read as a claim as well.
 */
function claimUnits(): string[] {
  const units: string[] = []
  let header = ''
  let paragraph: string[] = []
  const flush = () => {
    const text = paragraph.join(' ')
    paragraph = []
    units.push(...text.split(/(?<=[.;!?])\s+(?=[A-Z`'(*])/))
  }
  let fenced = false
  for (const line of README.split('\n')) {
    if (line.startsWith('```')) {
      flush()
      fenced = !fenced
      continue
    }
    if (fenced) {
      units.push(line)
      continue
    }
    if (line.startsWith('|')) {
      flush()
      if (/^\|[-:| ]+\|$/.test(line)) continue
      if (!header) header = line
      else units.push(`${header} ${line}`)
      continue
    }
    header = ''
    if (line.trim() === '' || line.startsWith('#')) flush()
    else paragraph.push(line.replace(/^\s*[-*]\s+/, ''))
  }
  flush()
  return units.filter((u) => u.trim())
}

describe('README words about compressed sizes', () => {
  // A fraction of f32, a per-dimension size, or a saving, said about a codec…
  const sizeClaim =
    /\b(a quarter|an eighth|a sixteenth|a half|half the|three quarters|\d+(\.\d+)?\s*(bits?|bytes?) per (dimension|vector)|0\.\d+×|÷ f32|same bytes|saves?\b|smaller|less memory)/i
  const codecWord = /\b(sq8|sq4|pq|f16|bf16|binary|i8|b1|quantiz\w*|codecs?|compress\w*|IVF_PQ|HNSW-SQ)\b/i

  it('every size claim about a codec is about its codes, not the whole index', () => {
    const offending = claimUnits().filter((u) => sizeClaim.test(u) && codecWord.test(u) && !/\bcodes?\b/i.test(u))
    expect(offending).toEqual([])
  })

  it('says that compressed indexes keep the f32 rows', () => {
    expect(README).toMatch(/every vecdex codec keeps the f32\s+rows/)
  })
})

/** The path each family must take on this CPU, from its flags (Linux /proc/cpuinfo). */
function expectedPaths(flags: Set<string>): Record<string, string> {
  const avx512 = flags.has('avx512f')
  const avx2fma = flags.has('avx2') && flags.has('fma')
  const bytes = avx512 && flags.has('avx512bw') && flags.has('avx512vl')
  const vnni = bytes && flags.has('avx512_vnni')
  const level = avx512 ? 'avx512' : avx2fma ? 'avx2-fma' : 'portable'
  return {
    blockedScan: level,
    paddedRows: level,
    sqCodes: bytes ? 'avx512bw' : level !== 'portable' ? 'avx2-fma' : 'portable',
    sq8Symmetric: vnni ? 'avx512vnni' : bytes ? 'avx512bw' : level !== 'portable' ? 'avx2' : 'portable',
    halfCodes: bytes ? 'avx512bw' : level !== 'portable' && flags.has('f16c') ? 'avx2-fma' : 'portable',
    binaryCodes: level !== 'portable' && flags.has('popcnt') ? 'popcnt' : 'portable',
    pqCodes: 'portable',
    rabitqCodes: level !== 'portable' && flags.has('popcnt') ? 'popcnt' : 'portable',
    chamfer: level,
    pca: avx512 ? 'avx512' : avx2fma ? 'avx2' : 'portable',
  }
}

describe('README platform table', () => {
  const kernelTable = () => new Map(markedTable('kernels').rows.map((r) => [/`(\w+)`/.exec(r[0])?.[1] ?? r[0], r]))
  const kernels = capabilities().kernels as unknown as Record<string, string>

  it('has one row per capabilities().kernels key', () => {
    expect(kernels, 'capabilities() reports no kernels').toBeTypeOf('object')
    expect([...kernelTable().keys()].sort()).toEqual(Object.keys(kernels).sort())
  })

  it('lists the path this machine reports in its column', () => {
    const table = kernelTable()
    expect(kernels, 'capabilities() reports no kernels').toBeTypeOf('object')
    for (const [key, path] of Object.entries(kernels)) {
      const row = table.get(key)
      expect(row, key).toBeDefined()
      const column = process.arch === 'x64' ? row![2] : row![3]
      expect(column.match(/`[\w-]+`/g)?.map((c) => c.slice(1, -1)), `${key} on ${process.arch}`).toContain(path)
    }
  })

  it('reports the paths the CPU flags allow (none but portable off x86-64)', () => {
    if (process.env.VECDEX_SIMD) return // a lowered level is checked by the Rust level tests
    expect(kernels, 'capabilities() reports no kernels').toBeTypeOf('object')
    if (process.arch !== 'x64') {
      for (const path of Object.values(kernels)) expect(path).toBe('portable')
      return
    }
    if (!fs.existsSync('/proc/cpuinfo')) return // the flags are read from Linux's cpuinfo
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'))
    const flags = new Set((line ?? '').split(':')[1]?.trim().split(/\s+/))
    expect(kernels).toEqual(expectedPaths(flags))
  })

  it('reports the portable loops when VECDEX_SIMD=scalar takes the SIMD paths away', async () => {
    const { execFileSync } = await import('node:child_process')
    const entry = JSON.stringify(path.resolve(__dirname, '..', 'dist', 'index.js'))
    const out = execFileSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${entry}).capabilities().kernels))`], {
      env: { ...process.env, VECDEX_SIMD: 'scalar' },
      encoding: 'utf8',
    })
    for (const [key, value] of Object.entries(JSON.parse(out))) expect(value, key).toBe('portable')
  })
})
