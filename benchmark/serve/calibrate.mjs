// Search settings at equal recall, measured through each server: every query of the set is sent
// over HTTP (a few at a time on keep-alive connections, outside any timing) at one efSearch, and
// recall@k is computed from the ids in the answers. The smallest efSearch of EF_LIST whose
// recall reaches the target is found by bisection (recall grows with efSearch). The answers at
// the chosen efSearch become the reference the load test checks answers under load against.

import http from 'node:http'
import { recallAtK } from '../groundtruth.mjs'

/** efSearch values tried, ascending (the ann suite's sweep also ends at 512). */
export const EF_LIST = [10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512]
/** Requests in flight while calibrating: quick, and far from any server's limit. */
const CONCURRENCY = 4

/**
 * recall@k of one query's ids, with the ground truth's tie rule (groundtruth.mjs recallAtK).
 * @param {import('../groundtruth.mjs').GroundTruth} gt
 */
export function queryRecall(gt, qi, ids, k) {
  const one = {
    k: gt.k,
    indices: gt.indices.subarray(qi * gt.k, (qi + 1) * gt.k),
    distances: gt.distances.subarray(qi * gt.k, (qi + 1) * gt.k),
    trueDistance: (_q, key) => gt.trueDistance(qi, key),
  }
  return recallAtK([ids], /** @type {any} */ (one), k)
}

/**
 * Sends every body to `address + path`, CONCURRENCY at a time; returns each answer's hit ids.
 * A non-200 answer or an unreadable body throws (the server is then not serving correctly).
 * @param {string} address
 * @param {string} path
 * @param {Buffer[]} bodies
 * @returns {Promise<number[][]>}
 */
export async function searchAll(address, path, bodies) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const url = new URL(path, address)
  const one = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          if (res.statusCode !== 200) return reject(new Error(`POST ${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`))
          try {
            resolve(JSON.parse(text).hits.map((h) => Number(h.id)))
          } catch (error) {
            reject(new Error(`POST ${path}: unreadable answer (${error.message}): ${text.slice(0, 200)}`))
          }
        })
      })
      req.setTimeout(60_000, () => req.destroy(new Error(`POST ${path}: no answer in 60 s`)))
      req.on('error', reject)
      req.end(body)
    })
  const out = new Array(bodies.length)
  let next = 0
  try {
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, bodies.length) }, async () => {
        while (next < bodies.length) {
          const i = next++
          out[i] = await one(bodies[i])
        }
      }),
    )
  } finally {
    agent.destroy()
  }
  return out
}

/**
 * Finds the smallest efSearch of `efList` with recall@k ≥ target through the server.
 * @param {{ address: string, path: string, bodiesAt: (ef: number) => Buffer[], gt: any, k: number,
 *           target: number, efList?: number[], log?: (msg: string) => void, label?: string }} opts
 *   bodiesAt(ef): the request bodies of every query at that efSearch
 * @returns {Promise<{ ef: number, recall: number, reached: boolean, points: { ef: number, recall: number }[],
 *                     reference: { ids: number[], recall: number }[] }>}
 *   reference: per query, the ids at the chosen ef and their recall
 */
export async function calibrate({ address, path, bodiesAt, gt, k, target, efList = EF_LIST, log = () => {}, label = '' }) {
  const runs = new Map()
  const at = async (ef) => {
    if (!runs.has(ef)) {
      const ids = await searchAll(address, path, bodiesAt(ef))
      const recall = recallAtK(ids, gt, k)
      runs.set(ef, { ids, recall })
      log(`serve: ${label} efSearch ${ef}: recall@${k} ${recall.toFixed(4)} through the server`)
    }
    return runs.get(ef)
  }
  const list = efList.filter((ef) => ef >= k)
  let lo = 0
  let hi = list.length - 1
  let reached = (await at(list[hi])).recall >= target
  if (reached) {
    // Invariant: list[hi] reaches the target; find the first that does.
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((await at(list[mid])).recall >= target) hi = mid
      else lo = mid + 1
    }
  }
  const ef = list[hi]
  const chosen = await at(ef)
  const reference = chosen.ids.map((ids, qi) => ({ ids, recall: queryRecall(gt, qi, ids, k) }))
  const points = [...runs.entries()].map(([e, r]) => ({ ef: e, recall: r.recall })).sort((a, b) => a.ef - b.ef)
  return { ef, recall: chosen.recall, reached, points, reference }
}

/**
 * The answers of every query at one efSearch, as a reference (a server measured again with the
 * efSearch found for another: vecdex without micro-batching).
 */
export async function measureAt({ address, path, bodies, gt, k }) {
  const ids = await searchAll(address, path, bodies)
  const reference = ids.map((row, qi) => ({ ids: row, recall: queryRecall(gt, qi, row, k) }))
  return { recall: recallAtK(ids, gt, k), reference }
}
