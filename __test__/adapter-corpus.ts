// The corpus, queries and embedding the adapter specs (langchain.spec.ts, llamaindex.spec.ts)
// share: deterministic, offline, and small enough for exact comparisons.

export const DIMENSIONS = 64

const TOPICS = ['space', 'cooking', 'music', 'animals'] as const
const WORDS: Record<(typeof TOPICS)[number], string[]> = {
  space: ['rocket', 'orbit', 'planet', 'star', 'comet', 'galaxy', 'moon', 'telescope', 'nebula', 'launch'],
  cooking: ['bread', 'oven', 'garlic', 'recipe', 'butter', 'pasta', 'salt', 'soup', 'knife', 'flour'],
  music: ['guitar', 'chord', 'melody', 'drum', 'violin', 'tempo', 'choir', 'piano', 'rhythm', 'song'],
  animals: ['wolf', 'otter', 'heron', 'fox', 'badger', 'whale', 'owl', 'lynx', 'beaver', 'moth'],
}
const TAGS = ['review', 'guide', 'news', 'history', 'rare', 'photo']

// 32-bit FNV-1a, for word → dimension.
function fnv1a(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/**
 * A hashed bag of words, normalised: each lower-cased word adds ±1 to one of `DIMENSIONS`
 * coordinates (both chosen by its hash), plus a small constant coordinate so that no text
 * (not even an empty one) embeds to the zero vector.
 */
export function embedText(text: string): number[] {
  const vector = new Array<number>(DIMENSIONS).fill(0)
  vector[DIMENSIONS - 1] = 0.25
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    const hash = fnv1a(word)
    vector[hash % (DIMENSIONS - 1)]! += hash & 0x80000000 ? -1 : 1
  }
  const norm = Math.hypot(...vector)
  return vector.map((x) => x / norm)
}

export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!
    na += a[i]! * a[i]!
    nb += b[i]! * b[i]!
  }
  return dot / Math.sqrt(na * nb)
}

export interface CorpusEntry {
  id: string
  text: string
  metadata: { topic: string; year: number; tags: string[]; rank: number; note?: string }
}

/** `count` documents: 6 to 9 words, mostly of one topic, and metadata of every kind the filters
 * test (string, number, string array, and a `note` that is missing, empty or set). */
export function makeCorpus(count: number, seed = 0x9e3779b9): CorpusEntry[] {
  let state = seed >>> 0
  const random = () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 4294967296
  }
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const entries: CorpusEntry[] = []
  for (let i = 0; i < count; i++) {
    const topic = TOPICS[i % TOPICS.length]!
    const length = 6 + Math.floor(random() * 4)
    const words = Array.from({ length }, () => (random() < 0.8 ? pick(WORDS[topic]) : pick(WORDS[pick(TOPICS)])))
    // A word of its own makes every text, and so every vector, distinct.
    words.push(`doc${i}`)
    const tags = [...new Set([pick(TAGS), pick(TAGS)])].sort()
    const metadata: CorpusEntry['metadata'] = { topic, year: 1990 + ((i * 7) % 35), tags, rank: i }
    if (i % 3 === 1) metadata.note = ''
    else if (i % 3 === 2) metadata.note = pick(['draft', 'final'])
    entries.push({ id: `doc-${i}`, text: words.join(' '), metadata })
  }
  return entries
}

export const QUERIES = [
  'rocket launch to the moon',
  'garlic bread in the oven',
  'piano melody and violin',
  'otter and beaver by the river',
  'star galaxy nebula telescope',
  'soup recipe with salt',
  'drum rhythm tempo',
  'owl heron wolf',
  'planet guitar bread fox',
  'comet choir',
]

/** Replaces `fetch` with one that fails the test: the adapters and the libraries under test must
 * not reach the network. Returns the function that restores it. */
export function forbidNetwork(): () => void {
  const original = globalThis.fetch
  globalThis.fetch = (async (input: unknown) => {
    throw new Error(`network access attempted in an offline test: ${String(input)}`)
  }) as typeof fetch
  return () => {
    globalThis.fetch = original
  }
}
