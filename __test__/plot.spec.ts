// The benchmark's recall–QPS plots (benchmark/plot.mjs) and their files (report.mjs writeResult):
// the Pareto frontier, the axes, a well-formed standalone SVG with one curve per engine and mode,
// escaped names, and the files written next to the JSON and markdown.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { escapeXml, hasRecallQpsSweeps, logAxis, paretoFrontier, plotSpec, qpsLabel, recallAxis, renderRecallQpsSvg } from '../benchmark/plot.mjs'
import { writeResult } from '../benchmark/report.mjs'

const dir = mkdtempSync(join(tmpdir(), 'vecdex-plot-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const machine = {
  cpuModel: 'Test CPU',
  cores: 2,
  cpuFlags: ['avx2', 'fma', 'avx512f'],
  memoryGiB: 8,
  os: 'Linux test x64',
  node: 'v20.0.0',
  vecdex: { version: '0.1.0', capabilities: { scanKernel: 'avx512', threads: 2, simsimdBackends: ['haswell', 'skylake'] } },
  peers: {},
}

const point = (ef: number, recall: number, singleQps: number, batchQps?: number) => ({ ef, recall, singleQps, singleSeconds: [1], batchRecall: batchQps ? recall : undefined, batchQps })

/** A small ann result: vecdex in both modes, a peer with an awkward name and no batch search, a skipped engine. */
function annResult() {
  return {
    suite: 'ann',
    startedAt: '2026-01-01T00:00:00.000Z',
    machine,
    dataset: { name: 'synthetic', metric: 'l2sq', n: 1000, q: 50, dim: 8 },
    k: 10,
    params: { m: 16, efConstruction: 128, threads: 2, runs: 1, efSearch: [10, 20, 40, 80] },
    engines: [
      { name: 'vecdex', version: '0.1.0', batchThreads: 2, points: [point(10, 0.62, 48_000, 90_000), point(20, 0.81, 30_000, 61_000), point(40, 0.93, 12_000, 25_000), point(80, 0.99, 2_500, 5_000)] },
      { name: 'usearch <&> "x"', version: '2.0.0', points: [point(10, 0.7, 20_000), point(20, 0.85, 21_000), point(40, 0.95, 8_000), point(80, 0.98, 900)] },
      { name: 'faiss', skipped: 'faiss-node is not <installed>' },
    ],
  }
}

/**
 * Checks that `xml` is well-formed enough for any XML parser: one root, balanced and properly
 * nested tags, quoted attributes, no raw `<` or stray `&` in text or attribute values. Returns
 * the element names in document order.
 */
function checkWellFormed(xml: string): string[] {
  const names: string[] = []
  const stack: string[] = []
  let rest = xml.replace(/^<\?xml[^?]*\?>\s*/, '')
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g
  const checkText = (text: string) => {
    expect(text.replace(entity, ''), `text ${JSON.stringify(text.slice(0, 80))}`).not.toMatch(/[<&]/)
  }
  let roots = 0
  while (rest.length) {
    const open = rest.indexOf('<')
    if (open < 0) {
      expect(rest.trim()).toBe('')
      break
    }
    const text = rest.slice(0, open)
    if (stack.length === 0) expect(text.trim(), 'text outside the root element').toBe('')
    checkText(text)
    rest = rest.slice(open)
    const tag = /^<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*="[^"]*")*)\s*(\/?)>/.exec(rest)
    expect(tag, `malformed tag at ${JSON.stringify(rest.slice(0, 60))}`).not.toBeNull()
    const [whole, closing, name, attrs, selfClosing] = tag!
    for (const [, value] of attrs.matchAll(/="([^"]*)"/g)) checkText(value)
    if (closing) {
      expect(attrs.trim()).toBe('')
      expect(stack.pop(), `</${name}> closes the wrong element`).toBe(name)
    } else {
      names.push(name)
      if (stack.length === 0) roots++
      if (!selfClosing) stack.push(name)
    }
    rest = rest.slice(whole.length)
  }
  expect(stack).toEqual([])
  expect(roots).toBe(1)
  return names
}

