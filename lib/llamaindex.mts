// `vecdex/llamaindex`, ES module entry: the same store as dist/llamaindex.js, defined over the ES
// module copy of llamaindex (the one an ES module user's own code loads, with its own
// Settings.embedModel and node classes), so the two never mix. The store's implementation is
// shared: ./llamaindex-store.js.
import * as llama from 'llamaindex/vector-store'
import type { Collection } from './collection.js'
import { defineVecdexVectorStore, type LlamaIndexVectorStoreModule, type VecdexVectorStoreClass, type VecdexVectorStoreMembers } from './llamaindex-store.js'

export { metadataFiltersToFilter, distanceToSimilarity } from './llamaindex-store.js'
export type { VecdexVectorStoreOptions, VecdexVectorStoreMembers } from './llamaindex-store.js'
export type { Filter } from './collection.js'

/** A LlamaIndex `BaseVectorStore` over a vecdex `Collection`: see {@link VecdexVectorStoreMembers}. */
export type VecdexVectorStore = VecdexVectorStoreMembers & llama.BaseVectorStore<Collection | undefined>
// The shared implementation is typed against llamaindex's CommonJS declarations; these are the ES
// module ones (the same classes, declared twice), hence the casts.
/** A LlamaIndex `BaseVectorStore` over a vecdex `Collection`: see {@link VecdexVectorStoreMembers}. */
export const VecdexVectorStore = defineVecdexVectorStore(llama as unknown as LlamaIndexVectorStoreModule) as unknown as VecdexVectorStoreClass<
  llama.BaseVectorStore<Collection | undefined>,
  llama.BaseVectorStore['embedModel']
>
