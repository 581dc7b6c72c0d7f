// HDF5 vector files, as ann-benchmarks writes them: at the root, the 2-D datasets `train` (base
// vectors), `test` (queries), `neighbors` (per query, the row numbers of its true nearest
// `train` rows, best first) and `distances` (their distances), and the attribute `distance`
// ('euclidean', 'angular', 'jaccard' or 'hamming'). Any 2-D dataset can be read by its path,
// also inside a group: `file.hdf5:test`, `file.hdf5:group/name`.
//
// Read with h5wasm (the HDF5 C library compiled to WebAssembly: no native build), which vecdex
// does not install with itself: it is 15 MB unpacked, for a format most users never read. It is
// imported on first use; when it is missing, ERR_MISSING_DEPENDENCY says to install it.
//
// Every malformation is ERR_INPUT_FORMAT naming the file and the dataset: not an HDF5 file,
// a missing dataset, a group or a scalar where a dataset is expected, not 2-D, vectors that are
// not float32/float64 (or ids that are not integers), non-finite values.

import fs from 'node:fs'
import { MessageChannel, Worker, isMainThread, receiveMessageOnPort, workerData } from 'node:worker_threads'
import { CliError, checkDim, checkFinite, fileSize, inputError, rowsPerBatch } from './vector-files.mjs'

/** The dataset read when none is named: ann-benchmarks' base vectors, or its neighbour ids. */
const DEFAULT_VECTORS = 'train'
const DEFAULT_IDS = 'neighbors'

/** ann-benchmarks' `distance` attribute → vecdex's metric (same neighbours: cosine distance is
 * 1 − cos, as "angular" is there; l2sq is euclidean squared). */
const ANN_BENCHMARKS_METRICS = { euclidean: 'l2sq', angular: 'cosine' }

/**
 * `file.hdf5:name` → `{ file: 'file.hdf5', dataset: 'name' }`; any other path → `{ file }`.
 * Only a name after an .hdf5/.h5 extension is split off, so Windows drive letters stay.
 * @param {string} spec
 * @returns {{ file: string, dataset?: string }}
 */
export function splitHdf5Path(spec) {
  const match = /^(.+\.(?:hdf5|h5)):([^:]+)$/i.exec(spec)
  return match ? { file: match[1], dataset: match[2] } : { file: spec }
}

/**
 * The vecdex metric of an ann-benchmarks `distance` attribute, or undefined when the file has
 * none. 'jaccard' and 'hamming' (sets and bit strings) have none: ERR_INPUT_FORMAT.
 * @param {string} file
 * @param {string | undefined} distance
 * @returns {'l2sq' | 'cosine' | undefined}
 */
export function metricOfDistance(file, distance) {
  if (distance === undefined) return undefined
  const metric = ANN_BENCHMARKS_METRICS[distance]
  if (!metric) {
    throw inputError(file, `its distance attribute is "${distance}", which no vecdex metric measures (euclidean is l2sq, angular is cosine); give --metric to read its vectors anyway`)
  }
  return metric
}

let h5wasmLoading

/** h5wasm's Node build, imported and instantiated once. */
function loadH5wasm() {
  h5wasmLoading ??= (async () => {
    let h5wasm
    try {
      h5wasm = await import('h5wasm/node')
    } catch (error) {
      if (error?.code === 'ERR_MODULE_NOT_FOUND' && /'h5wasm'/.test(error.message)) {
        throw new CliError('ERR_MISSING_DEPENDENCY', 'reading HDF5 files needs the package h5wasm, which vecdex does not install itself: run `npm install h5wasm` in your project (with npx: npx -p vecdex -p h5wasm vecdex …)')
      }
      throw error
    }
    await h5wasm.ready
    return h5wasm
  })()
  return h5wasmLoading
}

/** The HDF5 library's own reason from its error stack: the innermost frame, e.g. "truncated
 * file: eof = 6944, …" (h5wasm throws the whole stack as the message). */
function hdf5Reason(error) {
  const text = String(error?.message ?? error)
  const frames = [...text.matchAll(/#\d+: .*? in [\w.]+\(\): (.+)$/gm)]
  return frames.length ? frames[frames.length - 1][1].trim() : text.split('\n')[0]
}

/**
 * Runs a call into h5wasm with HDF5's errors thrown (not printed to stderr, which HDF5 does by
 * default) and turned into ERR_INPUT_FORMAT, `what` saying what was being read.
 */
function hdf5Call(h5wasm, file, what, call) {
  h5wasm.Module.activate_throwing_error_handler()
  try {
    return call()
  } catch (error) {
    if (error instanceof CliError) throw error
    throw inputError(file, `${what}: ${hdf5Reason(error)}`)
  } finally {
    h5wasm.Module.deactivate_throwing_error_handler()
  }
}

/** HDF5's file signature; the superblock is at byte 0 or, after a user block, 512, 1024, 2048, … */
const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])

