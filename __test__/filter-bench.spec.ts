// The filter benchmark's labels: how a WordNet data line gives its part of speech,
// lexicographer file and gloss, Fashion-MNIST's IDX1 label files, and the UUID-style ids of the
// memory probe. The benchmark itself (recall, QPS) is a run, not a test.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { WORDNET_LEXNAMES, parseWordnetDataLine } from '../benchmark/minilm-data.mjs'
import { fashionFilters, readIdx1Labels, wordnetFilters } from '../benchmark/adapters/filter/labels.mjs'
import { uuidOf } from '../benchmark/adapters/filter/memory.mjs'

const dir = mkdtempSync(join(tmpdir(), 'vecdex-filter-bench-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const ABLE =
  "00001740 00 a 01 able 0 005 = 05200169 n 0000 = 05616246 n 0000 + 05616246 n 0101 + 05200169 n 0101 ! 00002098 a 0101 | (usually followed by `to') having the necessary means or skill or know-how or authority to do something; \"able to swim\"; \"she was able to program her computer\"  "

describe('WordNet data lines', () => {
  it('reads the lexicographer file (field 2), the part of speech of the file and the gloss', () => {
    const parsed = parseWordnetDataLine(ABLE, 'adj')
    expect(parsed).toMatchObject({ synset: 'adj:00001740', pos: 'adj', lexFile: 'adj.all' })
    expect(parsed?.definition).toBe("(usually followed by `to') having the necessary means or skill or know-how or authority to do something")
    expect(parsed?.examples).toEqual(['able to swim', 'she was able to program her computer'])
    expect(parsed?.gloss.startsWith('(usually')).toBe(true)
    expect(parseWordnetDataLine(ABLE.replace(' 00 a ', ' 20 n '), 'noun')?.lexFile).toBe('noun.plant')
    expect(parseWordnetDataLine(ABLE.replace(' 00 a ', ' 44 a '), 'adj')?.lexFile).toBe('adj.ppl')
  })
  it('skips the licence header and blank lines, and rejects an unknown lexicographer file', () => {
    expect(parseWordnetDataLine('  1 This software and database is being provided to you, the LICENSEE, by  ', 'noun')).toBeNull()
    expect(parseWordnetDataLine('', 'noun')).toBeNull()
    expect(() => parseWordnetDataLine(ABLE.replace(' 00 a ', ' 45 a '), 'adj')).toThrow(/lexicographer file "45"/)
    expect(() => parseWordnetDataLine(ABLE.replace(' 00 a ', ' x1 a '), 'adj')).toThrow(/lexicographer file "x1"/)
  })
  const manPage = '/usr/share/man/man5/lexnames.5WN.gz'
  it.skipIf(!existsSync(manPage))('names the 45 files as the installed lexnames(5WN) table does', () => {
    const rows = [...gunzipSync(readFileSync(manPage)).toString('utf8').matchAll(/^(\d\d)\t(\S+) *\t/gm)].map((m) => [Number(m[1]), m[2]])
    expect(rows).toHaveLength(45)
    for (const [number, name] of rows) expect(WORDNET_LEXNAMES[number as number]).toBe(name)
  })
})

describe('filters over labels', () => {
  it('WordNet: each filter admits the rows its SQL and its filter object describe', () => {
    const meta = { n: 4, pos: ['noun', 'verb', 'noun', 'verb'], lexFile: ['noun.plant', 'verb.body', 'noun.artifact', 'verb.motion'], glossWords: Int32Array.from([25, 40, 5, 12]) }
    const { labels, filters } = wordnetFilters(meta)
    expect(Object.keys(labels.columns)).toEqual(['pos', 'lexfile', 'glossWords'])
    const admitted = Object.fromEntries(filters.map((f) => [f.name, [0, 1, 2, 3].filter((r) => f.admits(r))]))
    expect(admitted).toEqual({
      "pos = 'noun'": [0, 2],
      'glossWords ≥ 11': [0, 1, 3],
      'lexfile ∈ {noun.artifact, noun.person}': [2],
      "lexfile = 'noun.artifact'": [2],
      "lexfile = 'noun.plant' ∧ glossWords ≥ 20": [0],
      "pos = 'verb' ∧ glossWords ≥ 35": [1],
    })
  })
})

describe('IDX1 label files', () => {
  it('reads the labels and rejects a wrong magic or a short file', () => {
    const good = Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, 3]), Buffer.from([9, 0, 3])])
    writeFileSync(join(dir, 'good.gz'), gzipSync(good))
    expect(Array.from(readIdx1Labels(join(dir, 'good.gz')))).toEqual([9, 0, 3])
    writeFileSync(join(dir, 'images.gz'), gzipSync(Buffer.from([0, 0, 8, 3, 0, 0, 0, 0])))
    expect(() => readIdx1Labels(join(dir, 'images.gz'))).toThrow(/not an IDX1 label file/)
    writeFileSync(join(dir, 'short.gz'), gzipSync(good.subarray(0, 10)))
    expect(() => readIdx1Labels(join(dir, 'short.gz'))).toThrow(/3 labels announced, 2 present/)
  })
  it.skipIf(!existsSync('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz'))('gives Fashion-MNIST 6,000 images of each class', () => {
    const dim = 4
    const n = 60_000
    const { labels, filters } = fashionFilters({ n, dim, base: new Float32Array(n * dim).fill(100) })
    const perClass = new Map()
    for (const c of Array.from(labels.columns.class.values)) perClass.set(c, (perClass.get(c) ?? 0) + 1)
    expect([...perClass.values()]).toEqual(Array(10).fill(6000))
    expect(labels.columns.ink.values[0]).toBe(100)
    const dress = filters.find((f) => f.name === 'class = 3 (Dress)')!
    expect(Array.from({ length: n }, (_, r) => r).filter((r) => dress.admits(r))).toHaveLength(6000)
  })
})

describe('memory probe ids', () => {
  it('are distinct, 36 characters, UUID-shaped', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => uuidOf(i))
    expect(new Set(ids).size).toBe(1000)
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})
