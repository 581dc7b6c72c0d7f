// Vector files the command line (and the benchmark's `file:` datasets) read, in batches, with
// every malformation a typed error (`ERR_INPUT_FORMAT`) naming the file and the place:
//
//   .fvecs / .bvecs / .ivecs  (texmex): per row, a little-endian int32 dimension d, then d
//       float32 / uint8 / int32 values; every row must have the first row's d.
//   .npy  (NumPy format 1.0–3.0): a C-ordered 1-D (one vector) or 2-D (rows × d) array of
//       float32, float64, float16, int8 or uint8, any byte order; values become float32.
//   .jsonl / .ndjson  one vector per line: `[0.1, 0.2, …]` or `{"key": 7, "vector": […]}`
//       (`id` for `key`, `values` or `embedding` for `vector`); keys non-negative integers, as
//       numbers or decimal strings (beyond 2^53); either every line has a key or none has.
//       Blank lines are skipped.
//   .hdf5 / .h5  (cli/hdf5.mjs, with the optional package h5wasm) a 2-D float32/float64
//       dataset: `train` (ann-benchmarks' base vectors) unless named, `file.hdf5:test`.
// With `{ integers: true }` (neighbour ids of a ground-truth file) the rows are integers, read
// exactly into a Float64Array: .ivecs, a .npy of int32/uint32/int64/uint64 (below 2^53), JSON
// lines of integer arrays, or an integer HDF5 dataset (`neighbors` unless named).

import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { optionSpec } from './main.mjs'
import { openHdf5, splitHdf5Path } from './hdf5.mjs'

/** An error the command line reports with its code (the library's errors have theirs). */
export class CliError extends Error {
  /**
   * @param {string} code  ERR_USAGE (exit 2), ERR_INPUT_FORMAT or ERR_IO (exit 1)
   * @param {string} message
   */
  constructor(code, message) {
    super(message)
    this.name = 'CliError'
    this.code = code
  }
}

export const inputError = (file, message) => new CliError('ERR_INPUT_FORMAT', `${file}: ${message}`)

/** Formats by extension. */
export const VECTOR_FORMATS = ['.fvecs', '.bvecs', '.ivecs', '.npy', '.jsonl', '.ndjson', '.hdf5', '.h5']

/** Largest dimension accepted from a file (the indexes accept up to 65,536). */

/** Most values one batch holds (128 MiB as float32): a large batch size asked for (`--batch`)
 * reads in batches of at most this many values, never an allocation beyond memory. */
const MAX_BATCH_VALUES = 1 << 25

/** Rows per batch: `batchRows`, or fewer when rows of `dim` values would pass the cap. */
export function rowsPerBatch(batchRows, dim) {
  return Math.max(1, Math.min(batchRows, Math.floor(MAX_BATCH_VALUES / dim)))
}

/**
 * @typedef {object} VectorBatch
 * @property {Float32Array} vectors      count × dim, row-major
 * @property {number} first              row number of the first vector in the file
 * @property {number} count
 * @property {BigUint64Array} [keys]     keys given in the file (JSON lines only)
 */
/**
 * @typedef {object} VectorFile
 * @property {string} file
 * @property {string} format          extension, e.g. '.fvecs'
 * @property {number} dim
 * @property {number | undefined} rows   rows in the file (unknown for JSON lines until read)
 * @property {number} bytes           file size
 * @property {string} [dataset]       HDF5: the dataset read
 * @property {string} [distance]      HDF5: the file's ann-benchmarks `distance` attribute, if any
 * @property {(batchRows: number, limit?: number) => AsyncGenerator<VectorBatch & { bytesRead: number }>} batches
 */

/**
 * Opens a vector file by its extension and checks its header (and, for fixed-size formats,
 * its length) before any row is read. An HDF5 file may name its dataset: `file.hdf5:test`.
 * @param {string} spec  the file's path
 * @returns {Promise<VectorFile>}
 */
