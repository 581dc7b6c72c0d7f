import native = require('./native')
import { awaitNative, callNative } from './errors'
import { checkPath } from './vector-index'
import type { Metric } from './validate'

/** One section of an index file (see the file format in `crates/vecdex-store/src/format.rs`). */
export interface IndexFileSection {
  id: number
  /** What it holds: `'keys'`, `'vectors'`, `'layer 0'`, `'codes'`, … (`'unknown'` for ids this build does not use). */
  name: string
  /** Byte offset in the file (64-byte aligned). */
  offset: number
  bytes: number
  /** CRC-32C of the section's bytes, as recorded in the section table. */
  crc: number
}

/** What an index file holds, read from its header alone (see {@link inspectIndexFile}). */
export interface IndexFileInfo {
  formatVersion: number
  /** The index class that loads it: `'flat'` → FlatIndex, `'hnsw'` → HnswIndex, `'multiVector'` → MultiVectorIndex. */
  kind: 'flat' | 'hnsw' | 'multiVector'
  metric: Metric | 'hamming'
  /** Vector dimensions (token dimensions for a multi-vector index). */
  dimensions: number
  /** Live vectors (documents for a multi-vector index). */
  count: number
  fileBytes: number
  headerBytes: number
  sections: IndexFileSection[]
  /**
   * The settings the index was built with, named as its constructor options (`m`,
   * `efConstruction`, `quantization`, `numRepetitions`, …; a multi-vector index's FDE graph as
   * `graph.m` etc.). Integers above 2^53 (seeds) are decimal strings.
   */
  settings: Record<string, number | string | boolean>
}

function fromNative(info: native.NativeIndexFileInfo): IndexFileInfo {
  return {
    formatVersion: info.formatVersion,
    kind: info.kind as IndexFileInfo['kind'],
    metric: info.metric as IndexFileInfo['metric'],
    dimensions: info.dimensions,
    count: info.count,
    fileBytes: info.fileBytes,
    headerBytes: info.headerBytes,
    sections: info.sections.map((s) => ({ ...s })),
    settings: Object.fromEntries(info.settings.map((s) => [s.name, s.value])),
  }
}

/**
 * Describes a saved index file without loading it: format version, kind, metric, sizes, its
 * sections and the settings it was built with. Reads only the header and section table (which
 * are checksummed and checked as a load checks them), so it takes the same few reads on a file
 * of any size; the payloads are not read, so a file that passes here may still fail to load
 * (load it to verify every byte). Rejects with `ERR_CORRUPT_FILE` (not an index file, damaged
 * header), `ERR_UNSUPPORTED_FORMAT` (a newer format) or `ERR_IO`.
 */
export async function inspectIndexFile(path: string): Promise<IndexFileInfo> {
  const file = checkPath(path)
  return fromNative(await awaitNative(callNative(() => native.inspectIndexFile(file))))
}

/** Blocking twin of {@link inspectIndexFile}. */
export function inspectIndexFileSync(path: string): IndexFileInfo {
  const file = checkPath(path)
  return fromNative(callNative(() => native.inspectIndexFileSync(file)))
}