/** Checks the signature before h5wasm is loaded: a file that is not HDF5 is an input error
 * whether or not h5wasm is installed. */
function checkSignature(file, size) {
  if (size === 0) throw inputError(file, 'the file is empty')
  const fd = fs.openSync(file, 'r')
  try {
    const head = Buffer.alloc(HDF5_SIGNATURE.length)
    for (let at = 0; at + head.length <= size; at = at === 0 ? 512 : at * 2) {
      if (fs.readSync(fd, head, 0, head.length, at) === head.length && head.equals(HDF5_SIGNATURE)) return
    }
  } finally {
    fs.closeSync(fd)
  }
  throw inputError(file, 'not an HDF5 file (no HDF5 signature at byte 0, 512, 1024, …)')
}

/** Opens the file with h5wasm and runs `use(handle)`, closing the file after. */
function withHdf5File(h5wasm, file, use) {
  const handle = hdf5Call(h5wasm, file, 'cannot open it as HDF5', () => new h5wasm.File(file, 'r'))
  try {
    return use(handle)
  } finally {
    hdf5Call(h5wasm, file, 'cannot close it', () => handle.close())
  }
}

/** The names of the datasets at the file's root, for "has no dataset" messages. */
function rootDatasets(h5wasm, handle, file) {
  const names = hdf5Call(h5wasm, file, 'cannot list its datasets', () => handle.keys().filter((name) => handle.get(name) instanceof h5wasm.Dataset))
  return names.length ? names.join(', ') : 'none'
}

/** A dataset's value type, as messages name it: float32, int64, uint8, string, compound… */
function typeName(h5wasm, metadata) {
  const { H5T_FLOAT, H5T_INTEGER } = h5wasm.Module.H5T_class_t
  const bits = metadata.size * 8
  if (metadata.type === H5T_FLOAT.value) return `float${bits}`
  if (metadata.type === H5T_INTEGER.value) return `${metadata.signed ? 'int' : 'uint'}${bits}`
  const [name] = Object.entries(h5wasm.Module.H5T_class_t).find(([, c]) => c?.value === metadata.type) ?? [`class ${metadata.type}`]
  return name.replace(/^H5T_/, '').toLowerCase()
}

/** The object at `name`, or null when there is none (also for a path through a dataset). */
function findEntity(h5wasm, handle, file, name) {
  try {
    return hdf5Call(h5wasm, file, `dataset "${name}"`, () => handle.get(name))
  } catch {
    return null
  }
}

/**
 * The shape of dataset `name`, checked: 2-D, float32/float64 values, or integers of any width
 * when `integers` (neighbour ids).
 * @returns {{ rows: number, dim: number }}
 */
function describeDataset(h5wasm, handle, file, name, integers) {
  const entity = findEntity(h5wasm, handle, file, name)
  if (!entity) throw inputError(file, `has no dataset "${name}" (datasets at its root: ${rootDatasets(h5wasm, handle, file)})`)
  if (!(entity instanceof h5wasm.Dataset)) throw inputError(file, `"${name}" is a group, not a dataset`)
  const metadata = hdf5Call(h5wasm, file, `dataset "${name}"`, () => entity.metadata)
  const shape = metadata.shape ?? []
  if (shape.length !== 2) {
    throw inputError(file, `dataset "${name}" has shape (${shape.join(', ')}): expected rows × ${integers ? 'neighbours' : 'dimensions'} (2-D)`)
  }
  const { H5T_FLOAT, H5T_INTEGER } = h5wasm.Module.H5T_class_t
  const type = typeName(h5wasm, metadata)
  if (integers && metadata.type !== H5T_INTEGER.value) throw inputError(file, `dataset "${name}" holds ${type} values: neighbour ids must be integers`)
  if (!integers && (metadata.type !== H5T_FLOAT.value || (metadata.size !== 4 && metadata.size !== 8))) {
    throw inputError(file, `dataset "${name}" holds ${type} values: vectors must be float32 or float64`)
  }
  return { rows: shape[0], dim: shape[1] }
}

/** ann-benchmarks' `distance` attribute of the file's root, if any. */
function distanceAttribute(h5wasm, handle, file) {
  return hdf5Call(h5wasm, file, 'attribute "distance"', () => {
    if (!Object.keys(handle.attrs).includes('distance')) return undefined
    const value = handle.attrs.distance.value
    const text = Array.isArray(value) && value.length === 1 ? value[0] : value
    if (typeof text !== 'string') throw inputError(file, `its attribute "distance" is ${JSON.stringify(value)}, not a string`)
    return text
  })
}