export async function openVectorFile(spec, { integers = false } = {}) {
  const { file, dataset } = splitHdf5Path(spec)
  const format = path.extname(file).toLowerCase()
  const size = fileSize(file)
  switch (format) {
    case '.fvecs':
    case '.bvecs':
    case '.ivecs':
      return openVecs(file, format, size, integers)
    case '.npy':
      return openNpy(file, size, integers)
    case '.jsonl':
    case '.ndjson':
      return openJsonLines(file, format, size, integers)
    case '.hdf5':
    case '.h5': {
      const input = await openHdf5(file, dataset, size, integers)
      checkDim(file, input.dim, `dataset "${input.dataset}"`)
      return input
    }
    default:
      throw inputError(file, `unknown vector format "${format || '(no extension)'}": use ${VECTOR_FORMATS.join(', ')}`)
  }
}

/**
 * Every row of a vector file at once: `{ dim, rows, data, keys? }` (data: Float32Array, or
 * Float64Array with `{ integers: true }`).
 */
export async function readVectorFile(file, limit = Infinity, options = {}) {
  const input = await openVectorFile(file, options)
  const batches = []
  for await (const batch of input.batches(65_536, limit)) batches.push(batch)
  return gather(input, batches, options.integers ? Float64Array : Float32Array)
}

/**
 * A whole .fvecs / .bvecs / .ivecs file, synchronously (the benchmark's datasets):
 * `{ dim, rows, data }`, data Float32Array (.ivecs: Float64Array of the exact ids).
 */
export function readVecsSync(file, limit = Infinity) {
  const format = path.extname(file).toLowerCase()
  if (!['.fvecs', '.bvecs', '.ivecs'].includes(format)) throw inputError(file, 'expected .fvecs, .bvecs or .ivecs')
  const integers = format === '.ivecs'
  const input = openVecs(file, format, fileSize(file), integers)
  return gather(input, [...input.rowsSync(65_536, limit)], integers ? Float64Array : Float32Array)
}

/** One array of every batch's rows (and keys, when the file gives them). */
function gather(input, batches, Rows) {
  const rows = batches.reduce((n, b) => n + b.count, 0)
  const data = new Rows(rows * input.dim)
  const keys = batches.some((b) => b.keys) ? new BigUint64Array(rows) : undefined
  for (const b of batches) {
    data.set(b.vectors, b.first * input.dim)
    keys?.set(b.keys, b.first)
  }
  return { dim: input.dim, rows, data, keys, format: input.format }
}

export function fileSize(file) {
  let stat
  try {
    stat = fs.statSync(file)
  } catch (error) {
    throw new CliError('ERR_IO', `cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`)
  }
  if (!stat.isFile()) throw new CliError('ERR_IO', `${file} is not a file`)
  return stat.size
}

function readExactly(fd, buffer, position, file) {
  let done = 0
  while (done < buffer.length) {
    const n = fs.readSync(fd, buffer, done, buffer.length - done, position + done)
    if (n === 0) throw inputError(file, `unexpected end of file at byte ${position + done}`)
    done += n
  }
}

export function checkDim(file, dim, where) {
  // The library's dimension limit (the core's option table), loaded only when a file is read.
  const maxDim = optionSpec('FlatIndexOptions', 'dimensions').max
  if (!Number.isInteger(dim) || dim < 1 || dim > maxDim) throw inputError(file, `${where}: dimension ${dim} is not between 1 and ${maxDim}`)
}

// --- texmex .fvecs / .bvecs / .ivecs ----------------------------------------------------------

function openVecs(file, format, size, integers) {
  const width = format === '.bvecs' ? 1 : 4
  if (integers && format !== '.ivecs') throw inputError(file, `neighbour ids come as .ivecs, an integer .npy or JSON lines, not ${format}`)
  if (size === 0) throw inputError(file, 'the file is empty')
  if (size < 4) throw inputError(file, `${size} bytes is shorter than a row's dimension field`)
  const fd = fs.openSync(file, 'r')
  let dim
  try {
    const head = Buffer.alloc(4)
    readExactly(fd, head, 0, file)
    dim = head.readInt32LE(0)
  } finally {
    fs.closeSync(fd)
  }
  checkDim(file, dim, 'row 0')
  const stride = 4 + dim * width
  if (size % stride !== 0) {
    throw inputError(file, `${size} bytes is not a whole number of ${stride}-byte rows (dimension ${dim}): truncated, or not ${format}`)
  }
  const rows = size / stride
  return {
    file,
    format,
    dim,
    rows,
    bytes: size,
    ...fixedRowBatches(file, { rows, rowBytes: stride, dataStart: 0, dim }, (buffer, view, count, first) => {
      const vectors = new (integers ? Float64Array : Float32Array)(count * dim)
      for (let i = 0; i < count; i++) {
        const at = i * stride
        const rowDim = view.getInt32(at, true)
        if (rowDim !== dim) throw inputError(file, `row ${first + i} has dimension ${rowDim}, row 0 has ${dim}`)
        const out = vectors.subarray(i * dim, (i + 1) * dim)
        // Little-endian hosts (every platform vecdex ships for) read the values in place.
        if (format === '.bvecs') out.set(buffer.subarray(at + 4, at + 4 + dim))
        else if (format === '.ivecs') out.set(new Int32Array(buffer.buffer, at + 4, dim))
        else out.set(new Float32Array(buffer.buffer, at + 4, dim))
      }
      if (format === '.fvecs') checkFinite(file, vectors, dim, first)
      return vectors
    }),
  }
}

