// The serve suite's plot: throughput against tail latency under load, one curve per server, one
// point per number of connections (labelled with it), x = QPS, y = p99 latency, both log scale
// (QPS spans LanceDB at one connection to vecdex at 512, latency sub-millisecond to seconds).
// Up and to the left is worse; a server that scales moves right while its p99 stays low.
// Standalone SVG; PNG through @resvg/resvg-js when it loads (../plot.mjs svgToPng).

import fs from 'node:fs'
import path from 'node:path'
import { PALETTE, escapeXml, logAxis, machineCaption, svgToPng } from '../plot.mjs'

const r1 = (v) => Math.round(v * 10) / 10
const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'triangleDown']

function marker(shape, x, y, r) {
  const poly = (pts) => `M${pts.map(([a, b]) => `${r1(x + a)} ${r1(y + b)}`).join('L')}Z`
  switch (shape) {
    case 'square':
      return poly([[-r, -r], [r, -r], [r, r], [-r, r]].map(([a, b]) => [a * 0.85, b * 0.85]))
    case 'triangle':
      return poly([[0, -1.15 * r], [1.05 * r, 0.75 * r], [-1.05 * r, 0.75 * r]])
    case 'triangleDown':
      return poly([[0, 1.15 * r], [1.05 * r, -0.75 * r], [-1.05 * r, -0.75 * r]])
    case 'diamond':
      return poly([[0, -1.2 * r], [1.05 * r, 0], [0, 1.2 * r], [-1.05 * r, 0]])
    default:
      return `M${r1(x - r)} ${r1(y)}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0Z`
  }
}

/** Milliseconds as a tick label: "0.2 ms", "5 ms", "1 s". */
function msLabel(v) {
  const n = Number(v.toPrecision(6))
  return n >= 1000 ? `${Number((n / 1000).toPrecision(6))} s` : `${n} ms`
}
/** QPS as a tick label: "500", "2k". */
function qpsLabel(v) {
  const n = Number(v.toPrecision(6))
  return n >= 1e3 ? `${Number((n / 1e3).toPrecision(6))}k` : String(n)
}

/**
 * Labels for a log axis's ticks: every 1×, 2× and 5× multiple of a power of ten that keeps
 * `minGap` pixels from the labels already placed (logAxis labels too few on a short range).
 * @param {{ value: number, major: boolean }[]} ticks
 * @param {(v: number) => number} pos  pixel position of a value
 * @returns {Set<number>} the values to label
 */
function labelled(ticks, pos, minGap = 24) {
  const placed = []
  for (const tier of [[1], [5], [2]]) {
    for (const t of ticks) {
      const lead = Math.round(t.value / 10 ** Math.floor(Math.log10(t.value) + 1e-9))
      if (!tier.includes(lead)) continue
      if (placed.every((p) => Math.abs(pos(p) - pos(t.value)) >= minGap)) placed.push(t.value)
    }
  }
  return new Set(placed)
}

/**
 * @typedef {object} LatencySeries
 * @property {string} legend
 * @property {{ qps: number, p99: number, connections: number }[]} points  in connection order
 */

/**
 * SVG of QPS vs p99 latency.
 * @param {{ title: string, subtitle?: string, series: LatencySeries[], caption?: string[] }} spec
 */
