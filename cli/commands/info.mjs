// vecdex info <index-file>: header, sizes, sections and settings from the header alone; with
// --verify, the whole file is loaded, which checks every checksum and invariant.

import { loadVecdex, parseCommandArgs, toJson } from '../main.mjs'
import { fmt, fmtBytes, table } from '../../benchmark/report.mjs'

const OPTIONS = {
  verify: { type: 'boolean' },
}

export function usage() {
  return `Usage: vecdex info <index-file> [--verify] [--json]

Describes a saved vecdex index file from its header and section table (a few small reads on a
file of any size): format version, index kind, metric, dimensions, count, file size, every
section (offset, size, CRC-32C) and the settings it was built with.

Options:
      --verify     also load the whole file, checking every checksum and invariant (exit 1 with
                   ERR_CORRUPT_FILE when one fails)
      --json       print the description as JSON
  -h, --help       this text`
}

const CLASS = { hnsw: 'HnswIndex', flat: 'FlatIndex', multiVector: 'MultiVectorIndex' }

export async function run(args) {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, { positionals: 1 })
  if (values.help) {
    console.log(usage())
    return 0
  }
  const file = positionals[0]
  const vecdex = await loadVecdex()
  const info = await vecdex.inspectIndexFile(file)
  let verified
  if (values.verify) {
    const started = performance.now()
    const index = await vecdex[CLASS[info.kind]].load(file)
    const seconds = (performance.now() - started) / 1000
    const count = index.size
    index.close()
    verified = { ok: true, loadSeconds: seconds, count }
  }
  if (values.json) {
    console.log(toJson({ file, class: CLASS[info.kind], ...info, ...(verified ? { verified } : {}) }))
    return 0
  }
  const what = info.kind === 'multiVector' ? `${fmt(info.count)} documents, tokens of ${info.dimensions} dimensions` : `${fmt(info.count)} vectors × ${info.dimensions} dimensions`
  console.log(`${file}: ${CLASS[info.kind]} file, format v${info.formatVersion}`)
  console.log(`  ${what}, metric ${info.metric}`)
  console.log(`  ${fmtBytes(info.fileBytes)} (${info.fileBytes.toLocaleString('en-US')} bytes; header ${info.headerBytes} bytes)`)
  const settings = Object.entries(info.settings)
  if (settings.length) console.log(`  settings: ${settings.map(([name, value]) => `${name} ${value}`).join(', ')}`)
  console.log('')
  console.log(
    table(
      ['section', 'id', 'offset', 'bytes', 'CRC-32C'],
      info.sections.map((s) => [s.name, s.id, s.offset.toLocaleString('en-US'), s.bytes.toLocaleString('en-US'), s.crc.toString(16).padStart(8, '0')]),
    ),
  )
  if (verified) console.log(`\nverified: loaded ${fmt(verified.count)} ${info.kind === 'multiVector' ? 'documents' : 'vectors'} in ${fmt(verified.loadSeconds)} s; every checksum and invariant holds`)
  return 0
}
