/**
 * Part 5, lifecycle:
 *   - 10,000 cycles of create → add 100 vectors → search → close, alternating FlatIndex and
 *     HnswIndex (16-d; metrics in turn; half the cycles sync, half async; every 10th also
 *     round-trips through toBufferSync/fromBufferSync), after 3,000 warm-up cycles of the same.
 *     The resident set size (RSS) is taken after the warm-up and at the end, each after forced
 *     garbage collection (`node --expose-gc`); each cycle's self-query must find its own key.
 *     Why 3,000: V8's optimizing compiler (TurboFan) kicks in between 1,000 and 2,000 cycles and
 *     keeps ~4 MB more RSS from then on (even for cycles that only create and close an index;
 *     not with `node --no-opt`), which is 7 % of this process: after 1,000 cycles the figure
 *     would measure the JIT, not vecdex. The RSS is sampled every 1,000 cycles to show the trend.
 *   - Use after close: on a closed FlatIndex, HnswIndex and MultiVectorIndex, every public
 *     method and getter (found by reflection on the built classes) fails with ERR_CLOSED —
 *     synchronous ones by throwing, Promise-returning ones by rejecting — while `closed` is
 *     true and `close()` / `Symbol.dispose` stay harmless no-ops.
 *
 * Targets: ≥ 10,000 cycles after the warm-up; RSS growth from warm-up to end < 5 %; 0 wrong
 * self-queries; 0 members that do not fail correctly after close; 0 public members without a
 * check.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { ASYNC_METHODS, createResult, outcomeOf, progress, publicMembers, randomMatrix, scaled, seqKeys, tempDir, vecdex } from './lib/common.mjs'

export const title = 'lifecycle'

const { FlatIndex, HnswIndex, MultiVectorIndex } = vecdex
const DIM = 16
const ROWS = 100
const METRICS = ['cosine', 'dot', 'l2sq']
const V = new Float32Array(DIM).fill(0.5)
const DOC = [V, V.map((x, i) => x + i)]

/** Four full garbage collections (pending callbacks run between them), then the RSS in bytes. */
async function settledRss() {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().rss
}

/** One cycle: create, add, search (self-query of one row), close. Returns whether it found it. */
async function cycle(i, data) {
  const Class = i % 2 === 0 ? FlatIndex : HnswIndex
  const metric = METRICS[Math.floor(i / 2) % METRICS.length]
  const sync = i % 4 < 2
  const offset = (i * 7) % (data.length / DIM - ROWS)
  const vectors = data.subarray(offset * DIM, (offset + ROWS) * DIM)
  const index = new Class({ dimensions: DIM, metric })
  const keys = seqKeys(ROWS, i * ROWS)
  if (sync) index.addSync(keys, vectors)
  else await index.add(keys, vectors)
  let searched = index
  if (i % 10 === 9) searched = Class.fromBufferSync(index.toBufferSync())
  const probe = i % ROWS
  const query = vectors.subarray(probe * DIM, (probe + 1) * DIM)
  // Under dot, the nearest is the largest inner product, not necessarily the vector itself.
  const k = metric === 'dot' ? ROWS : 1
  const hits = sync ? searched.searchSync(query, { k }) : await searched.search(query, { k })
  const found = [...hits.get(0).keys].includes(BigInt(i * ROWS + probe))
  if (searched !== index) searched.close()
  index.close()
  return found
}

/** Arguments to call each public method with (valid ones: only the closed state is wrong). */
function callsFor(Class, dir) {
  const multi = Class === MultiVectorIndex
  const item = multi ? DOC : V
  const query = multi ? [V] : V
  const queries = [query]
  return {
    add: (i) => i.add([9], [item]),
    addSync: (i) => i.addSync([9], [item]),
    addStream: (i) => i.addStream(multi ? [{ key: 9, tokens: DOC }] : [{ key: 9, vector: V }]),
    remove: (i) => i.remove([1]),
    removeSync: (i) => i.removeSync([1]),
    get: (i) => i.get(1),
    contains: (i) => i.contains(1),
    keys: (i) => i.keys(),
    search: (i) => i.search(query, { k: 1 }),
    searchSync: (i) => i.searchSync(query, { k: 1 }),
    searchBatch: (i) => i.searchBatch(queries, { k: 1 }),
    searchBatchSync: (i) => i.searchBatchSync(queries, { k: 1 }),
    searchStream: (i) => i.searchStream([V], { k: 1 }).next(),
    searchExact: (i) => i.searchExact(query, { k: 1 }),
    searchExactSync: (i) => i.searchExactSync(query, { k: 1 }),
    searchExactBatch: (i) => i.searchExactBatch(queries, { k: 1 }),
    searchExactBatchSync: (i) => i.searchExactBatchSync(queries, { k: 1 }),
    train: (i) => i.train([item]),
    trainSync: (i) => i.trainSync([item]),
    compressionStats: (i) => i.compressionStats(),
    stats: (i) => i.stats(),
    compact: (i) => i.compact(),
    compactSync: (i) => i.compactSync(),
    save: (i) => i.save(join(dir, 'closed.idx')),
    saveSync: (i) => i.saveSync(join(dir, 'closed.idx')),
    toBuffer: (i) => i.toBuffer(),
    toBufferSync: (i) => i.toBufferSync(),
  }
}