/**
 * `batches` (async) and `rowsSync` of a file of fixed-size rows from `dataStart` on: reads up
 * to `batchRows` rows at a time into one reused buffer (fresh, so it starts 4-byte aligned) and
 * decodes them with `decode(buffer, view, count, first)` → the rows as a typed array.
 */
function fixedRowBatches(file, { rows, rowBytes, dataStart, dim }, decode) {
  function* rowsSync(asked, limit = Infinity) {
    const batchRows = rowsPerBatch(asked, dim)
    const total = Math.min(rows, limit)
    const fd = fs.openSync(file, 'r')
    try {
      const buffer = new Uint8Array(Math.min(batchRows, Math.max(total, 1)) * rowBytes)
      const view = new DataView(buffer.buffer)
      for (let first = 0; first < total; first += batchRows) {
        const count = Math.min(batchRows, total - first)
        readExactly(fd, buffer.subarray(0, count * rowBytes), dataStart + first * rowBytes, file)
        const vectors = decode(buffer, view, count, first)
        yield { vectors, first, count, bytesRead: dataStart + (first + count) * rowBytes }
      }
    } finally {
      fs.closeSync(fd)
    }
  }
  return {
    rowsSync,
    async *batches(batchRows, limit) {
      yield* rowsSync(batchRows, limit)
    },
  }
}

export function checkFinite(file, vectors, dim, first) {
  for (let i = 0; i < vectors.length; i++) {
    if (!Number.isFinite(vectors[i])) {
      throw inputError(file, `row ${first + Math.floor(i / dim)}, component ${i % dim} is ${vectors[i]}`)
    }
  }
}

// --- NumPy .npy -------------------------------------------------------------------------------

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]) // "\x93NUMPY"
/** dtype character and size → how to read one value. */
const NPY_TYPES = { f4: 4, f8: 8, f2: 2, i1: 1, u1: 1, i4: 4, u4: 4, i8: 8, u8: 8 }
const NPY_INTEGERS = ['i4', 'u4', 'i8', 'u8']

/** IEEE half → number. */
function halfToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1
  const exponent = (h >> 10) & 0x1f
  const fraction = h & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 31) return fraction ? NaN : sign * Infinity
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}

/**
 * The sizes of a Python tuple as NumPy writes it: `3,` `2, 4` (a trailing comma allowed, and
 * needed for one entry), or none. Only decimal digits are a size: `2.0`, `1e3`, `-1`, `0x10`,
 * `2L` or an empty entry make it not a shape (undefined).
 */
function shapeOf(text) {
  const parts = text.split(',').map((s) => s.trim())
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop()
  if (parts.length === 1 && parts[0] === '') return []
  if (parts.length === 1 && !text.includes(',')) return undefined // (3) is not a tuple
  const dims = parts.map((p) => (/^\d{1,16}$/.test(p) ? Number(p) : NaN))
  return dims.every((d) => Number.isSafeInteger(d)) ? dims : undefined
}

