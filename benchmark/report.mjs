// Statistics, number formatting, markdown tables and result files.

import fs from 'node:fs'
import path from 'node:path'
import { writePlots } from './plot.mjs'
import { workspace } from './workspace.mjs'

/** Median of numbers (mean of the middle two for even counts). */
export function median(values) {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** The p-th percentile (0–100), nearest rank. */
export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

/** Seconds taken by an async or sync function. */
export async function timeIt(fn) {
  const start = process.hrtime.bigint()
  const value = await fn()
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, value }
}

/** Runs the garbage collector when node was started with --expose-gc. */
export function collectGarbage() {
  if (typeof globalThis.gc === 'function') globalThis.gc()
}

/** Formats a number with `digits` significant figures and thousands separators; '–' if absent. */
export function fmt(value, digits = 3) {
  if (value === undefined || value === null || Number.isNaN(value)) return '–'
  if (typeof value === 'string') return value
  if (!Number.isFinite(value)) return String(value)
  const abs = Math.abs(value)
  if (abs >= 10 ** digits) return Math.round(value).toLocaleString('en-US')
  if (abs === 0) return '0'
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)))
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
}

export const fmtRatio = (v) => (v === undefined || v === null || Number.isNaN(v) ? '–' : `${fmt(v, 3)}×`)
export const fmtPercent = (v, digits = 1) => (v === undefined || v === null || Number.isNaN(v) ? '–' : `${(v * 100).toFixed(digits)}%`)
export const fmtBytes = (b) => {
  if (b === undefined || b === null || Number.isNaN(b)) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = b
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${fmt(v, 3)} ${units[u]}`
}
export const fmtRate = (bytesPerSecond) => (bytesPerSecond ? `${fmt(bytesPerSecond / 1e9, 3)} GB/s` : '–')

/** A markdown table from a header row and body rows (cells are strings or numbers). */
export function table(header, rows) {
  const cell = (c) => String(c ?? '').replace(/\|/g, '\\|')
  const lines = [`| ${header.map(cell).join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`]
  for (const row of rows) lines.push(`| ${row.map(cell).join(' | ')} |`)
  return lines.join('\n')
}

/** Short machine line for report headers. */
export function machineLine(m) {
  const caps = m.vecdex?.capabilities ?? {}
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; vecdex ${m.vecdex?.version} (scan kernel ${caps.scanKernel ?? '?'}, pool ${caps.threads ?? '?'} threads, simsimd ${(caps.simsimdBackends ?? []).join('/')})`
}

function timestamp(date = new Date()) {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')
}

/**
 * Writes `<dir>/<suite>-<dataset>-<timestamp>.json` and `.md`. Results with recall–QPS sweeps
 * (ann, quant, multivector) also get `<stem>.svg` — and `<stem>.png` when @resvg/resvg-js loads —
 * with an image link appended to the markdown. A plot that cannot be drawn never fails the
 * run: the reason comes back in `plotNotes` (and, for a missing PNG, in the markdown).
 * @param {{ suite: string, dataset: string, markdown: string, json: object, dir?: string }} result
 *   dir: where to write (default: the workspace's results folder, workspace.mjs)
 * @returns {{ jsonFile: string, mdFile: string, svgFile?: string, pngFile?: string, plotNotes?: string[] }}
 */
export function writeResult({ suite, dataset, markdown, json, dir = workspace().results }) {
  fs.mkdirSync(dir, { recursive: true })
  const stem = `${suite}-${dataset.replace(/[^A-Za-z0-9._-]+/g, '_')}-${timestamp()}`
  const jsonFile = path.join(dir, `${stem}.json`)
  const mdFile = path.join(dir, `${stem}.md`)
  const text = JSON.stringify(json, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n'
  fs.writeFileSync(jsonFile, text)
  let md = markdown.endsWith('\n') ? markdown : markdown + '\n'
  const plots = writePlots({ suite, ...json }, { dir, stem })
  if (plots.svgFile) {
    const link = (file) => encodeURI(path.basename(file))
    md += `\n### Recall–QPS plot\n\n![recall–QPS plot: ${`${suite} on ${dataset}`.replace(/[[\]]/g, '')}](${link(plots.svgFile)})\n`
    md += plots.pngFile ? `\nPNG: [${path.basename(plots.pngFile)}](${link(plots.pngFile)})\n` : `\n(${plots.notes.join('; ') || 'no PNG'})\n`
  }
  fs.writeFileSync(mdFile, md)
  const files = { jsonFile, mdFile }
  if (plots.svgFile) files.svgFile = plots.svgFile
  if (plots.pngFile) files.pngFile = plots.pngFile
  if (plots.notes.length) files.plotNotes = plots.notes
  return files
}
