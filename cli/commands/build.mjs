// vecdex build <input> --output <file>: vectors from a file, added in batches, saved atomically.

import fs from 'node:fs'
import { CliError, VECTOR_FORMATS, openVectorFile } from '../vector-files.mjs'
import { metricOfDistance } from '../hdf5.mjs'
import { integerOption, loadVecdex, oneOf, optionDefault, optionSpec, parseCommandArgs, tableOption, toJson } from '../main.mjs'

/** The upper limit of a library option (the core's table). */
const optionSpecMax = (set, name) => optionSpec(set, name).max
import { progressBar } from '../progress.mjs'
import { fmt, fmtBytes } from '../../benchmark/report.mjs'

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  index: { type: 'string', default: 'hnsw' },
  metric: { type: 'string' },
  m: { type: 'string' },
  'ef-construction': { type: 'string' },
  'ef-search': { type: 'string' },
  seed: { type: 'string' },
  'insertion-order': { type: 'string' },
  quantization: { type: 'string' },
  subspaces: { type: 'string' },
  bits: { type: 'string' },
  oversample: { type: 'string' },
  'training-size': { type: 'string' },
  'full-vectors': { type: 'string' },
  limit: { type: 'string' },
  'start-key': { type: 'string' },
  batch: { type: 'string' },
  threads: { type: 'string', short: 't' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
}

const MAX_KEY = (1n << 64n) - 1n

/** Keys `first`, `first + 1`, … for `count` rows without keys in the file: plain numbers (the
 * library's fast key path) while they are exact, bigints beyond 2^53 − 1. */
function rowKeys(first, count) {
  const last = first + BigInt(count) - 1n
  if (last > MAX_KEY) throw new CliError('ERR_USAGE', `--start-key: key ${last} (of a row of the file) would pass 2^64 − 1`)
  if (last <= BigInt(Number.MAX_SAFE_INTEGER)) {
    const start = Number(first)
    return Array.from({ length: count }, (_, i) => start + i)
  }
  const keys = new BigUint64Array(count)
  for (let i = 0; i < count; i++) keys[i] = first + BigInt(i)
  return keys
}

export function usage() {
  return `Usage: vecdex build <input> --output <index-file> [options]

Builds an index from a vector file and saves it (atomically: an existing file is replaced whole
or not at all).

Input formats (by extension): ${VECTOR_FORMATS.join(', ')}
  .fvecs/.bvecs   texmex rows: int32 dimension, then float32 / uint8 values
  .npy            a C-ordered 2-D array (rows × dimensions) of float32/float64/float16/int8/uint8
  .jsonl/.ndjson  one vector per line: [0.1, …] or {"key": 7, "vector": [0.1, …]}
  .hdf5/.h5       a 2-D float32/float64 dataset: train (ann-benchmarks' base vectors), or the
                  one named after a colon, e.g. glove-100-angular.hdf5:test; needs the package
                  h5wasm (npm install h5wasm)
Keys are the row numbers (from --start-key) unless the JSON lines give them, so query results
match ground-truth files of row numbers.

Options:
  -o, --output <file>          index file to write (required)
      --index <kind>           hnsw (default) | flat (exact search)
      --metric <metric>        cosine | dot | l2sq (default cosine; for an HDF5 file with
                               ann-benchmarks' distance attribute, euclidean → l2sq, angular → cosine)
      --m <n>                  hnsw: neighbours per node (default ${optionDefault('HnswIndexOptions', 'm')})
      --ef-construction <n>    hnsw: candidates while linking (default ${optionDefault('HnswIndexOptions', 'efConstruction')})
      --ef-search <n>          hnsw: default candidates per search, saved with the index (default ${optionDefault('HnswIndexOptions', 'efSearch')})
      --seed <n>               hnsw: level-draw seed
      --insertion-order <o>    hnsw: given (default) | random | lid
      --quantization <q>       none (default) | f16 | bf16 | sq8 | sq4 | binary | pq | rabitq
      --subspaces <n>          pq: bytes per vector (default dimensions / 4)
      --bits <n>               rabitq: bits per dimension, 1 (default) or 4 (extended RaBitQ)
      --oversample <n>         candidates rescored per result, × k
      --training-size <n>      vectors held when the codec trains itself
      --full-vectors <file>    keep the full vectors in this file (appended to, memory-mapped;
                               the index file refers to it) instead of memory; needs --quantization
      --limit <n>              the first n vectors only
      --start-key <n>          key of row 0 when the file has no keys (default 0)
      --batch <n>              vectors per add (default 10000; at most addStream's batchSize
                               limit, read at most 2^25 values at a time)
  -t, --threads <n>            threads (default: every core; at most the library's limit)
      --progress, --no-progress  force the progress bar on or off (default: on when stderr is a terminal)
      --json                   print the summary as JSON
  -h, --help                   this text`
}

