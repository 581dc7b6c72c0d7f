// What ids and metadata cost a vecdex Collection, per item. Each variant is built in a child
// process of its own (so one variant's freed memory cannot hide another's growth), with the
// GC run before and after; the child reports its RSS growth over the build, the saved image's
// size (toBuffer) and whatever size the object itself reports (memoryBytes / stats(), if any):
//   index      FlatIndex of the vectors, u64 keys: the baseline
//   vectors    flat Collection, ids = row numbers, no metadata
//   metadata   the same with the suite's labels as declared fields
//   strings    the same with 36-character UUID-style string ids
// Differences between neighbours give the cost of number ids, of the metadata and of string ids.
//
// As a child: node memory.mjs <dataset> <variant> [limit] prints one JSON line.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadDataset } from '../../datasets.mjs'
import { loadVecdex, rowKeys } from '../common.mjs'
import { buildCollection } from './vecdex.mjs'
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
  const { labelledFilters } = await import('../../suites/filter.mjs')
  const dataset = loadDataset(datasetName, { queries: 1, limit })
  const { labels } = labelledFilters(dataset, () => {})
  const loaded = await loadVecdex()
  if (loaded.error) throw new Error(loaded.error)
  const vecdex = loaded.module
  gcTwice()
  const before = process.memoryUsage()
  let object
  if (variant === 'index') {
    object = new vecdex.FlatIndex({ dimensions: dataset.dim, metric: dataset.metric })
    await object.add(rowKeys(dataset.n), dataset.base)
  } else {
    object = await buildCollection(vecdex, dataset, labels, { index: 'flat' }, { metadata: variant !== 'vectors', ids: variant === 'strings' ? uuidOf : undefined })
  }
  gcTwice()
  const after = process.memoryUsage()
  const image = variant === 'index' ? object.toBufferSync() : object.toBuffer()
  const reported = { memoryBytes: object.memoryBytes, stats: typeof object.stats === 'function' ? object.stats() : undefined }
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
 * @returns {Promise<{ variants: object[], perItem: object, markdown: string }>}
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
  const reportedLine = variants.some((v) => v.reported.memoryBytes !== undefined || v.reported.stats !== undefined)
    ? `Sizes the objects report themselves: ${variants.map((v) => `${v.variant} ${v.reported.memoryBytes !== undefined ? `memoryBytes ${v.reported.memoryBytes.toLocaleString('en-US')}` : ''}${v.reported.stats !== undefined ? ` stats ${JSON.stringify(v.reported.stats)}` : ''}`).join('; ')}.`
    : 'The Collection reports no memory figure of its own (no memoryBytes or stats()): the RSS growth of the process is the measure.'
  const markdown = [
    `| build (flat, ${n.toLocaleString('en-US')} items) | RSS growth | bytes/item | saved image (toBuffer) | bytes/item |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...variants.map((v) => `| ${v.variant} | ${fmt(v.rssDelta / 2 ** 20)} MiB | ${fmt(v.rssDelta / n)} | ${fmt(v.imageBytes / 2 ** 20)} MiB | ${fmt(v.imageBytes / n)} |`),
    '',
    `Per item: number ids ${fmt(perItem.numberIdsRss)} B in memory (${fmt(perItem.numberIdsImage)} B saved), the labels as declared fields ${fmt(perItem.metadataRss)} B (${fmt(perItem.metadataImage)} B saved), 36-character string ids instead of numbers +${fmt(perItem.stringIdsOverNumberRss)} B (+${fmt(perItem.stringIdsOverNumberImage)} B saved).`,
    '',
    `Each variant is built in its own child process (index: FlatIndex with u64 keys; vectors: flat Collection, number ids, no metadata; metadata: + the labels as declared fields; strings: + UUID-style string ids), GC before and after; RSS growth over the build (allocator slack included, so ±1 MB of noise). ${reportedLine}`,
  ].join('\n')
  return { variants, perItem, markdown }
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
