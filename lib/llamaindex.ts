/**
 * `vecdex/llamaindex`: a LlamaIndex.TS vector store over a vecdex `Collection` (CommonJS entry;
 * dist/llamaindex.mjs is the ES module one). Needs `llamaindex` (an optional peer dependency of
 * vecdex), loaded here in the caller's module format.
 *
 * ```ts
 * const store = new VecdexVectorStore({ index: 'hnsw' })
 * await VectorStoreIndex.fromDocuments(documents, { storageContext: await storageContextFromDefaults({ vectorStore: store }) })
 * const retriever = (await VectorStoreIndex.fromVectorStore(store)).asRetriever({ similarityTopK: 3 })
 * ```
 */
import * as llama from 'llamaindex/vector-store'
import type { Collection } from './collection'
import { defineVecdexVectorStore, type VecdexVectorStoreClass, type VecdexVectorStoreMembers } from './llamaindex-store'

export { metadataFiltersToFilter, distanceToSimilarity } from './llamaindex-store'
export type { VecdexVectorStoreOptions, VecdexVectorStoreMembers } from './llamaindex-store'
export type { Filter } from './collection'

/** A LlamaIndex `BaseVectorStore` over a vecdex `Collection`: see {@link VecdexVectorStoreMembers}. */
export type VecdexVectorStore = VecdexVectorStoreMembers & llama.BaseVectorStore<Collection | undefined>
/** A LlamaIndex `BaseVectorStore` over a vecdex `Collection`: see {@link VecdexVectorStoreMembers}. */
export const VecdexVectorStore: VecdexVectorStoreClass<llama.BaseVectorStore<Collection | undefined>, llama.BaseVectorStore['embedModel']> = defineVecdexVectorStore(llama)