export async function run(args) {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, { positionals: 1 })
  if (values.help) {
    console.log(usage())
    return 0
  }
  if (!values.output) throw new CliError('ERR_USAGE', '--output <index-file> is required')
  oneOf(values, 'index', ['hnsw', 'flat'])
  // Every library option is checked here (a usage error, exit 2) against the library's own
  // option table; the CLI's own flags (--limit, --batch) by their own rules.
  tableOption(values, 'metric', 'HnswIndexOptions', 'metric')
  tableOption(values, 'quantization', 'QuantizationOptions', 'type')
  const limit = integerOption(values, 'limit', 1, Number.MAX_SAFE_INTEGER, Infinity)
  const batchRows = integerOption(values, 'batch', 1, optionSpecMax('AddStreamOptions', 'batchSize'), 10_000)
  const startKey = tableOption(values, 'start-key', 'AddStreamOptions', 'startKey') ?? 0n
  const threads = tableOption(values, 'threads', 'ConfigureOptions', 'threads')
  const graphOptions = {
    m: tableOption(values, 'm', 'HnswIndexOptions', 'm'),
    efConstruction: tableOption(values, 'ef-construction', 'HnswIndexOptions', 'efConstruction'),
    efSearch: tableOption(values, 'ef-search', 'HnswIndexOptions', 'efSearch'),
    seed: tableOption(values, 'seed', 'HnswIndexOptions', 'seed'),
    insertionOrder: tableOption(values, 'insertion-order', 'HnswIndexOptions', 'insertionOrder'),
  }
  if (values.index === 'flat') {
    for (const [name, value] of Object.entries(graphOptions)) {
      if (value !== undefined) throw new CliError('ERR_USAGE', `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to --index hnsw only`)
    }
  }
  const subspaces = tableOption(values, 'subspaces', 'QuantizationOptions', 'subspaces')
  if (subspaces !== undefined && values.quantization !== 'pq') throw new CliError('ERR_USAGE', '--subspaces needs --quantization pq')
  const bits = tableOption(values, 'bits', 'QuantizationOptions', 'bits')
  if (bits !== undefined && values.quantization !== 'rabitq') throw new CliError('ERR_USAGE', '--bits needs --quantization rabitq')
  const quantization =
    values.quantization === undefined || values.quantization === 'none'
      ? undefined
      : subspaces
        ? { type: 'pq', subspaces }
        : bits
          ? { type: 'rabitq', bits }
          : values.quantization

  const fullVectorsPath = tableOption(values, 'full-vectors', 'FullVectorsOptions', 'path')
  if (fullVectorsPath !== undefined && quantization === undefined) throw new CliError('ERR_USAGE', '--full-vectors needs --quantization (an uncompressed index searches its full vectors)')
  const oversample = tableOption(values, 'oversample', 'CompressionOptions', 'oversample')
  const trainingSize = tableOption(values, 'training-size', 'CompressionOptions', 'trainingSize')

  const input = await openVectorFile(positionals[0])
  const metric = values.metric ?? metricOfDistance(input.file, input.distance) ?? 'cosine'
  if (input.rows !== undefined && startKey + BigInt(Math.min(input.rows, limit)) - 1n > MAX_KEY) {
    throw new CliError('ERR_USAGE', `--start-key ${startKey}: the keys of ${Math.min(input.rows, limit)} rows would pass 2^64 − 1`)
  }
  const vecdex = await loadVecdex(threads)
  const options = {
    dimensions: input.dim,
    metric,
    quantization,
    oversample,
    trainingSize,
    fullVectors: fullVectorsPath === undefined ? undefined : { path: fullVectorsPath },
    ...(values.index === 'hnsw' ? graphOptions : {}),
  }
  for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key]
  const Index = values.index === 'hnsw' ? vecdex.HnswIndex : vecdex.FlatIndex
  const index = new Index(options)
  const total = input.rows === undefined ? undefined : Math.min(input.rows, limit)
  const enabled = values['no-progress'] ? false : values.progress ? true : undefined
  const bar = progressBar(`adding ${input.format} vectors`, { total, unit: '', enabled })
  const started = performance.now()
  let added = 0
  try {
    for await (const batch of input.batches(batchRows, limit)) {
      if (batch.keys && values['start-key'] !== undefined) throw new CliError('ERR_USAGE', `--start-key: ${input.file} gives its own keys`)
      const keys = batch.keys ?? rowKeys(startKey + BigInt(batch.first), batch.count)
      await index.add(keys, batch.vectors)
      added += batch.count
      bar.update(added)
    }
    bar.done()
    if (added === 0) throw new CliError('ERR_INPUT_FORMAT', `${input.file}: no vectors`)
    const buildSeconds = (performance.now() - started) / 1000
    const saveStarted = performance.now()
    await index.save(values.output)
    const saveSeconds = (performance.now() - saveStarted) / 1000
    const fileBytes = fs.statSync(values.output).size
    const summary = {
      output: values.output,
      input: input.file,
      ...(input.dataset === undefined ? {} : { dataset: input.dataset }),
      format: input.format,
      index: values.index,
      vectors: index.size,
      dimensions: input.dim,
      metric,
      options,
      buildSeconds,
      saveSeconds,
      fileBytes,
      ...(values.index === 'hnsw' ? { stats: index.stats() } : {}),
    }
    if (values.json) console.log(toJson(summary))
    else {
      console.log(`${values.output}: ${values.index === 'hnsw' ? 'HNSW' : 'flat'} index of ${fmt(index.size)} vectors × ${input.dim} (${metric}${quantization ? `, ${typeof quantization === 'string' ? quantization : 'pq'}` : ''})`)
      console.log(`built in ${fmt(buildSeconds)} s (${fmt(index.size / buildSeconds)} vectors/s), saved in ${fmt(saveSeconds)} s, ${fmtBytes(fileBytes)}`)
    }
    return 0
  } finally {
    bar.done()
    index.close()
  }
}