function openNpy(file, size, integers) {
  const fd = fs.openSync(file, 'r')
  let header
  let dataStart
  try {
    const prefix = Buffer.alloc(Math.min(12, size))
    readExactly(fd, prefix, 0, file)
    if (size < 10 || !prefix.subarray(0, 6).equals(NPY_MAGIC)) throw inputError(file, 'not a NumPy .npy file (bad magic)')
    const major = prefix[6]
    if (major < 1 || major > 3) throw inputError(file, `.npy format version ${major}.${prefix[7]} is not supported (1.0–3.0 are)`)
    const lengthBytes = major === 1 ? 2 : 4
    if (size < 8 + lengthBytes) throw inputError(file, 'truncated header')
    const headerLength = major === 1 ? prefix.readUInt16LE(8) : prefix.readUInt32LE(8)
    dataStart = 8 + lengthBytes + headerLength
    if (headerLength > 1 << 20 || dataStart > size) throw inputError(file, `header of ${headerLength} bytes does not fit in the file`)
    const text = Buffer.alloc(headerLength)
    readExactly(fd, text, 8 + lengthBytes, file)
    header = text.toString(major === 3 ? 'utf8' : 'latin1')
  } finally {
    fs.closeSync(fd)
  }
  const descr = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header)
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)
  if (!descr || !fortran || !shape) throw inputError(file, `cannot read the .npy header ${JSON.stringify(header.trim())}`)
  const type = `${descr[2]}${descr[3]}`
  const itemSize = NPY_TYPES[type]
  if (!itemSize) throw inputError(file, `dtype ${descr[1]}${type} is not supported: use float32, float64, float16, int8 or uint8 (integers up to 64 bits for neighbour ids)`)
  if (integers !== NPY_INTEGERS.includes(type)) {
    throw inputError(file, integers ? `dtype ${type}: neighbour ids must be int32, uint32, int64 or uint64` : `dtype ${type} holds ids, not vectors: use float32, float64, float16, int8 or uint8`)
  }
  const bigEndian = descr[1] === '>'
  const dims = shapeOf(shape[1])
  if (!dims) throw inputError(file, `shape (${shape[1]}) is not a tuple of sizes (non-negative integers)`)
  if (dims.length !== 1 && dims.length !== 2) throw inputError(file, `shape (${shape[1]}): expected one vector (1-D) or rows × dimensions (2-D)`)
  const rows = dims.length === 1 ? 1 : dims[0]
  const dim = dims.length === 1 ? dims[0] : dims[1]
  checkDim(file, dim, 'shape')
  if (fortran[1] === 'True' && rows > 1) throw inputError(file, 'Fortran-ordered (column-major) arrays are not supported: save np.ascontiguousarray(x)')
  const expected = dataStart + rows * dim * itemSize
  if (size !== expected) throw inputError(file, `${size} bytes, but the header's shape (${rows}, ${dim}) of ${type} needs ${expected}: truncated or damaged`)
  const rowBytes = dim * itemSize
  const le = !bigEndian
  return {
    file,
    format: '.npy',
    dim,
    rows,
    bytes: size,
    ...fixedRowBatches(file, { rows, rowBytes, dataStart, dim }, (buffer, view, count, first) => {
      const n = count * dim
      const vectors = new (integers ? Float64Array : Float32Array)(n)
      // The batch buffer is fresh (offset 0, aligned): little-endian data is copied whole.
      if (type === 'f4') {
        if (le) vectors.set(new Float32Array(buffer.buffer, 0, n))
        else for (let i = 0; i < n; i++) vectors[i] = view.getFloat32(i * 4, false)
      } else if (type === 'f8') {
        if (le) vectors.set(new Float64Array(buffer.buffer, 0, n))
        else for (let i = 0; i < n; i++) vectors[i] = view.getFloat64(i * 8, false)
      } else if (type === 'f2') for (let i = 0; i < n; i++) vectors[i] = halfToNumber(view.getUint16(i * 2, le))
      else if (type === 'i1') vectors.set(new Int8Array(buffer.buffer, 0, n))
      else if (type === 'u1') vectors.set(buffer.subarray(0, n))
      else if (type === 'i4') for (let i = 0; i < n; i++) vectors[i] = view.getInt32(i * 4, le)
      else if (type === 'u4') for (let i = 0; i < n; i++) vectors[i] = view.getUint32(i * 4, le)
      else {
        for (let i = 0; i < n; i++) {
          const id = type === 'i8' ? view.getBigInt64(i * 8, le) : view.getBigUint64(i * 8, le)
          if (id > BigInt(Number.MAX_SAFE_INTEGER) || id < -BigInt(Number.MAX_SAFE_INTEGER)) throw inputError(file, `row ${first + Math.floor(i / dim)}: id ${id} is beyond 2^53`)
          vectors[i] = Number(id)
        }
      }
      if (integers) return vectors
      checkFinite(file, vectors, dim, first)
      return vectors
    }),
  }
}

