// The labels the filter suite stores as metadata, and its filters over them, each in every
// engine's form: vecdex's filter object, LanceDB's SQL `where`, and a plain JS test of a row
// (which counts the admitted rows and gives hnswlib-node its callback).
//   - wordnet-minilm(-examples): WordNet's part of speech, lexicographer file and gloss length
//     (minilm-data.mjs, wordnetMetadata);
//   - fashion-mnist: the class (0–9) and its name, from the Debian package's train labels, and
//     the mean pixel value of each image ("ink"), for a second condition.

import fs from 'node:fs'
import zlib from 'node:zlib'
import { wordnetMetadata } from '../../minilm-data.mjs'

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
const FASHION_DIR = '/usr/share/datasets/fashion-mnist'

// ---------------------------------------------------------------------------------------------
// Labels and filters.

/** A SQL string literal. */
const sqlString = (s) => `'${String(s).replace(/'/g, "''")}'`

/**
 * WordNet's labels for the base rows of wordnet-minilm(-examples), and filters over them.
 * @returns {{ labels: import('./index.mjs').Labels, filters: import('./index.mjs').FilterSpec[] }}
 */
export function wordnetFilters(meta) {
  const { pos, lexFile, glossWords } = meta
  const labels = {
    n: meta.n,
    columns: { pos: { type: 'string', values: pos }, lexfile: { type: 'string', values: lexFile }, glossWords: { type: 'number', values: glossWords } },
    source: "WordNet 3.0 (Debian wordnet-base), the first synset of each definition: pos = its data file (noun, verb, adj incl. satellites, adv), lexfile = its lexicographer file (field 2 of the data line, named by lexnames(5WN)), glossWords = words of its whole gloss (definition and examples)",
  }
  const filters = [
    { name: "pos = 'noun'", filter: { pos: 'noun' }, where: "pos = 'noun'", admits: (r) => pos[r] === 'noun' },
    { name: 'glossWords ≥ 11', filter: { glossWords: { $gte: 11 } }, where: '`glossWords` >= 11', admits: (r) => glossWords[r] >= 11 },
    {
      name: 'lexfile ∈ {noun.artifact, noun.person}',
      filter: { lexfile: { $in: ['noun.artifact', 'noun.person'] } },
      where: `lexfile IN (${sqlString('noun.artifact')}, ${sqlString('noun.person')})`,
      admits: (r) => lexFile[r] === 'noun.artifact' || lexFile[r] === 'noun.person',
    },
    { name: "lexfile = 'noun.artifact'", filter: { lexfile: 'noun.artifact' }, where: "lexfile = 'noun.artifact'", admits: (r) => lexFile[r] === 'noun.artifact' },
    {
      name: "lexfile = 'noun.plant' ∧ glossWords ≥ 20",
      filter: { lexfile: 'noun.plant', glossWords: { $gte: 20 } },
      where: "lexfile = 'noun.plant' AND `glossWords` >= 20",
      admits: (r) => lexFile[r] === 'noun.plant' && glossWords[r] >= 20,
    },
    {
      name: "pos = 'verb' ∧ glossWords ≥ 35",
      filter: { $and: [{ pos: 'verb' }, { glossWords: { $gte: 35 } }] },
      where: "pos = 'verb' AND `glossWords` >= 35",
      admits: (r) => pos[r] === 'verb' && glossWords[r] >= 35,
    },
  ]
  return { labels, filters }
}

/** The labels of an IDX1 file (gzipped): magic 0x801, count, then one byte per item. */
export function readIdx1Labels(file) {
  const bytes = zlib.gunzipSync(fs.readFileSync(file))
  if (bytes.readUInt32BE(0) !== 0x00000801) throw new Error(`${file}: not an IDX1 label file (magic 0x${bytes.readUInt32BE(0).toString(16)})`)
  const count = bytes.readUInt32BE(4)
  if (bytes.length !== 8 + count) throw new Error(`${file}: ${count} labels announced, ${bytes.length - 8} present`)
  return bytes.subarray(8)
}

/** Fashion-MNIST's train labels for the base rows, its class names, and each image's mean pixel value; filters over them. */
export function fashionFilters(dataset) {
  const all = readIdx1Labels(`${FASHION_DIR}/train-labels-idx1-ubyte.gz`)
  if (all.length < dataset.n) throw new Error(`fashion-mnist: ${all.length} labels for ${dataset.n} images`)
  const cls = Int32Array.from(all.subarray(0, dataset.n))
  const className = Array.from(cls, (c) => FASHION_CLASSES[c])
  const ink = new Int32Array(dataset.n)
  for (let i = 0; i < dataset.n; i++) {
    let s = 0
    for (let j = i * dataset.dim, e = j + dataset.dim; j < e; j++) s += dataset.base[j]
    ink[i] = Math.round(s / dataset.dim)
  }
  const labels = {
    n: dataset.n,
    columns: { class: { type: 'number', values: cls }, className: { type: 'string', values: className }, ink: { type: 'number', values: ink } },
    source: 'Fashion-MNIST train labels (Debian dataset-fashion-mnist): class 0–9 and its name; ink = mean pixel value of the image (0–255, rounded)',
  }
  const filters = [
    { name: 'class ∈ {0 … 4}', filter: { class: { $in: [0, 1, 2, 3, 4] } }, where: '`class` IN (0, 1, 2, 3, 4)', admits: (r) => cls[r] <= 4 },
    {
      name: "className ∈ {Sandal, Sneaker}",
      filter: { className: { $in: ['Sandal', 'Sneaker'] } },
      where: "`className` IN ('Sandal', 'Sneaker')",
      admits: (r) => className[r] === 'Sandal' || className[r] === 'Sneaker',
    },
    { name: 'class = 3 (Dress)', filter: { class: 3 }, where: '`class` = 3', admits: (r) => cls[r] === 3 },
    { name: 'class = 3 ∧ ink ≥ 95', filter: { class: 3, ink: { $gte: 95 } }, where: '`class` = 3 AND ink >= 95', admits: (r) => cls[r] === 3 && ink[r] >= 95 },
    { name: 'class = 8 (Bag) ∧ ink ≥ 160', filter: { $and: [{ class: 8 }, { ink: { $gte: 160 } }] }, where: '`class` = 8 AND ink >= 160', admits: (r) => cls[r] === 8 && ink[r] >= 160 },
  ]
  return { labels, filters }
}

/** Labels and filters of a dataset this suite knows. */
export function labelledFilters(dataset, log) {
  if (dataset.name === 'wordnet-minilm' || dataset.name === 'wordnet-minilm-examples') {
    const meta = wordnetMetadata(log)
    if (meta.n < dataset.n) throw new Error(`wordnet labels: ${meta.n} rows for ${dataset.n} vectors`)
    // --limit keeps the first rows of the base: the labels of those rows.
    const cut = (a) => a.slice(0, dataset.n)
    return wordnetFilters({ n: dataset.n, pos: cut(meta.pos), lexFile: cut(meta.lexFile), glossWords: cut(meta.glossWords) })
  }
  if (dataset.name === 'fashion-mnist') return fashionFilters(dataset)
  throw Object.assign(new Error(`suite filter needs labelled data: --dataset wordnet-minilm, wordnet-minilm-examples or fashion-mnist (got ${dataset.name})`), { code: 'ERR_USAGE' })
}
