// The ES module entry (package.json "exports" import condition → dist/esm.d.mts): named,
// namespace, type-only and dynamic imports. Checked by scripts/package-test/types.mjs; never run.
import * as vecdex from 'vecdex'
import { HnswIndex, type HnswIndexOptions } from 'vecdex'

const options = { dimensions: 2, metric: 'dot' } satisfies HnswIndexOptions
const dynamic = await import('vecdex')
const index: HnswIndex = new vecdex.HnswIndex(options)
const same: InstanceType<typeof dynamic.HnswIndex> = index
export const size: number = same.size