describe('paretoFrontier', () => {
  it('keeps the points no other point beats in both recall and QPS, by recall', () => {
    const a = { recall: 0.5, qps: 1000 }
    const b = { recall: 0.6, qps: 800 }
    const c = { recall: 0.55, qps: 700 } // below b: lower recall and QPS
    const d = { recall: 0.9, qps: 100 }
    const e = { recall: 0.9, qps: 50 } // same recall as d, slower
    const f = { recall: 0.4, qps: 1000 } // same QPS as a, lower recall
    const g = { recall: 0.9, qps: 100 } // the same as d: one of them stays
    const h = { recall: 0.95, qps: Number.NaN } // not a point
    const frontier = paretoFrontier([c, e, g, f, b, h, d, a])
    expect(frontier.map((p) => [p.recall, p.qps])).toEqual([
      [0.5, 1000],
      [0.6, 800],
      [0.9, 100],
    ])
    expect(paretoFrontier([])).toEqual([])
    // Other fields through accessors.
    const sweep = [point(10, 0.8, 500), point(20, 0.7, 400), point(40, 0.95, 450)]
    expect(paretoFrontier(sweep, { x: (p) => p.recall, y: (p) => p.singleQps }).map((p) => p.ef)).toEqual([10, 40])
  })
})

describe('axes', () => {
  it('labels QPS ticks readably on a log scale', () => {
    expect([500, 1000, 20_000, 100_000, 1_500_000, 2.5].map(qpsLabel)).toEqual(['500', '1k', '20k', '100k', '1.5M', '2.5'])
    const wide = logAxis(900, 90_000, 320)
    expect(wide.min).toBeLessThanOrEqual(900)
    expect(wide.max).toBeGreaterThanOrEqual(90_000)
    const labels = wide.ticks.filter((t) => t.label).map((t) => t.label)
    expect(labels).toEqual(expect.arrayContaining(['1k', '10k']))
    expect(wide.ticks.filter((t) => t.major).map((t) => t.value)).toEqual([1000, 10_000])
    // Within one decade, the in-between multiples get labels.
    const narrow = logAxis(21_000, 83_000, 320)
    expect(narrow.ticks.filter((t) => t.label).length).toBeGreaterThanOrEqual(4)
  })

  it('fits recall from the lowest tenth to 1', () => {
    expect(recallAxis(0.63)).toMatchObject({ min: 0.6, max: 1 })
    expect(recallAxis(0.97)).toMatchObject({ min: 0.9, max: 1, step: 0.01 })
    expect(recallAxis(1).min).toBe(0.9)
    expect(recallAxis(0.05).ticks.map((t) => t.label)).toEqual(['0.0', '0.1', '0.2', '0.3', '0.4', '0.5', '0.6', '0.7', '0.8', '0.9', '1.0'])
  })
})

