// Recall–QPS plots of benchmark results, ann-benchmarks style, as standalone SVG (no
// dependencies), and as PNG when the optional @resvg/resvg-js loads.
//
// x = recall@k (linear, fitted to the data), y = queries per second (log10). One curve per
// engine (or configuration): its Pareto frontier — the sweep points no other point of the same
// engine beats in both recall and QPS — as a line with markers, the dominated points as faint
// hollow markers. Suites with two search modes (ann, quant: one query at a time on 1 thread, and
// a batch on --threads threads) get two panels side by side sharing both axes, so the two modes
// compare at a glance; the legend sits to the right of the panels, never over a curve.
//
// Used by report.mjs (writeResult) for every result with recall–QPS sweeps; also a CLI that
// re-renders stored results:
//   node benchmark/plot.mjs benchmark/results/<stem>.json [more.json…] [--out <dir>] [--no-png]

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPeer } from './workspace.mjs'

// ---------------------------------------------------------------------------------------------
// Pareto frontier

/**
 * The points no other point beats in both coordinates (higher x and higher y are better): a
 * point is dropped when another has x ≥ and y ≥ its own, one of them strictly; of identical
 * points one is kept. Returned sorted by x ascending (so y descends along the frontier).
 * Points whose x or y is not a finite number are ignored.
 * @template P
 * @param {P[]} points
 * @param {{ x?: (p: P) => number, y?: (p: P) => number }} [accessors]  default: p.recall, p.qps
 * @returns {P[]}
 */
export function paretoFrontier(points, { x = (p) => /** @type {any} */ (p).recall, y = (p) => /** @type {any} */ (p).qps } = {}) {
  const valid = points.filter((p) => Number.isFinite(x(p)) && Number.isFinite(y(p)))
  // Best y first (ties: best x first); a point joins the frontier when its x beats every x seen,
  // so the frontier comes out with x ascending.
  const byY = [...valid].sort((a, b) => y(b) - y(a) || x(b) - x(a))
  const frontier = []
  let bestX = -Infinity
  for (const p of byY) {
    if (x(p) > bestX) {
      frontier.push(p)
      bestX = x(p)
    }
  }
  return frontier
}

// ---------------------------------------------------------------------------------------------
// From result JSON to a plot description

/**
 * @typedef {object} PlotPoint
 * @property {number} recall
 * @property {number} qps
 * @property {string} [label]  the sweep setting, for the marker's tooltip ("ef 32")
 */
/**
 * @typedef {object} PlotSeries
 * @property {string} id       the same id in several panels = the same curve style and legend entry
 * @property {string} legend   legend text (name and version)
 * @property {PlotPoint[]} points
 * @property {{ color?: number, marker?: number, dash?: number }} [style]  palette indices; by default
 *   every series gets its own colour–marker pair and a solid line
 */
/**
 * @typedef {object} PlotPanel
 * @property {string} title
 * @property {string} [note]   a line under the title (e.g. engines without this mode)
 * @property {PlotSeries[]} series
 */
/**
 * @typedef {object} PlotSpec
 * @property {string} title
 * @property {string} [subtitle]
 * @property {string} xLabel
 * @property {string} yLabel
 * @property {PlotPanel[]} panels
 * @property {string[]} caption   paragraphs under the plot (wrapped to its width)
 */

/** The search modes of the ann and quant sweeps (see MODES in sweep.mjs): their point fields. */
const SWEEP_MODES = [
  { key: 'single', qps: (p) => p.singleQps, recall: (p) => p.recall },
  { key: 'batch', qps: (p) => p.batchQps, recall: (p) => p.batchRecall ?? p.recall },
]

const isPoint = (p) => Number.isFinite(p?.recall) && Number.isFinite(p?.qps) && p.qps > 0

/** Engines (ann, quant) with sweep points, or multivector configurations with points. */
export function hasRecallQpsSweeps(result) {
  if (!result || typeof result !== 'object') return false
  const sweep = (result.engines ?? []).some((e) => (e?.points ?? []).some((p) => Number.isFinite(p?.recall) && SWEEP_MODES.some((m) => m.qps(p) > 0)))
  const multi = Array.isArray(result.configs) && result.configs.some((c) => (c?.points ?? []).some(isPoint))
  return sweep || multi
}

const int = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : String(v ?? '?'))

/** Names made unique ("vecdex sq8", "vecdex sq8 #2") so each engine keeps its own legend entry. */
function uniqueNames(names) {
  const seen = new Map()
  return names.map((n) => {
    const count = (seen.get(n) ?? 0) + 1
    seen.set(n, count)
    return count === 1 ? n : `${n} #${count}`
  })
}