/** Rows [first, first + count) of a checked dataset, as float32 vectors (float64 exact ids
 * when `integers`). */
function readRows(h5wasm, handle, file, name, { dim, integers }, first, count) {
  const values = hdf5Call(h5wasm, file, `dataset "${name}", rows ${first}–${first + count - 1}`, () => handle.get(name).slice([[first, first + count], []]))
  if (!values || values.length !== count * dim) throw inputError(file, `dataset "${name}": read ${values?.length ?? 0} values for ${count} rows of ${dim}`)
  if (integers) {
    const ids = new Float64Array(values.length)
    for (let i = 0; i < values.length; i++) {
      const id = values[i]
      if (typeof id === 'bigint' && (id > BigInt(Number.MAX_SAFE_INTEGER) || id < -BigInt(Number.MAX_SAFE_INTEGER))) {
        throw inputError(file, `dataset "${name}", row ${first + Math.floor(i / dim)}: id ${id} is beyond 2^53`)
      }
      ids[i] = Number(id)
    }
    return ids
  }
  const vectors = values instanceof Float32Array ? values : Float32Array.from(values)
  checkFinite(`${file}: dataset "${name}"`, vectors, dim, first)
  return vectors
}

/**
 * Opens dataset `dataset` of an HDF5 file (default `train`, or `neighbors` with
 * `{ integers: true }`) as a VectorFile (see vector-files.mjs): its shape and type are checked
 * now, its rows read in batches. Its `distance` is the file's ann-benchmarks attribute.
 * @param {string} file
 * @param {string | undefined} dataset
 * @param {number} size  the file's size in bytes
 * @param {boolean} integers
 */
export async function openHdf5(file, dataset, size, integers) {
  checkSignature(file, size)
  const h5wasm = await loadH5wasm()
  const name = dataset ?? (integers ? DEFAULT_IDS : DEFAULT_VECTORS)
  const { rows, dim, distance } = withHdf5File(h5wasm, file, (handle) => ({
    ...describeDataset(h5wasm, handle, file, name, integers),
    distance: distanceAttribute(h5wasm, handle, file),
  }))
  const bytesPerRow = size / Math.max(rows, 1)
  return {
    file,
    dataset: name,
    format: '.hdf5',
    dim,
    rows,
    bytes: size,
    distance,
    async *batches(asked, limit = Infinity) {
      const batchRows = rowsPerBatch(asked, dim)
      const total = Math.min(rows, limit)
      const handle = hdf5Call(h5wasm, file, 'cannot open it as HDF5', () => new h5wasm.File(file, 'r'))
      try {
        for (let first = 0; first < total; first += batchRows) {
          const count = Math.min(batchRows, total - first)
          const vectors = readRows(h5wasm, handle, file, name, { dim, integers }, first, count)
          // The file's bytes are not read in row order (HDF5 has its own layout): an estimate.
          yield { vectors, first, count, bytesRead: Math.round((first + count) * bytesPerRow) }
        }
      } finally {
        hdf5Call(h5wasm, file, 'cannot close it', () => handle.close())
      }
    },
  }
}

/** Every row (at most `limit`) of an opened dataset: `{ rows, dim, data }`. */
async function readWhole(input, limit, integers) {
  const total = Math.min(input.rows, limit)
  const data = new (integers ? Float64Array : Float32Array)(total * input.dim)
  for await (const batch of input.batches(65_536, total)) data.set(batch.vectors, batch.first * input.dim)
  return { rows: total, dim: input.dim, data }
}

/**
 * @typedef {object} AnnBenchmarksData
 * @property {{ rows: number, dim: number, data: Float32Array }} train   at most `limit` rows
 * @property {number} trainRows     rows of `train` in the file
 * @property {{ rows: number, dim: number, data: Float32Array }} test    at most `queries` rows
 * @property {{ rows: number, dim: number, data: Float64Array } | undefined} neighbors  one row
 *   of ids per `test` row read; undefined when the file has no `neighbors`
 * @property {string | undefined} distance  the file's `distance` attribute
 */

/**
 * An ann-benchmarks file's base vectors, queries and true neighbours, checked against each
 * other: `test` has `train`'s dimension; `neighbors` has a row per `test` row, of ids of
 * `train` rows. (`distances` is not read: the benchmark measures distances itself, under
 * vecdex's metric convention.)
 * @param {string} file
 * @param {{ limit?: number, queries?: number }} [options]
 * @returns {Promise<AnnBenchmarksData>}
 */