export function renderLatencySvg({ title, subtitle, series, caption = [] }) {
  const valid = series.map((s) => ({ ...s, points: s.points.filter((p) => p.qps > 0 && p.p99 > 0 && Number.isFinite(p.qps) && Number.isFinite(p.p99)) })).filter((s) => s.points.length)
  const all = valid.flatMap((s) => s.points)
  if (!all.length) return null
  const W = 640
  const H = 420
  const margin = 18
  const left = margin + 70
  const top = margin + 22 + (subtitle ? 18 : 0) + 12
  const legendWidth = Math.max(170, ...valid.map((s) => 40 + s.legend.length * 7.2))
  const width = Math.ceil(left + W + 26 + legendWidth + margin)
  const xAxis = logAxis(Math.min(...all.map((p) => p.qps)), Math.max(...all.map((p) => p.qps)), W)
  const yAxis = logAxis(Math.min(...all.map((p) => p.p99)), Math.max(...all.map((p) => p.p99)), H)
  const pad = 10
  const xs = (v) => left + pad + (Math.log10(v / xAxis.min) / Math.log10(xAxis.max / xAxis.min)) * (W - 2 * pad)
  const ys = (v) => top + H - pad - (Math.log10(v / yAxis.min) / Math.log10(yAxis.max / yAxis.min)) * (H - 2 * pad)
  const out = []
  out.push(`<text x="${margin}" y="${margin + 16}" font-size="16" font-weight="bold">${escapeXml(title)}</text>`)
  if (subtitle) out.push(`<text x="${margin}" y="${margin + 36}" font-size="12" fill="#444">${escapeXml(subtitle)}</text>`)
  out.push(`<rect x="${left}" y="${top}" width="${W}" height="${H}" fill="#fff" stroke="none"/>`)
  const yLabels = labelled(yAxis.ticks, ys, 20)
  const xLabels = labelled(xAxis.ticks, xs, 44)
  for (const t of yAxis.ticks) {
    const y = r1(ys(t.value))
    if (t.major || yLabels.has(t.value)) out.push(`<line x1="${left}" x2="${left + W}" y1="${y}" y2="${y}" stroke="${t.major ? '#d0d0d0' : '#ececec'}"/>`)
    out.push(`<line x1="${left - (t.major ? 6 : 3)}" x2="${left}" y1="${y}" y2="${y}" stroke="#333"/>`)
    if (yLabels.has(t.value)) out.push(`<text x="${left - 9}" y="${r1(y + 4)}" font-size="11" text-anchor="end">${escapeXml(msLabel(t.value))}</text>`)
  }
  for (const t of xAxis.ticks) {
    const x = r1(xs(t.value))
    if (t.major || xLabels.has(t.value)) out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + H}" stroke="${t.major ? '#d0d0d0' : '#ececec'}"/>`)
    out.push(`<line x1="${x}" x2="${x}" y1="${top + H}" y2="${top + H + (t.major ? 6 : 3)}" stroke="#333"/>`)
    if (xLabels.has(t.value)) out.push(`<text x="${x}" y="${top + H + 18}" font-size="11" text-anchor="middle">${escapeXml(qpsLabel(t.value))}</text>`)
  }
  out.push(`<rect x="${left}" y="${top}" width="${W}" height="${H}" fill="none" stroke="#333"/>`)
  out.push(`<text x="${left + W / 2}" y="${top + H + 38}" font-size="12" text-anchor="middle">requests per second (log scale)</text>`)
  const yMid = top + H / 2
  out.push(`<text x="${margin + 12}" y="${yMid}" font-size="12" text-anchor="middle" transform="rotate(-90 ${margin + 12} ${yMid})">p99 latency (log scale)</text>`)
  valid.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]
    const shape = MARKERS[i % MARKERS.length]
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${r1(xs(p.qps))} ${r1(ys(p.p99))}`).join('')
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.9" stroke-linejoin="round"${i % 2 ? ' stroke-dasharray="7 4"' : ''}><title>${escapeXml(s.legend)}</title></path>`)
    for (const p of s.points) {
      const x = xs(p.qps)
      const y = ys(p.p99)
      out.push(`<path d="${marker(shape, x, y, 4.4)}" fill="${color}" stroke="#fff" stroke-width="0.8"><title>${escapeXml(`${s.legend}: ${p.connections} connections, ${Math.round(p.qps)} QPS, p99 ${p.p99.toFixed(2)} ms`)}</title></path>`)
      out.push(`<text x="${r1(x + 6)}" y="${r1(y - 6)}" font-size="10" fill="${color}">${p.connections}</text>`)
    }
  })
  const lx = left + W + 26
  valid.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]
    const y = top + 12 + i * 22
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="1.9"${i % 2 ? ' stroke-dasharray="7 4"' : ''}/>`)
    out.push(`<path d="${marker(MARKERS[i % MARKERS.length], lx + 14, y, 4.4)}" fill="${color}" stroke="#fff" stroke-width="0.8"/>`)
    out.push(`<text x="${lx + 36}" y="${y + 4}" font-size="12">${escapeXml(s.legend)}</text>`)
  })
  out.push(`<text x="${lx}" y="${top + 24 + valid.length * 22}" font-size="11" fill="#555">labels: connections</text>`)
  let cy = top + H + 62
  for (const paragraph of caption) {
    const words = String(paragraph).split(/\s+/)
    const max = Math.floor((width - 2 * margin) / 6.2)
    let line = ''
    for (const w of words) {
      if (line && line.length + 1 + w.length > max) {
        out.push(`<text x="${margin}" y="${cy}" font-size="11" fill="#444">${escapeXml(line)}</text>`)
        cy += 15
        line = w
      } else line = line ? `${line} ${w}` : w
    }
    if (line) {
      out.push(`<text x="${margin}" y="${cy}" font-size="11" fill="#444">${escapeXml(line)}</text>`)
      cy += 15
    }
    cy += 3
  }
  const height = Math.ceil(cy + margin)
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" fill="#111">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n')
}

/**
 * Writes `<dir>/<stem>.svg` (and `.png` when resvg loads). Never throws: problems come back in notes.
 * @returns {{ svgFile?: string, pngFile?: string, notes: string[] }}
 */
export function writeLatencyPlot(spec, { dir, stem, machine }) {
  const notes = []
  let svg
  try {
    svg = renderLatencySvg({ ...spec, caption: [...(spec.caption ?? []), ...machineCaption(machine)] })
  } catch (error) {
    return { notes: [`plot not rendered: ${error?.message ?? error}`] }
  }
  if (!svg) return { notes: ['no load-test point to plot'] }
  const out = { notes }
  try {
    fs.mkdirSync(dir, { recursive: true })
    out.svgFile = path.join(dir, `${stem}.svg`)
    fs.writeFileSync(out.svgFile, svg)
  } catch (error) {
    return { notes: [`SVG not written: ${error?.message ?? error}`] }
  }
  const png = svgToPng(svg)
  if ('png' in png) {
    out.pngFile = path.join(dir, `${stem}.png`)
    fs.writeFileSync(out.pngFile, png.png)
  } else notes.push(`no PNG: ${png.error}`)
  return out
}
