/**
 * `vecdex/langchain`: a LangChain.js vector store over a vecdex `Collection` (CommonJS entry;
 * dist/langchain.mjs is the ES module one). Needs `@langchain/core` (an optional peer dependency
 * of vecdex), loaded here in the caller's module format.
 *
 * ```ts
 * const store = await VecdexStore.fromTexts(texts, metadatas, embeddings, { index: 'hnsw' })
 * const docs = await store.asRetriever({ k: 4, filter: { year: { $gte: 2020 } } }).invoke('question')
 * ```
 */
import { Document, type DocumentInterface } from '@langchain/core/documents'
import type { EmbeddingsInterface } from '@langchain/core/embeddings'
import { maximalMarginalRelevance } from '@langchain/core/utils/math'
import { VectorStore } from '@langchain/core/vectorstores'
import { defineVecdexStore, type VecdexStoreClass, type VecdexStoreMembers } from './langchain-store'

export type { VecdexStoreOptions, VecdexStoreAddOptions, VecdexStoreDeleteParams, VecdexStoreMembers } from './langchain-store'
export type { Filter } from './collection'

/** A LangChain `VectorStore` over a vecdex `Collection`: see {@link VecdexStoreMembers}. */
export type VecdexStore = VecdexStoreMembers<DocumentInterface> & VectorStore
/** A LangChain `VectorStore` over a vecdex `Collection`: see {@link VecdexStoreMembers}. */
export const VecdexStore: VecdexStoreClass<VectorStore, EmbeddingsInterface, DocumentInterface> = defineVecdexStore({ VectorStore, Document, maximalMarginalRelevance })
