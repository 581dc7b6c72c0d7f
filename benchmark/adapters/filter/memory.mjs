// What ids and metadata cost a vecdex Collection, per item. Each variant is built in a child
// process of its own (so one variant's freed memory cannot hide another's growth), with the
// GC run before and after; the child reports the Collection's own stats() (bytes of ids,
// metadata, columns), its RSS growth over the build and the saved image's size (toBuffer):
//   index      FlatIndex of the vectors, u64 keys: the baseline
//   vectors    flat Collection, ids = row numbers, empty metadata ({})
//   metadata   the same with the suite's labels as declared fields
//   strings    the same with 36-character UUID-style string ids
// Differences between neighbours give the cost of number ids, of the metadata and of string ids.
//
// As a child: node memory.mjs <dataset> <variant> [limit] prints one JSON line.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadDataset } from '../../datasets.mjs'
import { loadVecdex, rowKeys } from '../common.mjs'
import { collectionItems, newCollection } from './vecdex.mjs'
import { fmt } from '../../report.mjs'

const VARIANTS = ['index', 'vectors', 'metadata', 'strings']

/** A deterministic UUID-shaped id for a row (8-4-4-4-12 hex digits). */
export function uuidOf(row) {
  const hex = (row * 2654435761 >>> 0).toString(16).padStart(8, '0') + row.toString(16).padStart(24, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

function gcTwice() {
  globalThis.gc?.()
  globalThis.gc?.()
}

async function child(datasetName, variant, limit) {
  const { labelledFilters } = await import('./labels.mjs')
  const dataset = loadDataset(datasetName, { queries: 1, limit })
  const { labels } = labelledFilters(dataset, () => {})
  const loaded = await loadVecdex()
  if (loaded.error) throw new Error(loaded.error)
  const vecdex = loaded.module
  // The JS items exist before the first reading and are kept past the second, so the growth
  // is what the native object holds.
  const shape = { metadata: variant !== 'vectors', ids: variant === 'strings' ? uuidOf : undefined }
  const batches = variant === 'index' ? [] : collectionItems(dataset, labels, shape)
  gcTwice()
  const before = process.memoryUsage()
  let object
  if (variant === 'index') {
    object = new vecdex.FlatIndex({ dimensions: dataset.dim, metric: dataset.metric })
    await object.add(rowKeys(dataset.n), dataset.base)
  } else {
    object = newCollection(vecdex, dataset, labels, { index: 'flat' }, shape)
    for (const items of batches) await object.upsert(items)
  }
  gcTwice()
  const after = process.memoryUsage()
  const image = object.toBufferSync()
  if (batches.length !== Math.ceil(dataset.n / 4096) && variant !== 'index') throw new Error('items dropped early')
  const reported = { memoryBytes: object.memoryBytes, stats: variant !== 'index' ? object.stats() : undefined }
  return { variant, n: dataset.n, rssDelta: after.rss - before.rss, externalDelta: after.external - before.external, heapDelta: after.heapUsed - before.heapUsed, imageBytes: image.length, reported }
}

function runChild(datasetName, variant, limit) {
  return new Promise((resolve, reject) => {
    const args = ['--expose-gc', fileURLToPath(import.meta.url), datasetName, variant, ...(limit ? [String(limit)] : [])]
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d) => (out += d))
    proc.stderr.on('data', (d) => (err += d))
    proc.on('error', reject)
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`memory probe ${variant} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`))
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()))
      } catch (error) {
        reject(new Error(`memory probe ${variant}: no JSON result (${error.message})`))
      }
    })
  })
}

/**
 * Builds each variant in a child process and reports bytes per item.
 * @returns {Promise<{ variants: object[], perItem: object, stats: object, markdown: string }>}
 */
export async function measureCollectionMemory({ datasetName, limit, log = () => {} }) {
  const variants = []
  for (const variant of VARIANTS) {
    log(`memory probe: ${variant}…`)
    variants.push(await runChild(datasetName, variant, limit))
  }
  const by = Object.fromEntries(variants.map((v) => [v.variant, v]))
  const n = by.index.n
  const per = (a, b, key) => (by[a][key] - by[b][key]) / n
  const perItem = {
    numberIdsRss: per('vectors', 'index', 'rssDelta'),
    metadataRss: per('metadata', 'vectors', 'rssDelta'),
    stringIdsOverNumberRss: per('strings', 'metadata', 'rssDelta'),
    numberIdsImage: per('vectors', 'index', 'imageBytes'),
    metadataImage: per('metadata', 'vectors', 'imageBytes'),
    stringIdsOverNumberImage: per('strings', 'metadata', 'imageBytes'),
  }
  const stats = Object.fromEntries(variants.filter((v) => v.reported.stats).map((v) => [v.variant, v.reported.stats]))
  const statsRows = Object.entries(stats).map(([variant, st]) => `| ${variant} | ${fmt(st.idBytes / st.size)} | ${fmt(st.metadataBytes / st.size)} | ${fmt(st.columnBytes / st.size)} | ${fmt(st.textBytes / st.size)} | ${fmt(st.indexBytes / st.size)} | ${fmt(st.memoryBytes / st.size)} |`)
  const markdown = [
    `Per item, from the Collection's own stats() (flat collections of ${n.toLocaleString('en-US')} items, the suite's labels as declared fields):`,
    '',
    '| collection | ids B/item | metadata B/item | columns B/item | texts B/item | index B/item | all B/item |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...statsRows,
    '',
    'ids: the id-to-row map and row-to-id table; metadata: compact JSON per item; columns: the declared fields\' value bitmaps and sorted values, and the live-item bitmap; index: the vectors (flat). "vectors": number ids, empty metadata; "metadata": number ids and the labels; "strings": 36-character UUID-style string ids and the labels.',
    '',
    'Cross-check by process memory and file size (each variant built in a child process of its own, the JS items made before the first reading and kept past the second, GC before each; RSS includes allocator slack):',
    '',
    `| build (flat, ${n.toLocaleString('en-US')} items) | RSS growth | bytes/item | saved image (toBuffer) | bytes/item |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...variants.map((v) => `| ${v.variant} | ${fmt(v.rssDelta / 2 ** 20)} MiB | ${fmt(v.rssDelta / n)} | ${fmt(v.imageBytes / 2 ** 20)} MiB | ${fmt(v.imageBytes / n)} |`),
    '',
    `By RSS: number ids ${fmt(perItem.numberIdsRss)} B/item over a FlatIndex ("index", u64 keys), the labels ${fmt(perItem.metadataRss)} B/item, string ids instead of numbers +${fmt(perItem.stringIdsOverNumberRss)} B/item; saved: ${fmt(perItem.numberIdsImage)}, ${fmt(perItem.metadataImage)} and +${fmt(perItem.stringIdsOverNumberImage)} B/item.`,
  ].join('\n')
  return { variants, perItem, stats, markdown }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [datasetName, variant, limit] = process.argv.slice(2)
  if (!VARIANTS.includes(variant)) {
    console.error(`usage: node --expose-gc memory.mjs <dataset> <${VARIANTS.join('|')}> [limit]`)
    process.exit(2)
  }
  const result = await child(datasetName, variant, limit ? Number(limit) : undefined)
  console.log(JSON.stringify(result))
}