export async function readAnnBenchmarks(file, { limit = Infinity, queries = Infinity } = {}) {
  const size = fileSize(file)
  const trainFile = await openHdf5(file, 'train', size, false)
  const testFile = await openHdf5(file, 'test', size, false)
  for (const input of [trainFile, testFile]) if (input.rows === 0) throw inputError(file, `dataset "${input.dataset}" has no rows`)
  if (testFile.dim !== trainFile.dim) {
    throw inputError(file, `dataset "test" has ${testFile.dim} dimensions, dataset "train" ${trainFile.dim}`)
  }
  const h5wasm = await loadH5wasm()
  const hasNeighbors = withHdf5File(h5wasm, file, (handle) => findEntity(h5wasm, handle, file, 'neighbors') !== null)
  const neighborsFile = hasNeighbors ? await openHdf5(file, 'neighbors', size, true) : undefined
  if (neighborsFile && neighborsFile.rows !== testFile.rows) {
    throw inputError(file, `dataset "neighbors" has ${neighborsFile.rows} rows, dataset "test" ${testFile.rows}: one row of ids per query`)
  }
  const test = await readWhole(testFile, queries, false)
  const neighbors = neighborsFile && (await readWhole(neighborsFile, test.rows, true))
  if (neighbors) {
    for (let i = 0; i < neighbors.data.length; i++) {
      const id = neighbors.data[i]
      if (!(id >= 0 && id < trainFile.rows)) {
        throw inputError(file, `dataset "neighbors", row ${Math.floor(i / neighbors.dim)}: id ${id} is not a row of "train" (0 to ${trainFile.rows - 1})`)
      }
    }
  }
  const train = await readWhole(trainFile, limit, false)
  return { train, trainRows: trainFile.rows, test, neighbors, distance: trainFile.distance }
}

/** States of the reading thread, in the shared flag the caller waits on. */
const STARTING = 0
const STARTED = 1
const ANSWERED = 2
/** A reading thread that has not started by then never will (its 'error' event cannot reach
 * the caller, which is blocked waiting). */
const STARTUP_MS = 60_000

/**
 * `readAnnBenchmarks`, synchronously, for the benchmark's dataset loader (synchronous, like
 * every caller of it): h5wasm only reads asynchronously, so a worker thread reads the file
 * while this thread waits on a shared flag, then takes the arrays (transferred, not copied).
 * Errors keep their codes.
 * @param {string} file
 * @param {{ limit?: number, queries?: number }} [options]
 * @returns {AnnBenchmarksData}
 */
export function readAnnBenchmarksSync(file, options = {}) {
  const state = new Int32Array(new SharedArrayBuffer(4))
  const { port1: reply, port2 } = new MessageChannel()
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { annBenchmarksJob: { file, options, state, port: port2 } },
    transferList: [port2],
    // Not this process's flags: e.g. `node --input-type=module -e …` would stop the thread at once.
    execArgv: [],
  })
  // Its failures reach this thread as the answer, or as the start-up time-out: the event that
  // arrives later must not end the process.
  worker.on('error', () => {})
  let message
  try {
    if (Atomics.wait(state, 0, STARTING, STARTUP_MS) === 'timed-out') {
      throw new Error(`${file}: the HDF5 reading thread did not start within ${STARTUP_MS / 1000} s`)
    }
    while (Atomics.load(state, 0) !== ANSWERED) Atomics.wait(state, 0, STARTED)
    message = receiveMessageOnPort(reply)?.message
  } finally {
    reply.close()
    void worker.terminate()
  }
  if (message?.error) throw message.error.code ? new CliError(message.error.code, message.error.message) : new Error(message.error.message)
  if (!message?.result) throw new Error(`${file}: the HDF5 reading thread ended without an answer`)
  // The library's dimension limit, from the native module: read here, not in the reading thread.
  checkDim(file, message.result.train.dim, 'dataset "train"')
  return message.result
}

if (!isMainThread && workerData?.annBenchmarksJob) {
  const { file, options, state, port } = workerData.annBenchmarksJob
  Atomics.store(state, 0, STARTED)
  Atomics.notify(state, 0)
  let done = false
  const answer = (message, transfer = []) => {
    if (done) return
    done = true
    try {
      port.postMessage(message, transfer)
    } catch (error) {
      port.postMessage({ error: { message: `${file}: cannot hand over what was read: ${error.message}` } })
    }
    Atomics.store(state, 0, ANSWERED)
    Atomics.notify(state, 0)
  }
  // The caller waits for the flag: a thread that ends without an answer must still raise it.
  process.on('exit', () => answer({ error: { message: `${file}: the HDF5 reading thread stopped` } }))
  readAnnBenchmarks(file, options).then(
    (result) => answer({ result }, [result.train.data.buffer, result.test.data.buffer, ...(result.neighbors ? [result.neighbors.data.buffer] : [])]),
    (error) => answer({ error: { code: error instanceof CliError ? error.code : undefined, message: error?.message ?? String(error) } }),
  )
}