/** Shortens a reason to `max` characters (with an ellipsis). */
function clip(text, max = 110) {
  const s = String(text ?? '').replace(/\s+/g, ' ').trim()
  return s.length > max ? `${s.slice(0, max - 1).trimEnd()}…` : s
}

/** Machine paragraphs: CPU, cores, memory, OS, Node, vecdex's kernels; the CPU's SIMD flags. */
export function machineCaption(m) {
  if (!m) return []
  const caps = m.vecdex?.capabilities ?? {}
  const vecdex = m.vecdex?.version
    ? `; vecdex ${m.vecdex.version} (scan kernel ${caps.scanKernel ?? '?'}, pool ${caps.threads ?? '?'} threads${caps.simsimdBackends?.length ? `, simsimd ${caps.simsimdBackends.join('/')}` : ''})`
    : ''
  const flags = m.cpuFlags?.length ? `; CPU flags ${m.cpuFlags.join(' ')}` : ''
  return [`Machine: ${m.cpuModel ?? 'unknown CPU'}, ${m.cores ?? '?'} cores, ${m.memoryGiB ?? '?'} GiB, ${m.os ?? '?'}, Node ${m.node ?? '?'}${vecdex}${flags}.`]
}

function contentionCaption(result) {
  const c = result.contention
  if (!c || !(c.otherCores + c.stealCores > 0.1)) return []
  return [`Shared machine: other processes used ${c.otherCores.toFixed(2)} cores on average during the run (steal ${c.stealCores.toFixed(2)}): figures may be low and noisy.`]
}

const FRONTIER_NOTE = 'Lines: each curve’s Pareto frontier (points no other point of the same curve beats in both recall and QPS); faint hollow markers: dominated sweep points.'

