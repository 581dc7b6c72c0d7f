// The MiniLM benchmark sets' own parts that need no model: how WordNet becomes definitions and
// example sentences (the counts the dataset help states), the large-file reader, and the
// multivector suite's FDE specs with their remedies. The embeddings themselves are checked by the
// data step (`--prepare wordnet-minilm`) against a numpy forward pass, not here: they need the
// 83 MB model and minutes of CPU.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DATASET_HELP } from '../benchmark/datasets.mjs'
import { readLarge, readWordnetSynsets } from '../benchmark/minilm-data.mjs'
import { parseFdeSpec } from '../benchmark/suites/multivector.mjs'

const dir = mkdtempSync(join(tmpdir(), 'vecdex-minilm-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const wordnet = existsSync('/usr/share/wordnet/data.noun')

describe('WordNet as definitions and example sentences', () => {
  it.skipIf(!wordnet)('splits each gloss into its definition and its quoted examples (needs Debian wordnet-base)', () => {
    const synsets = readWordnetSynsets()
    expect(synsets).toHaveLength(117_659)
    const whole = synsets.find((s) => s.synset === 'noun:00003553')
    expect(whole).toEqual({
      synset: 'noun:00003553',
      definition: 'an assemblage of parts that is regarded as a single entity',
      examples: ['how big is that part compared to the whole?', 'the team is a unit'],
    })
    expect(synsets.every((s) => s.definition.length > 0 && !s.definition.includes('"'))).toBe(true)
    const distinct = new Set(synsets.map((s) => s.definition)).size
    const examples = synsets.reduce((sum, s) => sum + s.examples.length, 0)
    // The counts the dataset help and the README state.
    expect(distinct).toBe(116_697)
    expect(examples).toBe(48_337)
    expect(DATASET_HELP.join('\n')).toContain('116,697 distinct definitions')
    expect(DATASET_HELP.join('\n')).toContain(`${(distinct - 1000).toLocaleString('en-US')} sentence vectors`)
  })
  if (!wordnet) it('is skipped: /usr/share/wordnet is absent (apt-get install -y wordnet-base)', () => {})
})

describe('readLarge', () => {
  it('reads a file into a typed array in pieces, and rejects a partial value', () => {
    const values = Float32Array.from({ length: 1001 }, (_, i) => i / 7)
    writeFileSync(join(dir, 'v.f32'), new Uint8Array(values.buffer))
    expect(Array.from(readLarge(join(dir, 'v.f32'), Float32Array))).toEqual(Array.from(values))
    writeFileSync(join(dir, 'odd.f32'), new Uint8Array(6))
    expect(() => readLarge(join(dir, 'odd.f32'), Float32Array)).toThrow(/not a whole number of Float32Array values/)
  })
})

describe('multivector --fde specs', () => {
  it('reads the encoding and its remedies', () => {
    expect(parseFdeSpec('r1k0p0')).toEqual({ fde: { numRepetitions: 1, numSimhashProjections: 0, projectionType: 'identity' }, index: {} })
    expect(parseFdeSpec('r20k5p16f2048+pq+dot+ef400')).toEqual({
      fde: { numRepetitions: 20, numSimhashProjections: 5, projectionType: 'amsSketch', projectionDimension: 16, finalProjectionDimension: 2048 },
      index: { quantization: 'pq', fdeMetric: 'dot', efSearch: 400 },
    })
  })
  it('rejects unknown remedies and malformed encodings', () => {
    expect(() => parseFdeSpec('r20k5p16+sq9')).toThrow(/remedies are \+pq, \+dot and \+ef<n>/)
    expect(() => parseFdeSpec('r20k5')).toThrow(/--fde entries look like/)
  })
})