/** Use after close, for every public member of the three index classes. */
async function afterClose(r, dir) {
  let checked = 0
  let wrong = 0
  const unchecked = []
  const problem = (what) => {
    wrong++
    r.fail(`after close: ${what}`)
  }
  for (const Class of [FlatIndex, HnswIndex, MultiVectorIndex]) {
    const index = new Class({ dimensions: DIM })
    index.addSync([1, 2], Class === MultiVectorIndex ? [DOC, DOC] : [V, V.map((x) => -x)])
    index.close()
    const calls = callsFor(Class, dir)
    const { methods, getters } = publicMembers(Class)
    for (const method of methods) {
      const name = `${Class.name}.${method}`
      if (method === 'close') {
        const again = await outcomeOf(() => index.close())
        const dispose = await outcomeOf(() => index[Symbol.dispose]())
        if (again.code !== 'OK' || dispose.code !== 'OK') problem(`${name} again / Symbol.dispose: ${again.code} / ${dispose.code}`)
        checked++
        continue
      }
      if (!calls[method]) {
        unchecked.push(name)
        continue
      }
      const outcome = await outcomeOf(() => calls[method](index))
      const asyncMethod = ASYNC_METHODS.has(method)
      if (outcome.code !== 'ERR_CLOSED') problem(`${name}: ${outcome.code}`)
      else if (asyncMethod && !outcome.rejected) problem(`${name} threw synchronously instead of rejecting`)
      else if (!asyncMethod && !outcome.threw) problem(`${name} returned a rejected promise instead of throwing`)
      checked++
    }
    for (const getter of getters) {
      const name = `${Class.name}.${getter}`
      const outcome = await outcomeOf(() => index[getter])
      if (getter === 'closed') {
        if (index.closed !== true) problem(`${name} is not true`)
      } else if (outcome.code !== 'ERR_CLOSED' || !outcome.threw) problem(`${name} (getter): ${outcome.code}`)
      checked++
    }
  }
  return { checked, wrong, unchecked }
}

export async function run({ scale }) {
  if (typeof global.gc !== 'function') throw new Error('run with node --expose-gc (npm run test:reliability does)')
  const r = createResult()
  const cycles = scaled(10_000, scale)
  const warmup = scaled(3_000, scale)
  const interval = scaled(1_000, scale)
  const data = randomMatrix(4 * ROWS, DIM, 41)
  let missed = 0
  const samples = []
  const started = performance.now()
  let warmRss
  for (let i = 0; i < warmup + cycles; i++) {
    if (!(await cycle(i, data))) {
      if (missed++ < 5) r.fail(`cycle ${i}: the self-query did not find its key`)
    }
    if ((i + 1) % interval === 0) {
      const rss = await settledRss()
      samples.push(Math.round((rss / 2 ** 20) * 10) / 10)
      if (i + 1 === warmup) warmRss = rss
      progress(`${i + 1}/${warmup + cycles} cycles${i + 1 <= warmup ? ' (warm-up)' : ''}, RSS ${(rss / 2 ** 20).toFixed(1)} MB`)
    }
  }
  const seconds = (performance.now() - started) / 1000
  const endRss = await settledRss()
  const growth = (endRss - warmRss) / warmRss
  const dir = tempDir('lifecycle')
  let closed
  try {
    closed = await afterClose(r, dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  r.figure('cycles', cycles)
  r.figure('warmupCycles', warmup)
  r.figure('seconds', seconds)
  r.figure('rssAfterWarmupBytes', warmRss)
  r.figure('rssEndBytes', endRss)
  r.figure('rssGrowth', growth)
  r.figure('rssBytesPerCycle', (endRss - warmRss) / cycles)
  r.figure('rssMegabytesEveryInterval', samples)
  r.figure('selfQueryMisses', missed)
  r.figure('membersCheckedAfterClose', closed.checked)
  r.figure('membersWithoutCheck', closed.unchecked)
  r.line(`${cycles} create → add ${ROWS} → search → close cycles (Flat/HNSW alternating) after ${warmup} warm-up cycles, in ${seconds.toFixed(1)} s`)
  r.line(`RSS after the warm-up ${(warmRss / 2 ** 20).toFixed(1)} MB, after ${cycles} more cycles ${(endRss / 2 ** 20).toFixed(1)} MB: growth ${(growth * 100).toFixed(2)} % (${((endRss - warmRss) / cycles).toFixed(0)} bytes per cycle)`)
  r.line(`RSS (MB) every ${interval} cycles, warm-up included: ${samples.join(', ')}`)
  r.line(`after close: ${closed.checked} members of FlatIndex, HnswIndex, MultiVectorIndex checked, ${closed.wrong} wrong`)
  if (closed.unchecked.length > 0) r.line(`public members without a check: ${closed.unchecked.join(', ')}`)
  r.check('cycles after the warm-up', cycles, '>=', scaled(10_000, scale))
  r.check('RSS growth after warm-up (%)', Math.round(growth * 10_000) / 100, '<', 5)
  r.check('self-queries that missed', missed, '==', 0)
  r.check('members not failing with ERR_CLOSED (sync throw, async reject)', closed.wrong, '==', 0)
  r.check('public members without a check', closed.unchecked.length, '==', 0)
  return r.result
}