/** ann and quant results: one series per engine, a panel per search mode. */
function sweepSpec(result) {
  const suite = result.suite ?? 'ann'
  const quant = suite === 'quant' || result.engines.some((e) => e.codec !== undefined)
  const { dataset = {}, params = {}, k = '?' } = result
  const engines = result.engines.filter(Boolean)
  const names = uniqueNames(engines.map((e) => String(e.name ?? '?')))
  const families = [...new Set(engines.map((e) => e.family ?? String(e.name ?? '').split(/[\s[]/)[0]))]
  const threads = params.threads ?? '?'
  const panels = []
  const withPoints = new Set()
  for (const mode of SWEEP_MODES) {
    const series = []
    const without = []
    engines.forEach((e, i) => {
      if (!e.points?.length) return
      const points = e.points
        .map((p) => ({ recall: mode.recall(p), qps: mode.qps(p), label: `${e.sweepParam ?? 'ef'} ${p.ef}` }))
        .filter(isPoint)
      if (points.length === 0) {
        without.push(names[i])
        return
      }
      withPoints.add(i)
      const version = e.version ? (names[i].includes(' ') ? ` (${e.version})` : ` ${e.version}`) : ''
      const bytes = quant && Number.isFinite(e.compression?.codeBytes) ? `, ${+e.compression.codeBytes.toFixed(1)} B/vec` : ''
      const family = e.family ?? String(e.name ?? '').split(/[\s[]/)[0]
      series.push({ id: `e${i}`, legend: `${names[i]}${version}${bytes}`, points, style: quant ? { dash: families.indexOf(family) } : undefined })
    })
    if (series.length === 0) continue
    panels.push({
      title: mode.key === 'single' ? '1 thread: one query per call' : `batch: all ${dataset.q ?? ''} queries in one call, ${threads} threads`.replace('all  ', 'all '),
      note: without.length ? `no ${mode.key === 'single' ? '1-thread' : 'batch'} search: ${without.join(', ')}` : undefined,
      series,
    })
  }
  const notMeasured = engines
    .map((e, i) => (withPoints.has(i) ? null : `${names[i]} (${clip(e.skipped ? `skipped: ${e.skipped}` : e.error ? `failed: ${e.error}` : e.stopReason ?? 'no sweep point')})`))
    .filter(Boolean)
  const metric = dataset.metric ? ` (${dataset.metric})` : ''
  const efs = Array.isArray(params.efSearch) ? params.efSearch.join(', ') : undefined
  const subtitle = [
    params.m !== undefined ? `HNSW m ${params.m}, efConstruction ${params.efConstruction}` : undefined,
    efs ? `efSearch ${efs}${quant ? ' (some engines sweep their own setting)' : ''}` : undefined,
    quant && params.trainingRows ? `training sample ${int(params.trainingRows)} rows` : undefined,
    params.runs ? `median of ${params.runs} run${params.runs === 1 ? '' : 's'} per point` : undefined,
    `--threads ${threads}`,
  ].filter(Boolean)
  const caption = [
    ...machineCaption(result.machine),
    ...contentionCaption(result),
    `${FRONTIER_NOTE}${quant ? ' B/vec: bytes per vector of the searched codes (rows kept for rescoring not counted).' : ''}${result.startedAt ? ` Run ${String(result.startedAt).replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.` : ''}`,
  ]
  if (notMeasured.length) caption.push(`Not measured: ${notMeasured.join('; ')}.`)
  return {
    title: `${suite} — ${dataset.name ?? '?'}${metric}: n ${int(dataset.n)}, dim ${dataset.dim ?? '?'}, ${int(dataset.q)} queries, k ${k}`,
    subtitle: subtitle.join(' · '),
    xLabel: `recall@${k}`,
    yLabel: 'queries per second (log scale)',
    panels,
    caption,
  }
}

/** multivector results: one series per configuration and strategy, plus exact and LanceDB. */
function multivectorSpec(result) {
  const { dataset = {}, configs = [], threads = '?', runs } = result
  const vecdexVersion = result.machine?.vecdex?.version
  const lanceVersion = result.machine?.peers?.['@lancedb/lancedb']
  const series = []
  const strategies = [...new Set(configs.flatMap((c) => (c.points ?? []).map((p) => p.strategy)))]
  configs.forEach((c, ci) => {
    const groups = new Map()
    for (const p of c.points ?? []) {
      if (!groups.has(p.strategy)) groups.set(p.strategy, [])
      groups.get(p.strategy).push({ recall: p.recall, qps: p.qps, label: `${p.strategy === 'cosine' ? 'efSearch' : 'candidates'} ${p.candidates}` })
    }
    for (const [strategy, pts] of groups) {
      const points = pts.filter(isPoint)
      if (!points.length) continue
      const name = strategy === 'cosine' || String(c.label).includes(strategy) ? c.label : `${c.label}, ${strategy}`
      const s = strategies.indexOf(strategy)
      series.push({ id: `c${ci}-${strategy}`, legend: `${name}${c.dims ? ` — ${c.dims} dims` : ''}`, points, style: { color: ci, marker: s, dash: s } })
    }
  })
  const extra = configs.length
  if (Number.isFinite(result.exact?.qps)) {
    series.push({ id: 'exact', legend: 'exact Chamfer brute force', points: [{ recall: 1, qps: result.exact.qps, label: 'searchExact' }], style: { color: extra, marker: 7 } })
  }
  const lance = result.lancedb ?? {}
  const lanceName = `lancedb${lanceVersion ? ` ${lanceVersion}` : ''}`
  if (lance.flat && isPoint(lance.flat)) {
    series.push({ id: 'lancedb-flat', legend: `${lanceName} flat MaxSim (${lance.flat.queries} queries)`, points: [{ recall: lance.flat.recall, qps: lance.flat.qps, label: 'flat scan' }], style: { color: extra + 1, marker: 5 } })
  }
  const indexed = (lance.indexed?.points ?? []).map((p) => ({ recall: p.recall, qps: p.qps, label: `refineFactor ${p.refineFactor}, nprobes ${p.nprobes}` })).filter(isPoint)
  if (indexed.length) series.push({ id: 'lancedb-index', legend: `${lanceName} ${lance.indexed.index}`, points: indexed, style: { color: extra + 2, marker: 6 } })
  const notMeasured = []
  if (lance.skipped || lance.error) notMeasured.push(`lancedb (${clip(lance.skipped ?? `failed: ${lance.error}`)})`)
  if (lance.indexedSkipped) notMeasured.push(`lancedb index (${clip(lance.indexedSkipped, 160)})`)
  const caption = [
    ...machineCaption(result.machine),
    ...contentionCaption(result),
    `${FRONTIER_NOTE} FDE configurations r<repetitions>k<SimHash bits>p<projection dims>; strategies: rerank = FDE candidates re-ranked by exact Chamfer (MUVERA), walk = FDE graph walked with exact Chamfer scores.`,
  ]
  if (notMeasured.length) caption.push(`Not measured: ${notMeasured.join('; ')}.`)
  return {
    title: `multivector — ${dataset.name ?? '?'}: ${int(dataset.documents)} documents${dataset.baseTokens && dataset.documents ? ` (${(dataset.baseTokens / dataset.documents).toFixed(2)} tokens each)` : ''}, ${int(dataset.queries)} queries, k 10`,
    subtitle: [vecdexVersion ? `vecdex ${vecdexVersion}` : undefined, runs ? `median of ${runs} run${runs === 1 ? '' : 's'} per point` : undefined, `${threads} threads`].filter(Boolean).join(' · '),
    xLabel: 'recall@10 (exact Chamfer top-10)',
    yLabel: 'queries per second (log scale)',
    panels: series.length ? [{ title: `batch: all queries in one call, ${threads} threads`, series }] : [],
    caption,
  }
}

/**
 * The plot description of a result JSON (as run.mjs writes it), or null when it has no
 * recall–QPS sweep (exact, single, filter, persist, … suites).
 * @param {any} result
 * @returns {PlotSpec | null}
 */
export function plotSpec(result) {
  if (!hasRecallQpsSweeps(result)) return null
  const spec = Array.isArray(result.configs) && !Array.isArray(result.engines) ? multivectorSpec(result) : sweepSpec(result)
  return spec.panels.length ? spec : null
}

// ---------------------------------------------------------------------------------------------
// SVG

/** Okabe–Ito colours (colour-blind safe), yellow left out: too faint on white. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000']
const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'triangleDown', 'plus', 'cross', 'star']
const DASHES = [null, '7 4', '2 3', '9 3 2 3', '4 2']

/** Escapes text for XML content and attribute values; drops characters XML does not allow. */
export function escapeXml(text) {
  return String(text ?? '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
}

const r1 = (v) => Math.round(v * 10) / 10

/** Path data of a marker centred at (x, y) with radius r. */
function markerPath(shape, x, y, r) {
  const pts = (list) => `M${list.map(([a, b]) => `${r1(x + a)} ${r1(y + b)}`).join('L')}Z`
  switch (shape) {
    case 'square':
      return pts([[-0.85 * r, -0.85 * r], [0.85 * r, -0.85 * r], [0.85 * r, 0.85 * r], [-0.85 * r, 0.85 * r]])
    case 'triangle':
      return pts([[0, -1.15 * r], [1.05 * r, 0.75 * r], [-1.05 * r, 0.75 * r]])
    case 'triangleDown':
      return pts([[0, 1.15 * r], [1.05 * r, -0.75 * r], [-1.05 * r, -0.75 * r]])
    case 'diamond':
      return pts([[0, -1.2 * r], [1.05 * r, 0], [0, 1.2 * r], [-1.05 * r, 0]])
    case 'plus':
    case 'cross': {
      const a = r * 1.1
      const b = r * 0.38
      const arm = [[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]]
      if (shape === 'plus') return pts(arm)
      const c = Math.SQRT1_2
      return pts(arm.map(([u, v]) => [(u - v) * c, (u + v) * c]))
    }
    case 'star': {
      const list = []
      for (let i = 0; i < 10; i++) {
        const rr = i % 2 ? r * 0.6 : r * 1.45
        const t = -Math.PI / 2 + (i * Math.PI) / 5
        list.push([rr * Math.cos(t), rr * Math.sin(t)])
      }
      return pts(list)
    }
    default:
      return `M${r1(x - r)} ${r1(y)}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0Z`
  }
}

/** Colour, marker and dash of the i-th series: distinct colour–marker pairs for up to 56 series. */
function seriesStyle(i, style = {}) {
  const C = PALETTE.length
  const color = style.color ?? i % C
  const marker = style.marker ?? (i % C + Math.floor(i / C)) % MARKERS.length
  return { color: PALETTE[color % C], marker: MARKERS[marker % MARKERS.length], dash: DASHES[(style.dash ?? 0) % DASHES.length] }
}

/** Tick label of m·10^e QPS: "500", "1k", "20k", "1.5M". */
export function qpsLabel(value) {
  const v = Number(value.toPrecision(6))
  if (v >= 1e9) return `${Number((v / 1e9).toPrecision(6))}G`
  if (v >= 1e6) return `${Number((v / 1e6).toPrecision(6))}M`
  if (v >= 1e3) return `${Number((v / 1e3).toPrecision(6))}k`
  return String(v)
}

/** v rounded down (or up) to two significant digits: 18,371 → 18,000 (19,000). */
function bound2(v, up) {
  const unit = 10 ** (Math.floor(Math.log10(v)) - 1)
  const m = v / unit
  return Number(((up ? Math.ceil(m - 1e-9) : Math.floor(m + 1e-9)) * unit).toPrecision(12))
}

/**
 * The log axis of QPS values: [min, max] just around the data (two significant digits, a
 * little room), ticks at every m·10^e inside; decades are major. Labels go to decades first,
 * then 5×, then 2×, then the other multiples — a tier only while there are fewer than 4 labels —
 * each only where it keeps `minGap` pixels from the labels already placed.
 * @param {number} lo  smallest QPS
 * @param {number} hi  largest QPS
 * @param {number} pixels  the axis length
 * @returns {{ min: number, max: number, ticks: { value: number, label?: string, major: boolean }[] }}
 */
export function logAxis(lo, hi, pixels = 300, minGap = 20) {
  const ticksWithin = (min, max) => {
    const ticks = []
    for (let e = Math.floor(Math.log10(min)) - 1; e <= Math.ceil(Math.log10(max)); e++) {
      for (let m = 1; m <= 9; m++) {
        const value = Number((m * 10 ** e).toPrecision(12))
        if (value >= min * (1 - 1e-9) && value <= max * (1 + 1e-9)) ticks.push({ value, m, major: m === 1 })
      }
    }
    return ticks
  }
  let min = bound2(lo / 1.08, false)
  let max = bound2(Math.max(hi * 1.08, min * 1.5), true)
  let ticks = ticksWithin(min, max)
  if (ticks.length < 2) {
    // A narrow range (e.g. one point): out to the multiples of 10^e on either side.
    min = 10 ** Math.floor(Math.log10(min)) * Math.floor(min / 10 ** Math.floor(Math.log10(min)))
    max = 10 ** Math.floor(Math.log10(max)) * Math.ceil(max / 10 ** Math.floor(Math.log10(max)) - 1e-9)
    ticks = ticksWithin(min, max)
  }
  const span = Math.log10(max / min)
  const pos = (v) => (Math.log10(v / min) / span) * pixels
  const placed = []
  for (const tier of [[1], [5], [2], [3, 4, 6, 7, 8, 9]]) {
    if (tier[0] !== 1 && placed.length >= 4) break
    for (const t of ticks) {
      if (!tier.includes(t.m)) continue
      if (placed.every((p) => Math.abs(pos(p.value) - pos(t.value)) >= minGap)) {
        t.label = qpsLabel(t.value)
        placed.push(t)
      }
    }
  }
  return { min, max, ticks: ticks.map(({ value, label, major }) => ({ value, label, major })) }
}

/**
 * The recall axis: from the lowest recall rounded down to a tenth (or to the step below it when
 * everything lies within one tenth) up to 1, ticks every 0.01 … 0.2 (≤ 10 intervals).
 * @returns {{ min: number, max: number, step: number, ticks: { value: number, label: string }[] }}
 */
export function recallAxis(lo, hi = 1) {
  const max = Math.max(1, hi)
  let min = Math.floor((Math.min(lo, max) + 1e-9) * 10) / 10
  if (min >= max) min = Math.round((max - 0.1) * 10) / 10
  min = Math.max(0, min)
  const range = max - min
  const step = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5].find((s) => range / s <= 10 + 1e-9) ?? 0.5
  const decimals = step < 0.1 ? 2 : 1
  const ticks = []
  for (let i = 0; min + i * step <= max + 1e-9; i++) {
    const value = Number((min + i * step).toFixed(6))
    ticks.push({ value, label: value.toFixed(decimals) })
  }
  return { min, max, step, ticks }
}

/** Estimated width of text in the renderer's sans-serif (DejaVu Sans is among the widest). */
const textWidth = (text, size) => String(text).length * size * 0.6

/** Words of `text` in lines of at most `width` pixels at `size`. */
function wrap(text, width, size) {
  const max = Math.max(20, Math.floor(width / (size * 0.56)))
  const lines = []
  let line = ''
  for (const word of String(text).split(/\s+/).filter(Boolean)) {
    let w = word
    while (w.length > max) {
      if (line) lines.push(line)
      lines.push(w.slice(0, max))
      w = w.slice(max)
      line = ''
    }
    if (!line) line = w
    else if (line.length + 1 + w.length <= max) line += ` ${w}`
    else {
      lines.push(line)
      line = w
    }
  }
  if (line) lines.push(line)
  return lines
}

/**
 * @typedef {object} RenderOptions
 * @property {boolean} [dominated]   draw dominated points as faint hollow markers (default true)
 * @property {number} [panelWidth]   plot area width per panel, px (default 430)
 * @property {number} [panelHeight]  plot area height, px (default 340)
 */

/**
 * A standalone SVG document of a plot description.
 * @param {PlotSpec} spec
 * @param {RenderOptions} [options]
 * @returns {string}
 */
export function renderSvg(spec, { dominated = true, panelWidth = 430, panelHeight = 340 } = {}) {
  const pad = 10 // inner room between the frame and the axis ends, so markers are not cut
  const font = { title: 16, subtitle: 12, panel: 13, tick: 11, label: 12, legend: 12, caption: 11 }
  const panels = spec.panels
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.points))
  const xAxis = recallAxis(Math.min(...all.map((p) => p.recall)), Math.max(...all.map((p) => p.recall)))
  const yAxis = logAxis(Math.min(...all.map((p) => p.qps)), Math.max(...all.map((p) => p.qps)), panelHeight - 2 * pad)

  // Series in order of first appearance, with their styles.
  const order = []
  const byId = new Map()
  for (const panel of panels) {
    for (const s of panel.series) {
      if (byId.has(s.id)) continue
      byId.set(s.id, { ...s, ...seriesStyle(order.length, s.style), line: false })
      order.push(s.id)
    }
    // A legend line only for series drawn as lines somewhere (single points get just a marker).
    for (const s of panel.series) if (s.points.length > 1) byId.get(s.id).line = true
  }

  // Horizontal layout: [y labels | plot] per panel, then the legend.
  const margin = 18
  const yLabelRoom = 62
  const gap = 26
  const legendLine = 20
  const legendWidth = Math.min(340, Math.max(150, ...order.map((id) => 40 + textWidth(byId.get(id).legend, font.legend))))
  const panelsWidth = panels.length * (yLabelRoom + panelWidth) + (panels.length - 1) * gap
  const width = Math.ceil(margin + panelsWidth + gap + legendWidth + margin)

  // Vertical layout: title, subtitle, panel titles (+ notes), plots, x labels, caption.
  const out = []
  let y = margin + font.title
  const titleLines = wrap(spec.title, width - 2 * margin, font.title * 1.05)
  const head = []
  for (const line of titleLines) {
    head.push(`<text x="${margin}" y="${y}" font-size="${font.title}" font-weight="bold">${escapeXml(line)}</text>`)
    y += font.title + 5
  }
  if (spec.subtitle) {
    for (const line of wrap(spec.subtitle, width - 2 * margin, font.subtitle)) {
      head.push(`<text x="${margin}" y="${y}" font-size="${font.subtitle}" fill="#444">${escapeXml(line)}</text>`)
      y += font.subtitle + 4
    }
  }
  y += 10
  const hasNotes = panels.some((p) => p.note)
  const panelTitleY = y + font.panel
  const plotTop = panelTitleY + (hasNotes ? 8 + font.tick + 8 : 10)
  const plotBottom = plotTop + panelHeight
  const xLabelY = plotBottom + 16 + 20

  const xScale = (v, left) => left + pad + ((v - xAxis.min) / (xAxis.max - xAxis.min)) * (panelWidth - 2 * pad)
  const yScale = (v) => plotBottom - pad - (Math.log10(v / yAxis.min) / Math.log10(yAxis.max / yAxis.min)) * (panelHeight - 2 * pad)

  const body = []
  panels.forEach((panel, pi) => {
    const left = margin + yLabelRoom + pi * (yLabelRoom + panelWidth + gap)
    const right = left + panelWidth
    const g = []
    g.push(`<g class="panel" data-panel="${pi}">`)
    g.push(`<text x="${r1(left + panelWidth / 2)}" y="${panelTitleY}" font-size="${font.panel}" font-weight="bold" text-anchor="middle">${escapeXml(panel.title)}</text>`)
    if (panel.note) {
      const note = wrap(panel.note, panelWidth, font.tick)[0]
      g.push(`<text x="${r1(left + panelWidth / 2)}" y="${panelTitleY + 6 + font.tick}" font-size="${font.tick}" fill="#555" text-anchor="middle">${escapeXml(note)}</text>`)
    }
    g.push(`<rect x="${left}" y="${plotTop}" width="${panelWidth}" height="${panelHeight}" fill="#fff" stroke="none"/>`)
    // Grid and ticks.
    for (const t of yAxis.ticks) {
      const ty = r1(yScale(t.value))
      if (t.major || t.label) g.push(`<line class="grid" x1="${left}" x2="${right}" y1="${ty}" y2="${ty}" stroke="${t.major ? '#d0d0d0' : '#ececec'}" stroke-width="1"/>`)
      g.push(`<line x1="${left - (t.major ? 6 : 3)}" x2="${left}" y1="${ty}" y2="${ty}" stroke="#333" stroke-width="1"/>`)
      if (t.label) g.push(`<text class="ytick" x="${left - 9}" y="${r1(ty + 4)}" font-size="${font.tick}" text-anchor="end">${escapeXml(t.label)}</text>`)
    }
    for (const t of xAxis.ticks) {
      const tx = r1(xScale(t.value, left))
      g.push(`<line class="grid" x1="${tx}" x2="${tx}" y1="${plotTop}" y2="${plotBottom}" stroke="#ececec" stroke-width="1"/>`)
      g.push(`<line x1="${tx}" x2="${tx}" y1="${plotBottom}" y2="${plotBottom + 5}" stroke="#333" stroke-width="1"/>`)
      g.push(`<text class="xtick" x="${tx}" y="${plotBottom + 18}" font-size="${font.tick}" text-anchor="middle">${escapeXml(t.label)}</text>`)
    }
    g.push(`<rect x="${left}" y="${plotTop}" width="${panelWidth}" height="${panelHeight}" fill="none" stroke="#333" stroke-width="1"/>`)
    g.push(`<text x="${r1(left + panelWidth / 2)}" y="${xLabelY}" font-size="${font.label}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`)
    const yMid = r1(plotTop + panelHeight / 2)
    g.push(`<text x="${r1(left - yLabelRoom + 14)}" y="${yMid}" font-size="${font.label}" text-anchor="middle" transform="rotate(-90 ${r1(left - yLabelRoom + 14)} ${yMid})">${escapeXml(spec.yLabel)}</text>`)
    // Curves: dominated markers under the frontier lines, frontier markers on top.
    const drawn = panel.series.map((s) => {
      const st = byId.get(s.id)
      const sorted = [...s.points].sort((a, b) => a.recall - b.recall || b.qps - a.qps)
      const frontier = paretoFrontier(sorted)
      const onFrontier = new Set(frontier)
      return { s, st, frontier, rest: sorted.filter((p) => !onFrontier.has(p)) }
    })
    const tip = (s, p) => `<title>${escapeXml(`${byId.get(s.id).legend} — ${p.label ? `${p.label}: ` : ''}recall ${p.recall.toFixed(4)}, ${int(p.qps)} QPS`)}</title>`
    if (dominated) {
      for (const { s, st, rest } of drawn) {
        for (const p of rest) {
          g.push(`<path class="dominated" d="${markerPath(st.marker, xScale(p.recall, left), yScale(p.qps), 3.6)}" fill="none" stroke="${st.color}" stroke-opacity="0.45" stroke-width="1.1">${tip(s, p)}</path>`)
        }
      }
    }
    for (const { s, st, frontier } of drawn) {
      const d = frontier.map((p, i) => `${i ? 'L' : 'M'}${r1(xScale(p.recall, left))} ${r1(yScale(p.qps))}`).join('')
      g.push(`<path class="curve" data-series="${escapeXml(s.id)}" d="${d}" fill="none" stroke="${st.color}" stroke-width="1.9" stroke-linejoin="round" stroke-linecap="round"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}><title>${escapeXml(st.legend)}</title></path>`)
    }
    for (const { s, st, frontier } of drawn) {
      for (const p of frontier) {
        g.push(`<path class="marker" d="${markerPath(st.marker, xScale(p.recall, left), yScale(p.qps), 4.2)}" fill="${st.color}" stroke="#fff" stroke-width="0.8">${tip(s, p)}</path>`)
      }
    }
    g.push('</g>')
    body.push(...g)
  })

  // Legend, right of the panels, from the top of the plot area.
  const legendLeft = margin + panelsWidth + gap
  const legend = [`<g class="legend">`]
  let ly = plotTop + 4
  const legendChars = Math.floor((legendWidth - 40) / (font.legend * 0.6))
  for (const id of order) {
    const st = byId.get(id)
    const lines = wrap(st.legend, (legendChars + 1) * font.legend * 0.56, font.legend)
    const cy = ly + 8
    legend.push(`<g class="legend-entry" data-series="${escapeXml(id)}">`)
    if (st.line) legend.push(`<line x1="${legendLeft}" x2="${legendLeft + 28}" y1="${cy}" y2="${cy}" stroke="${st.color}" stroke-width="1.9"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>`)
    legend.push(`<path d="${markerPath(st.marker, legendLeft + 14, cy, 4.2)}" fill="${st.color}" stroke="#fff" stroke-width="0.8"/>`)
    lines.forEach((line, i) => legend.push(`<text x="${legendLeft + 36}" y="${r1(cy + 4 + i * (font.legend + 3))}" font-size="${font.legend}">${escapeXml(line)}</text>`))
    legend.push('</g>')
    ly += legendLine + (lines.length - 1) * (font.legend + 3)
  }
  legend.push('</g>')

  // Caption under everything.
  let cy = Math.max(xLabelY + 14, ly + 4) + font.caption + 8
  const caption = []
  for (const paragraph of spec.caption ?? []) {
    for (const line of wrap(paragraph, width - 2 * margin, font.caption)) {
      caption.push(`<text x="${margin}" y="${cy}" font-size="${font.caption}" fill="#444">${escapeXml(line)}</text>`)
      cy += font.caption + 4
    }
    cy += 3
  }
  const height = Math.ceil(cy + margin - font.caption)

  out.push('<?xml version="1.0" encoding="UTF-8"?>')
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" fill="#111">`)
  out.push(`<title>${escapeXml(spec.title)}</title>`)
  if (spec.subtitle) out.push(`<desc>${escapeXml(spec.subtitle)}</desc>`)
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  out.push(...head, ...body, ...legend, ...caption)
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/**
 * The recall–QPS SVG of a result JSON, or null when it has no sweep.
 * @param {any} result
 * @param {RenderOptions} [options]
 */
export function renderRecallQpsSvg(result, options) {
  const spec = plotSpec(result)
  return spec ? renderSvg(spec, options) : null
}

// ---------------------------------------------------------------------------------------------
// PNG through @resvg/resvg-js (optional)

let resvg
/** @resvg/resvg-js (a benchmark peer, workspace.mjs), or { error } when it does not load. Loaded once. */
function loadResvg() {
  if (resvg === undefined) {
    const loaded = loadPeer('@resvg/resvg-js')
    resvg = loaded.module ? { module: loaded.module } : { error: `@resvg/resvg-js does not load (${clip(loaded.error, 80)})` }
  }
  return resvg
}

/** A sans-serif family the system has, for resvg (whose own default, Arial, is rare on Linux). */
function systemSansSerif() {
  const candidates = [
    ['DejaVu Sans', ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/dejavu/DejaVuSans.ttf', '/usr/share/fonts/TTF/DejaVuSans.ttf', '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf']],
    ['Liberation Sans', ['/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf', '/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf']],
    ['Noto Sans', ['/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf', '/usr/share/fonts/noto/NotoSans-Regular.ttf']],
  ]
  for (const [family, files] of candidates) if (files.some((f) => fs.existsSync(f))) return family
  if (process.platform === 'darwin') return 'Helvetica'
  if (process.platform === 'win32') return 'Arial'
  return undefined
}

/**
 * Renders an SVG to PNG with resvg (system fonts), at `scale` × its size. Never throws.
 * @param {string} svg
 * @param {{ scale?: number }} [options]
 * @returns {{ png: Buffer } | { error: string }}
 */
export function svgToPng(svg, { scale = 2 } = {}) {
  const loaded = loadResvg()
  if (loaded.error) return { error: loaded.error }
  try {
    const family = systemSansSerif()
    const r = new loaded.module.Resvg(svg, {
      fitTo: { mode: 'zoom', value: scale },
      background: '#ffffff',
      font: { loadSystemFonts: true, ...(family ? { defaultFontFamily: family, sansSerifFamily: family } : {}) },
    })
    return { png: r.render().asPng() }
  } catch (error) {
    return { error: `resvg failed: ${clip(error?.message ?? error, 120)}` }
  }
}

/**
 * Writes `<dir>/<stem>.svg` (and `.png` when resvg loads) for a result with recall–QPS sweeps.
 * Never throws: problems come back in `notes`.
 * @param {any} result
 * @param {{ dir: string, stem: string, png?: boolean, options?: RenderOptions }} where
 * @returns {{ svgFile?: string, pngFile?: string, notes: string[] }}
 */
export function writePlots(result, { dir, stem, png = true, options }) {
  const notes = []
  let svg
  try {
    svg = renderRecallQpsSvg(result, options)
  } catch (error) {
    notes.push(`plot not rendered: ${clip(error?.message ?? error, 160)}`)
    return { notes }
  }
  if (!svg) return { notes }
  const out = {}
  try {
    fs.mkdirSync(dir, { recursive: true })
    out.svgFile = path.join(dir, `${stem}.svg`)
    fs.writeFileSync(out.svgFile, svg)
  } catch (error) {
    notes.push(`SVG not written: ${clip(error?.message ?? error, 160)}`)
    return { notes }
  }
  if (png) {
    const rendered = svgToPng(svg)
    if ('png' in rendered) {
      try {
        out.pngFile = path.join(dir, `${stem}.png`)
        fs.writeFileSync(out.pngFile, rendered.png)
      } catch (error) {
        delete out.pngFile
        notes.push(`PNG not written: ${clip(error?.message ?? error, 160)}`)
      }
    } else notes.push(`no PNG: ${rendered.error}`)
  }
  return { ...out, notes }
}

// ---------------------------------------------------------------------------------------------
// CLI: re-render stored results.

async function cli(argv) {
  const { parseArgs } = await import('node:util')
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' }, 'no-png': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help || positionals.length === 0) {
    console.log('Usage: node benchmark/plot.mjs <result.json>… [--out <dir>] [--no-png]\nWrites <stem>.svg and <stem>.png (when @resvg/resvg-js loads) next to each JSON, or into --out.')
    return positionals.length || values.help ? 0 : 2
  }
  let failures = 0
  for (const file of positionals) {
    let result
    try {
      result = JSON.parse(fs.readFileSync(file, 'utf8'))
    } catch (error) {
      console.error(`${file}: ${error.message}`)
      failures++
      continue
    }
    const written = writePlots(result, { dir: values.out ?? path.dirname(file), stem: path.basename(file, '.json'), png: !values['no-png'] })
    if (!written.svgFile) console.error(`${file}: no recall–QPS sweep to plot${written.notes.length ? ` (${written.notes.join('; ')})` : ''}`)
    else console.log([written.svgFile, written.pngFile].filter(Boolean).join(' ') + (written.notes.length ? ` (${written.notes.join('; ')})` : ''))
  }
  return failures ? 1 : 0
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await cli(process.argv.slice(2))
}
