// `vecdex/langchain`, ES module entry: the same store as dist/langchain.js, defined over the ES
// module copy of `@langchain/core` (the one an ES module user's own LangChain code loads), so the
// two never mix. The store's implementation is shared: ./langchain-store.js.
import { Document, type DocumentInterface } from '@langchain/core/documents'
import type { EmbeddingsInterface } from '@langchain/core/embeddings'
import { maximalMarginalRelevance } from '@langchain/core/utils/math'
import { VectorStore } from '@langchain/core/vectorstores'
import { defineVecdexStore, type LangChainCore, type VecdexStoreClass, type VecdexStoreMembers } from './langchain-store.js'

export type { VecdexStoreOptions, VecdexStoreAddOptions, VecdexStoreDeleteParams, VecdexStoreMembers } from './langchain-store.js'
export type { Filter } from './collection.js'

/** A LangChain `VectorStore` over a vecdex `Collection`: see {@link VecdexStoreMembers}. */
export type VecdexStore = VecdexStoreMembers<DocumentInterface> & VectorStore
// The shared implementation is typed against @langchain/core's CommonJS declarations; these are
// the ES module ones (the same classes, declared twice), hence the casts.
/** A LangChain `VectorStore` over a vecdex `Collection`: see {@link VecdexStoreMembers}. */
export const VecdexStore = defineVecdexStore({ VectorStore, Document, maximalMarginalRelevance } as unknown as LangChainCore) as unknown as VecdexStoreClass<
  VectorStore,
  EmbeddingsInterface,
  DocumentInterface
>