describe('recall–QPS SVG', () => {
  const svg = renderRecallQpsSvg(annResult()) as string

  it('is a well-formed standalone SVG', () => {
    expect(svg).toBeTypeOf('string')
    const names = checkWellFormed(svg)
    expect(names[0]).toBe('svg')
    const root = /<svg [^>]*>/.exec(svg)![0]
    expect(root).toContain('xmlns="http://www.w3.org/2000/svg"')
    expect(root).toMatch(/ width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/)
    expect(root).toContain('font-family="sans-serif"')
  })

  it('draws one curve per engine with points in each mode panel', () => {
    const panels = svg.split('<g class="panel"').slice(1)
    expect(panels).toHaveLength(2)
    const curves = (part: string) => [...part.matchAll(/<path class="curve" data-series="([^"]*)"/g)].map((m) => m[1])
    expect(curves(panels[0])).toEqual(['e0', 'e1']) // 1 thread: vecdex and the peer
    expect(curves(panels[1].split('<g class="legend">')[0])).toEqual(['e0']) // batch: vecdex only
    expect(panels[1]).toContain('no batch search: usearch &lt;&amp;&gt; &quot;x&quot;')
    // The peer's ef 10 point (0.70, 20k) is beaten by its ef 20 point (0.85, 21k): faint marker.
    expect(svg.match(/<path class="dominated"/g)).toHaveLength(1)
  })

  it('has a legend with names and versions, and lists unmeasured engines', () => {
    const legend = svg.slice(svg.indexOf('<g class="legend">'))
    expect(legend.match(/<g class="legend-entry"/g)).toHaveLength(2)
    expect(legend).toContain('>vecdex 0.1.0</text>')
    expect(legend).toContain('usearch &lt;&amp;&gt; &quot;x&quot; (2.0.0)')
    expect(svg).not.toContain('<&>')
    expect(svg).toContain('Not measured: faiss (skipped: faiss-node is not &lt;installed&gt;)')
    expect(svg).toContain('Test CPU, 2 cores')
    expect(svg).toContain('avx512f')
  })

  it('has log-scale QPS ticks and recall ticks', () => {
    const yTicks = [...svg.matchAll(/<text class="ytick"[^>]*>([^<]*)</g)].map((m) => m[1])
    expect(yTicks).toEqual(expect.arrayContaining(['1k', '10k']))
    const xTicks = [...svg.matchAll(/<text class="xtick"[^>]*>([^<]*)</g)].map((m) => m[1])
    // Recall 0.62–0.99: from 0.6 to 1 in steps of 0.05, in each of the two panels.
    const steps = ['0.60', '0.65', '0.70', '0.75', '0.80', '0.85', '0.90', '0.95', '1.00']
    expect(xTicks).toEqual([...steps, ...steps])
  })

  it('escapes XML', () => {
    expect(escapeXml(`a<b & "c" 'd'>\u0001`)).toBe('a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;')
  })

  it('plots quant engines (engine + codec) and multivector configurations', () => {
    const quant = {
      ...annResult(),
      suite: 'quant',
      engines: [
        { name: 'vecdex sq8', family: 'vecdex', codec: 'sq8', version: '0.1.0', sweepParam: 'efSearch ×oversample', compression: { codeBytes: 36, rescoreBytes: 128 }, points: [point(10, 0.9, 9000, 15_000), point(20, 0.97, 6000, 11_000)] },
        { name: 'usearch i8', family: 'usearch', codec: 'i8', version: '2.0.0', compression: { codeBytes: 32, rescoreBytes: 0 }, points: [point(10, 0.76, 8000, 12_000)] },
        { name: 'lancedb', family: 'lancedb', skipped: 'not installed' },
      ],
    }
    const spec = plotSpec(quant)!
    expect(spec.panels).toHaveLength(2)
    expect(spec.panels[0].series.map((s: { legend: string }) => s.legend)).toEqual(['vecdex sq8 (0.1.0), 36 B/vec', 'usearch i8 (2.0.0), 32 B/vec'])
    checkWellFormed(renderRecallQpsSvg(quant) as string)

    const multivector = {
      suite: 'multivector',
      machine,
      dataset: { name: 'wordnet-multivector', documents: 3000, queries: 100, baseTokens: 30_000 },
      threads: 2,
      runs: 1,
      exact: { qps: 1000 },
      configs: [
        { label: 'r10k4p4', dims: 640, points: [{ strategy: 'rerank', candidates: 50, recall: 0.5, qps: 9000 }, { strategy: 'rerank', candidates: 200, recall: 0.8, qps: 4000 }, { strategy: 'walk', candidates: 50, recall: 0.7, qps: 3000 }] },
      ],
      lancedb: { skipped: '@lancedb/lancedb is not installed' },
    }
    const mv = renderRecallQpsSvg(multivector) as string
    checkWellFormed(mv)
    expect(mv.match(/<path class="curve"/g)).toHaveLength(3) // rerank, walk, exact
    expect(mv).toContain('Not measured: lancedb (@lancedb/lancedb is not installed)')
  })

  it('has nothing to plot for results without sweeps', () => {
    const exact = { suite: 'exact', machine, engines: [{ name: 'vecdex', qps: 1000, recall: 1 }] }
    expect(hasRecallQpsSweeps(exact)).toBe(false)
    expect(plotSpec(exact)).toBeNull()
    expect(renderRecallQpsSvg(exact)).toBeNull()
  })
})

describe('writeResult', () => {
  it('writes the JSON, the markdown with a link to the plot, the SVG and (with resvg) the PNG', () => {
    const files = writeResult({ suite: 'ann', dataset: 'synthetic', markdown: '# ann', json: annResult(), dir })
    expect(files.jsonFile).toBe(join(dir, basename(files.jsonFile)))
    expect(JSON.parse(readFileSync(files.jsonFile, 'utf8')).engines).toHaveLength(3)
    expect(files.svgFile).toBe(files.jsonFile.replace(/\.json$/, '.svg'))
    checkWellFormed(readFileSync(files.svgFile!, 'utf8'))
    const md = readFileSync(files.mdFile, 'utf8')
    expect(md.startsWith('# ann\n')).toBe(true)
    expect(md).toContain(`](${basename(files.svgFile!)})`)
    if (files.pngFile) {
      expect(readFileSync(files.pngFile).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
      expect(md).toContain(`(${basename(files.pngFile)})`)
    } else {
      expect(files.plotNotes?.join(' ')).toMatch(/no PNG/)
    }
  })

  it('keeps suites without sweeps to JSON and markdown', () => {
    const files = writeResult({ suite: 'exact', dataset: 'synthetic-exact', markdown: '# exact\n', json: { suite: 'exact', engines: [{ name: 'vecdex', qps: 10 }] }, dir })
    expect(Object.keys(files).sort()).toEqual(['jsonFile', 'mdFile'])
    expect(readFileSync(files.mdFile, 'utf8')).toBe('# exact\n')
    expect(existsSync(files.jsonFile.replace(/\.json$/, '.svg'))).toBe(false)
  })
})