// --- JSON lines -------------------------------------------------------------------------------

const MAX_KEY = (1n << 64n) - 1n

function parseKey(file, line, value) {
  let key
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) key = BigInt(value)
  else if (typeof value === 'string' && /^\d{1,20}$/.test(value)) key = BigInt(value)
  if (key === undefined || key > MAX_KEY) throw inputError(file, `line ${line}: key ${JSON.stringify(value)} is not an integer from 0 to 2^64 − 1`)
  return key
}

/** One parsed line: `{ vector: number[], key?: bigint }`. */
function parseLine(file, line, text, integers = false) {
  let value
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw inputError(file, `line ${line}: not JSON (${error.message})`)
  }
  let vector = value
  let key
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    vector = value.vector ?? value.values ?? value.embedding
    const rawKey = value.key ?? value.id
    if (rawKey !== undefined) key = parseKey(file, line, rawKey)
  }
  if (!Array.isArray(vector)) throw inputError(file, `line ${line}: expected an array of numbers or {"key", "vector"}`)
  for (let j = 0; j < vector.length; j++) {
    if (typeof vector[j] !== 'number' || !(integers ? Number.isSafeInteger(vector[j]) : Number.isFinite(vector[j]))) {
      throw inputError(file, `line ${line}: component ${j} is ${JSON.stringify(vector[j])}, not ${integers ? 'an integer' : 'a finite number'}`)
    }
  }
  return { vector, key }
}

/** A UTF-8 file may start with a byte-order mark (Windows tools write one): not part of line 1. */
function withoutBom(text) {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

async function openJsonLines(file, format, size, integers) {
  if (size === 0) throw inputError(file, 'the file is empty')
  // The first vector gives the dimension (and whether lines carry keys).
  let first
  let lineNumber = 0
  const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })
  try {
    for await (const raw of lines) {
      lineNumber++
      const text = lineNumber === 1 ? withoutBom(raw) : raw
      if (text.trim() === '') continue
      first = parseLine(file, lineNumber, text, integers)
      break
    }
  } finally {
    lines.close()
  }
  if (!first) throw inputError(file, 'no vectors (only blank lines)')
  const dim = first.vector.length
  checkDim(file, dim, `line ${lineNumber}`)
  const keyed = first.key !== undefined
  return {
    file,
    format,
    dim,
    rows: undefined,
    bytes: size,
    async *batches(asked, limit = Infinity) {
      const batchRows = rowsPerBatch(asked, dim)
      const stream = fs.createReadStream(file, { encoding: 'utf8' })
      const input = readline.createInterface({ input: stream, crlfDelay: Infinity })
      let line = 0
      let rows = 0
      const Rows = integers ? Float64Array : Float32Array
      let vectors = new Rows(batchRows * dim)
      let keys = keyed ? new BigUint64Array(batchRows) : undefined
      let count = 0
      const flush = () => {
        const batch = { vectors: vectors.subarray(0, count * dim), keys: keys?.subarray(0, count), first: rows - count, count, bytesRead: stream.bytesRead }
        vectors = new Rows(batchRows * dim)
        keys = keyed ? new BigUint64Array(batchRows) : undefined
        count = 0
        return batch
      }
      try {
        for await (const raw of input) {
          line++
          const text = line === 1 ? withoutBom(raw) : raw
          if (text.trim() === '') continue
          if (rows >= limit) break
          const { vector, key } = parseLine(file, line, text, integers)
          if (vector.length !== dim) throw inputError(file, `line ${line}: ${vector.length} components, the first vector has ${dim}`)
          if ((key !== undefined) !== keyed) throw inputError(file, `line ${line}: ${keyed ? 'no key, but the first line has one' : 'a key, but the first line has none'}`)
          vectors.set(vector, count * dim)
          if (keys) keys[count] = /** @type {bigint} */ (key)
          count++
          rows++
          if (count === batchRows) yield flush()
        }
        if (count > 0) yield flush()
      } finally {
        input.close()
        stream.destroy()
      }
    },
  }
}
