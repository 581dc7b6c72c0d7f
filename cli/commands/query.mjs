// vecdex query <index-file>: searches a saved flat or HNSW index with vectors from a file or the
// command line; with --groundtruth, recall@k against the true neighbours.

import { CliError, VECTOR_FORMATS, readVectorFile } from '../vector-files.mjs'
import { integerOption, loadVecdex, optionSpec, parseCommandArgs, tableOption, toJson } from '../main.mjs'
import { progressBar } from '../progress.mjs'
import { fmt } from '../../benchmark/report.mjs'

const OPTIONS = {
  queries: { type: 'string', short: 'q' },
  vector: { type: 'string' },
  k: { type: 'string', short: 'k', default: '10' },
  'ef-search': { type: 'string' },
  view: { type: 'boolean' },
  groundtruth: { type: 'string' },
  limit: { type: 'string' },
  batch: { type: 'string' },
  threads: { type: 'string', short: 't' },
  show: { type: 'string', default: '5' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
}

/** Most results the command holds (every query's, for printing): the library's per-search
 * limit, 2^28. */
const MAX_RESULTS = 1 << 28

export function usage() {
  return `Usage: vecdex query <index-file> (--queries <file> | --vector <json>) [options]

Searches a saved index (flat or HNSW) and prints each query's nearest keys and distances
(lower is closer), the time taken, and recall@k when --groundtruth is given.

Options:
  -q, --queries <file>       query vectors: ${VECTOR_FORMATS.join(', ')} (see vecdex build --help)
      --vector <json>        one query vector, e.g. "[0.1, 0.2, 0.3]"
  -k, --k <n>                neighbours per query (default 10; more than the index holds
                             returns them all)
      --ef-search <n>        hnsw: candidates per search (default: the index's own)
      --view                 hnsw: memory-map the file (read-only view) instead of loading it
      --groundtruth <file>   true neighbours' keys per query, row by row (.ivecs, .npy or .jsonl;
                             at least k per row): prints recall@k
      --limit <n>            the first n queries only
      --batch <n>            queries per search call (default 1000)
      --show <n>             queries whose results are printed (default 5; --json prints all)
  -t, --threads <n>          threads (default: every core; at most the library's limit)
      --progress, --no-progress  force the progress bar on or off
      --json                 print every result, the timing and recall as JSON
  -h, --help                 this text`
}

/** Loads (or maps) the index after checking, from its header, that the queries fit it. */
async function openIndex(vecdex, file, { view, dim, efSearch }) {
  const info = await vecdex.inspectIndexFile(file)
  if (info.kind === 'multiVector') {
    throw new CliError('ERR_USAGE', `${file} is a multi-vector index: its queries are point clouds (token matrices); search it with the MultiVectorIndex API`)
  }
  if (info.kind === 'flat') {
    if (view) throw new CliError('ERR_USAGE', '--view applies to HNSW index files; this one is a flat index')
    if (efSearch !== undefined) throw new CliError('ERR_USAGE', '--ef-search applies to HNSW index files; this one is a flat index')
  }
  if (dim !== info.dimensions) {
    throw new vecdex.VecdexError('ERR_DIMENSION_MISMATCH', `the queries have ${dim} dimensions, the index ${info.dimensions}`)
  }
  if (info.kind === 'flat') return { info, index: await vecdex.FlatIndex.load(file) }
  return { info, index: view ? await vecdex.HnswIndex.view(file) : await vecdex.HnswIndex.load(file) }
}

export async function run(args) {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, { positionals: 1 })
  if (values.help) {
    console.log(usage())
    return 0
  }
  if ((values.queries === undefined) === (values.vector === undefined)) throw new CliError('ERR_USAGE', 'give either --queries <file> or --vector <json>')
  // Every number is range-checked here (a usage error, exit 2), with the library's limits.
  const k = tableOption(values, 'k', 'SearchOptions', 'k') ?? 10
  const efSearch = tableOption(values, 'ef-search', 'HnswSearchOptions', 'efSearch')
  const limit = integerOption(values, 'limit', 1, Number.MAX_SAFE_INTEGER, Infinity)
  const batchRows = integerOption(values, 'batch', 1, optionSpec('SearchStreamOptions', 'batchSize').max, 1000)
  const showValue = integerOption(values, 'show', 0, Number.MAX_SAFE_INTEGER, 5)
  const show = values.json ? Infinity : showValue
  const threads = tableOption(values, 'threads', 'ConfigureOptions', 'threads')

  let queries
  if (values.vector !== undefined) {
    let vector
    try {
      vector = JSON.parse(values.vector)
    } catch {
      throw new CliError('ERR_USAGE', `--vector is not JSON: ${values.vector}`)
    }
    if (!Array.isArray(vector) || vector.length === 0 || !vector.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new CliError('ERR_USAGE', '--vector must be a JSON array of finite numbers')
    }
    queries = { dim: vector.length, rows: 1, data: Float32Array.from(vector) }
  } else {
    queries = await readVectorFile(values.queries, limit)
    if (queries.rows === 0) throw new CliError('ERR_INPUT_FORMAT', `${values.queries}: no query vectors`)
  }
  let truth
  if (values.groundtruth !== undefined) {
    // Read as integers (exact ids, also beyond 2^24).
    truth = await readVectorFile(values.groundtruth, queries.rows, { integers: true })
    if (truth.dim < k) throw new CliError('ERR_INPUT_FORMAT', `${values.groundtruth}: ${truth.dim} neighbours per row, fewer than k = ${k}`)
    if (truth.rows < queries.rows) throw new CliError('ERR_INPUT_FORMAT', `${values.groundtruth}: ${truth.rows} rows for ${queries.rows} queries`)
  }

  const vecdex = await loadVecdex(threads)
  const file = positionals[0]
  const { info, index } = await openIndex(vecdex, file, { view: values.view, dim: queries.dim, efSearch })
  const enabled = values['no-progress'] ? false : values.progress ? true : undefined
  const bar = progressBar('searching', { total: queries.rows, unit: ' queries', enabled })
  try {
    // Results are kept per query at stride min(k, index size): what the index can return.
    const stride = Math.min(k, index.size)
    if (queries.rows * stride > MAX_RESULTS) {
      throw new CliError('ERR_USAGE', `${queries.rows} queries × ${stride} results each is more than ${MAX_RESULTS.toLocaleString('en-US')} results: use --limit or a smaller -k`)
    }
    const keys = new BigUint64Array(queries.rows * stride)
    const distances = new Float32Array(queries.rows * stride).fill(NaN)
    const counts = new Uint32Array(queries.rows)
    let seconds = 0
    for (let first = 0; first < queries.rows; first += batchRows) {
      const count = Math.min(batchRows, queries.rows - first)
      const batch = queries.data.subarray(first * queries.dim, (first + count) * queries.dim)
      const started = performance.now()
      const results = await index.searchBatch(batch, efSearch === undefined ? { k } : { k, efSearch })
      seconds += (performance.now() - started) / 1000
      for (let i = 0; i < count; i++) {
        const r = results.get(i)
        keys.set(r.keys, (first + i) * stride)
        distances.set(r.distances, (first + i) * stride)
        counts[first + i] = r.keys.length
      }
      bar.update(first + count)
    }
    bar.done()
    let recall
    if (truth) {
      let hits = 0
      for (let q = 0; q < queries.rows; q++) {
        const expected = new Set(Array.from(truth.data.subarray(q * truth.dim, q * truth.dim + k), (x) => BigInt(x)))
        for (let j = 0; j < counts[q]; j++) if (expected.has(keys[q * stride + j])) hits++
      }
      recall = hits / (queries.rows * k)
    }
    const perQuery = (q) => ({ keys: Array.from(keys.subarray(q * stride, q * stride + counts[q])), distances: Array.from(distances.subarray(q * stride, q * stride + counts[q])) })
    if (values.json) {
      console.log(
        toJson({
          index: { file, kind: info.kind, metric: info.metric, dimensions: info.dimensions, count: info.count, view: Boolean(values.view) },
          k,
          efSearch: efSearch ?? info.settings.efSearch,
          queries: queries.rows,
          seconds,
          queriesPerSecond: queries.rows / seconds,
          ...(recall === undefined ? {} : { recall }),
          results: Array.from({ length: queries.rows }, (_, q) => perQuery(q)),
        }),
      )
    } else {
      for (let q = 0; q < Math.min(show, queries.rows); q++) {
        const r = perQuery(q)
        console.log(`query ${q}: ${r.keys.map((key, j) => `${key} (${fmt(r.distances[j], 4)})`).join(', ')}`)
      }
      if (queries.rows > show) console.log(`… ${(queries.rows - show).toLocaleString('en-US')} more queries (--show n prints more, --json prints all)`)
      const ef = info.kind === 'hnsw' ? `, efSearch ${efSearch ?? info.settings.efSearch}` : ''
      console.log(`${fmt(queries.rows)} queries, k ${k}${ef}: ${fmt(seconds)} s, ${fmt(queries.rows / seconds)} queries/s${recall === undefined ? '' : `, recall@${k} ${recall.toFixed(4)}`}`)
    }
    return 0
  } finally {
    bar.done()
    index.close()
  }
}
