//! What every native index class shares: the `Option<Arc<Shared>>` lifecycle (idempotent
//! `close()`, in-flight tasks keep their own `Arc`), write ordering, lock-free size and memory
//! figures, external-memory reports to V8, and the result layouts handed to JS.
//!
//! Locking keeps the event loop free: calls on the JS thread read with `read_recursive` (they
//! wait only while a writer holds the lock, never behind a queued one), and async writes run on
//! the task threads in call order.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use napi::bindgen_prelude::{
    BigUint64Array, BigUint64ArraySlice, Float32Array, Object, ToNapiValue, Uint32Array,
    Uint8ArraySlice,
};
use napi::Env;
use napi_derive::napi;
use parking_lot::RwLock;
use vecdex::{Error, KeyFilter, Persistent, SearchResults, VectorIndex};

use crate::error::{invalid, to_napi, NativeError, Result};
use crate::order::WriteOrder;
use crate::tasks;

/// An index loaded on a task thread, waiting for the JS thread to wrap it in its class
/// (`adoptLoaded`): a class instance can only be made on the JS thread.
pub struct Loaded<I>(parking_lot::Mutex<Option<I>>);

impl<I> Loaded<I> {
    /// The loaded index, once.
    pub fn take(&self) -> Result<I> {
        self.0
            .lock()
            .take()
            .ok_or_else(|| invalid("this loaded index was already adopted"))
    }
}

/// Loads an index on a file task thread; resolves with an opaque [`Loaded`] handle.
pub fn spawn_load<'env, I: Send + 'static>(
    env: &'env Env,
    load: impl FnOnce() -> vecdex::Result<I> + Send + 'static,
) -> Result<Object<'env>> {
    tasks::spawn_file(env, load, |_, index| {
        Ok(napi::bindgen_prelude::External::new(Loaded(
            parking_lot::Mutex::new(Some(index)),
        )))
    })
}

/// The lifecycle and keyed reads of every index class, over its `handle: Handle<_>` field (the
/// index implementing the core's [`vecdex::Index`]): size and memory figures, `contains`,
/// `get`, `keys`, an idempotent `close` and the finalizer that hands memory back to V8.
/// napi-rs classes cannot share methods through a trait or a generic, so each method family
/// is a macro over the one core contract.
macro_rules! keyed_index_methods {
    ($class:ident) => {
        #[napi]
        impl $class {
            #[napi(getter)]
            pub fn size(&self) -> $crate::error::Result<f64> {
                self.handle.size()
            }

            #[napi(getter)]
            pub fn memory_bytes(&self) -> $crate::error::Result<f64> {
                self.handle.memory_bytes()
            }

            /// Bytes this index has reported to V8 as external memory (0 once closed).
            #[napi(getter)]
            pub fn reported_external_bytes(&self) -> f64 {
                self.handle.reported_external_bytes()
            }

            #[napi(getter)]
            pub fn closed(&self) -> bool {
                self.handle.is_closed()
            }

            #[napi]
            pub fn contains(
                &self,
                key: napi::bindgen_prelude::BigInt,
            ) -> $crate::error::Result<bool> {
                let key = $crate::convert::key(&key)?;
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| {
                    Ok(vecdex::Index::contains(
                        &*shared.index.read_recursive(),
                        key,
                    ))
                })
            }

            /// The stored vector of a key (normalised, for cosine), or null; for a multi-vector
            /// index, the document's tokens (row-major).
            #[napi]
            pub fn get(
                &self,
                key: napi::bindgen_prelude::BigInt,
            ) -> $crate::error::Result<Option<napi::bindgen_prelude::Float32Array>> {
                let key = $crate::convert::key(&key)?;
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| {
                    let index = shared.index.read_recursive();
                    Ok(vecdex::Index::vector(&*index, key)?
                        .map(napi::bindgen_prelude::Float32Array::new))
                })
            }

            /// Every key, in storage order.
            #[napi]
            pub fn keys(&self) -> $crate::error::Result<napi::bindgen_prelude::BigUint64Array> {
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| {
                    let index = shared.index.read_recursive();
                    Ok(napi::bindgen_prelude::BigUint64Array::new(
                        vecdex::Index::key_list(&*index),
                    ))
                })
            }

            /// Releases the index. Idempotent; in-flight tasks finish on their own reference.
            #[napi]
            pub fn close(&mut self, env: napi::Env) -> $crate::error::Result<()> {
                self.handle.close(&env)
            }
        }

        impl napi::bindgen_prelude::ObjectFinalize for $class {
            fn finalize(self, env: napi::Env) -> napi::Result<()> {
                self.handle.release_memory(&env)
            }
        }
    };
}
pub(crate) use keyed_index_methods;

/// Saving to a file or a buffer, over a `handle: Handle<_>` whose index is [`vecdex::Index`].
macro_rules! save_methods {
    ($class:ident) => {
        #[napi]
        impl $class {
            /// Saves the index to a file atomically (temporary file, fsync, rename, folder
            /// fsync): a failed or killed save leaves the previous file intact.
            #[napi]
            pub fn save_sync(&self, path: String) -> $crate::error::Result<()> {
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| {
                    let index = shared.index.read_recursive();
                    vecdex::Persistent::save_to(&*index, std::path::Path::new(&path))
                })
            }

            /// Async twin of `saveSync`: saves what every write called before it left.
            #[napi(ts_return_type = "Promise<void>")]
            pub fn save<'env>(
                &self,
                env: &'env napi::Env,
                path: String,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                self.handle.spawn_read_file(
                    env,
                    move |index| vecdex::Persistent::save_to(index, std::path::Path::new(&path)),
                    |_, ()| Ok(()),
                )
            }
        }
        $crate::handle::save_methods!(@image $class);
    };
    // A collection encodes its file under the read lock (it builds the section buffers anyway)
    // and writes it after the lock is released: a slow disk then delays no write, and no read
    // queued behind a write.
    ($class:ident, snapshot) => {
        #[napi]
        impl $class {
            /// Saves the collection to a file atomically (temporary file, fsync, rename, folder
            /// fsync): a failed or killed save leaves the previous file intact.
            #[napi]
            pub fn save_sync(&self, path: String) -> $crate::error::Result<()> {
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| {
                    let snapshot = shared.index.read_recursive().snapshot()?;
                    snapshot.save(std::path::Path::new(&path))
                })
            }

            /// Async twin of `saveSync`: saves what every write called before it left.
            #[napi(ts_return_type = "Promise<void>")]
            pub fn save<'env>(
                &self,
                env: &'env napi::Env,
                path: String,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                self.handle.spawn_read_then_file(
                    env,
                    |index| index.snapshot(),
                    move |snapshot| snapshot.save(std::path::Path::new(&path)),
                    |_, ()| Ok(()),
                )
            }
        }
        $crate::handle::save_methods!(@image $class);
    };
    (@image $class:ident) => {
        #[napi]
        impl $class {
            /// The index as one file image (what `saveSync` writes), in a Buffer.
            #[napi]
            pub fn to_buffer_sync(&self) -> $crate::error::Result<napi::bindgen_prelude::Buffer> {
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| vecdex::Persistent::image(&*shared.index.read_recursive()))
                    .map(napi::bindgen_prelude::Buffer::from)
            }

            /// Async twin of `toBufferSync`.
            #[napi(ts_return_type = "Promise<Buffer>")]
            pub fn to_buffer<'env>(
                &self,
                env: &'env napi::Env,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                self.handle.spawn_read(
                    env,
                    |index| vecdex::Persistent::image(index),
                    |_, bytes| Ok(napi::bindgen_prelude::Buffer::from(bytes)),
                )
            }
        }
    };
}
pub(crate) use save_methods;

/// The JS methods the single-vector index classes share, over their `handle: Handle<_>` and
/// `config` (with `dim` and `metric`) fields, for indexes implementing [`vecdex::VectorIndex`].
/// `$add` and `$remove` are the async write paths: `fn(&Shared<_>, &[u64], &[f32], &StopFlag)
/// -> vecdex::Result<()>` and `fn(&Shared<_>, &[u64]) -> vecdex::Result<u32>`.
macro_rules! common_index_methods {
    ($class:ident, add: $add:path, remove: $remove:path) => {
        $crate::handle::keyed_index_methods!($class);
        $crate::handle::save_methods!($class);

        #[napi]
        impl $class {
            /// Adds vectors (row-major) under keys, replacing the vectors of keys already present.
            #[napi]
            pub fn add_sync(
                &self,
                env: napi::Env,
                keys: napi::bindgen_prelude::BigUint64ArraySlice,
                vectors: napi::bindgen_prelude::Float32ArraySlice,
            ) -> $crate::error::Result<()> {
                self.handle.write_sync(&env, |shared| {
                    shared.write(|index| {
                        vecdex::VectorIndex::add_rows(
                            index,
                            &keys,
                            &vectors,
                            &vecdex::StopFlag::never(),
                        )
                    })
                })
            }

            /// Async twin of `addSync`: inputs are copied before the work is queued; reads and
            /// searches go on meanwhile.
            #[napi(ts_return_type = "Promise<void>")]
            pub fn add<'env>(
                &self,
                env: &'env napi::Env,
                keys: napi::bindgen_prelude::BigUint64ArraySlice,
                vectors: napi::bindgen_prelude::Float32ArraySlice,
                abort: Option<&$crate::abort::NativeAbortHandle>,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                let (keys, vectors) = (
                    $crate::handle::copied(&keys, "keys")?,
                    $crate::handle::copied(&vectors, "vectors")?,
                );
                let stop = $crate::abort::flag(abort);
                self.handle
                    .spawn_write(env, move |shared| $add(shared, &keys, &vectors, &stop))
            }

            /// Removes keys; returns how many were present.
            #[napi]
            pub fn remove_sync(
                &self,
                env: napi::Env,
                keys: napi::bindgen_prelude::BigUint64ArraySlice,
            ) -> $crate::error::Result<u32> {
                self.handle
                    .write_sync(&env, |shared| $remove(shared, &keys))
            }

            /// Async twin of `removeSync`.
            #[napi(ts_return_type = "Promise<number>")]
            pub fn remove<'env>(
                &self,
                env: &'env napi::Env,
                keys: napi::bindgen_prelude::BigUint64ArraySlice,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                let keys = $crate::handle::copied(&keys, "keys")?;
                self.handle
                    .spawn_write(env, move |shared| $remove(shared, &keys))
            }

            /// Trains the compressed search form on a sample (row-major vectors) and
            /// re-encodes every stored vector. `queries`, a sample of the expected queries,
            /// makes a PCA reduction learn LeanVec-OOD's projections instead.
            #[napi]
            pub fn train_sync(
                &self,
                env: napi::Env,
                sample: napi::bindgen_prelude::Float32ArraySlice,
                queries: Option<napi::bindgen_prelude::Float32ArraySlice>,
            ) -> $crate::error::Result<()> {
                self.handle.write_sync(&env, |shared| {
                    shared.train(&sample, queries.as_deref(), &vecdex::StopFlag::never())
                })
            }

            /// Async twin of `trainSync` (the sample is copied first). Reads go on with the
            /// old model while the new one is learnt and the stored vectors encoded with it;
            /// then both are swapped in.
            #[napi(ts_return_type = "Promise<void>")]
            pub fn train<'env>(
                &self,
                env: &'env napi::Env,
                sample: napi::bindgen_prelude::Float32ArraySlice,
                queries: Option<napi::bindgen_prelude::Float32ArraySlice>,
                abort: Option<&$crate::abort::NativeAbortHandle>,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                let sample = $crate::handle::copied(&sample, "sample")?;
                let queries = queries
                    .map(|q| $crate::handle::copied(&q, "queries"))
                    .transpose()?;
                let stop = $crate::abort::flag(abort);
                self.handle.spawn_write(env, move |shared| {
                    shared.train(&sample, queries.as_deref(), &stop)
                })
            }

            /// Whether searches can run (an uncompressed index always can).
            #[napi(getter)]
            pub fn is_trained(&self) -> $crate::error::Result<bool> {
                let shared = self.handle.shared()?;
                Ok(vecdex::Index::is_trained(&*shared.index.read_recursive()))
            }

            /// Sizes of the compressed form and of the full vectors kept for rescoring.
            #[napi]
            pub fn compression_stats(
                &self,
            ) -> $crate::error::Result<$crate::compression::NativeCompressionStats> {
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| {
                    Ok(vecdex::Index::compression_stats(&*shared.index.read_recursive()).into())
                })
            }

            /// Bytes in memory by part; they add up to `memoryBytes`.
            #[napi]
            pub fn memory_parts(
                &self,
            ) -> $crate::error::Result<$crate::compression::NativeMemoryParts> {
                let shared = self.handle.shared()?;
                $crate::error::guarded(|| {
                    Ok(vecdex::VectorIndex::memory_parts(&*shared.index.read_recursive()).into())
                })
            }

            #[napi(getter)]
            pub fn dim(&self) -> $crate::error::Result<u32> {
                self.handle.shared()?;
                Ok(self.config.dim as u32)
            }

            #[napi(getter)]
            pub fn metric(&self) -> $crate::error::Result<String> {
                self.handle.shared()?;
                Ok(self.config.metric.name().to_string())
            }
        }
    };
}
pub(crate) use common_index_methods;

/// The static loaders of a persisted index class `$class` over `$index`; the class has a
/// `fn wrap(env: &Env, index: $index) -> Result<Self>`. `$loaded` and `$adopt_args` spell
/// the loaded handle as TypeScript (`ExternalObject<'Loaded…'>`, a tag per class), so that
/// index.d.ts names no Rust type.
macro_rules! loader_methods {
    ($class:ident, $index:ty, $loaded:literal, $adopt_args:literal) => {
        #[napi]
        impl $class {
            /// Loads an index saved by `save` / `saveSync`, checking the whole file first
            /// (ERR_CORRUPT_FILE, ERR_UNSUPPORTED_FORMAT, ERR_IO).
            #[napi(factory)]
            pub fn load_sync(env: napi::Env, path: String) -> $crate::error::Result<Self> {
                let index = $crate::error::guarded(|| {
                    <$index as vecdex::Persistent>::load_from(std::path::Path::new(&path))
                })?;
                Self::wrap(&env, index)
            }

            /// Rebuilds an index from a `toBuffer` image, checking it whole first.
            #[napi(factory)]
            pub fn from_buffer_sync(
                env: napi::Env,
                buffer: napi::bindgen_prelude::Uint8ArraySlice,
            ) -> Result<Self> {
                let index =
                    $crate::error::guarded(|| <$index as vecdex::Persistent>::from_image(&buffer))?;
                Self::wrap(&env, index)
            }

            /// Async twin of `loadSync`: resolves with a handle for `adoptLoaded`.
            #[napi(ts_return_type = $loaded)]
            pub fn load_loaded<'env>(
                env: &'env napi::Env,
                path: String,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                $crate::handle::spawn_load(env, move || {
                    <$index as vecdex::Persistent>::load_from(std::path::Path::new(&path))
                })
            }

            /// Async twin of `fromBufferSync` (the buffer is copied first).
            #[napi(ts_return_type = $loaded)]
            pub fn from_buffer_loaded<'env>(
                env: &'env napi::Env,
                buffer: napi::bindgen_prelude::Uint8ArraySlice,
            ) -> $crate::error::Result<napi::bindgen_prelude::Object<'env>> {
                let bytes = $crate::handle::copied(&buffer, "buffer")?;
                $crate::handle::spawn_load(env, move || {
                    <$index as vecdex::Persistent>::from_image(&bytes)
                })
            }

            /// The index of a handle from `loadLoaded` / `fromBufferLoaded`, as an instance.
            #[napi(factory, ts_args_type = $adopt_args)]
            pub fn adopt_loaded(
                env: napi::Env,
                loaded: &napi::bindgen_prelude::External<$crate::handle::Loaded<$index>>,
            ) -> $crate::error::Result<Self> {
                Self::wrap(&env, loaded.take()?)
            }
        }
    };
}
pub(crate) use loader_methods;

/// `compact` and `compactSync` of a graph index class, over its `handle: Handle<_>` (the index
/// implementing [`vecdex::Compactable`]).
macro_rules! compact_methods {
    ($class:ident) => {
        #[napi]
        impl $class {
            /// Relinks the graph around removed entries, so no link leads to one, and frees their
            /// slots for later adds; returns how many were freed.
            #[napi]
            pub fn compact_sync(&self, env: napi::Env) -> Result<u32> {
                self.handle
                    .write_sync(&env, |shared| shared.compact(&vecdex::StopFlag::never()))
            }

            /// Async twin of `compactSync`: the graph is relinked beside searches; only
            /// freeing the slots takes the write lock.
            #[napi(ts_return_type = "Promise<number>")]
            pub fn compact<'env>(
                &self,
                env: &'env napi::Env,
                abort: Option<&$crate::abort::NativeAbortHandle>,
            ) -> Result<napi::bindgen_prelude::Object<'env>> {
                let stop = $crate::abort::flag(abort);
                self.handle
                    .spawn_write(env, move |shared| shared.compact(&stop))
            }
        }
    };
}
pub(crate) use compact_methods;

pub struct Shared<I> {
    pub index: RwLock<I>,
    /// Call order of writes, and of async searches relative to them.
    pub order: Arc<WriteOrder>,
    /// Vectors stored, updated under the write lock.
    len: AtomicU64,
    /// Bytes held, updated under the write lock.
    memory: AtomicU64,
}

impl<I: Persistent> Shared<I> {
    pub fn refresh_stats(&self, index: &I) {
        self.len.store(index.len() as u64, Ordering::Relaxed);
        self.memory
            .store(index.memory_bytes() as u64, Ordering::Relaxed);
    }

    /// Runs `change` under the write lock, then refreshes the size and memory figures.
    pub fn write<T>(&self, change: impl FnOnce(&mut I) -> vecdex::Result<T>) -> vecdex::Result<T> {
        let mut index = self.index.write();
        let result = change(&mut index);
        self.refresh_stats(&index);
        result
    }

    /// Compacts in two phases: the graph is relinked under the read lock (searches go on),
    /// the slots freed under the write lock.
    pub fn compact(&self, stop: &vecdex::StopFlag) -> vecdex::Result<u32>
    where
        I: vecdex::Compactable,
    {
        let relinked = self.index.read().relink_removed(stop)?;
        self.write(|index| Ok(index.release_removed(relinked) as u32))
    }

    /// Compacts first when enough entries were removed (as an add does before it prepares).
    pub fn compact_if_due(&self, stop: &vecdex::StopFlag) -> vecdex::Result<()>
    where
        I: vecdex::Compactable,
    {
        if self.index.read().should_compact() {
            self.compact(stop)?;
        }
        Ok(())
    }

    /// Trains in two steps: the model is learnt and the stored vectors encoded with it under
    /// the read lock (k-means or PCA can take seconds: searches go on), then both are swapped
    /// in under the write lock. The caller holds its write-order ticket throughout, so no other
    /// write comes in between (and the encoded codes stay current). `stop` is checked before
    /// the model is learnt and before it is swapped in: an abort leaves the old model (the
    /// learning itself, k-means or PCA, does not poll it).
    pub fn train(
        &self,
        sample: &[f32],
        queries: Option<&[f32]>,
        stop: &vecdex::StopFlag,
    ) -> vecdex::Result<()>
    where
        I: VectorIndex,
    {
        stop.check()?;
        let trained = self.index.read_recursive().fit(sample, queries)?;
        stop.check()?;
        self.write(|index| index.install_training(trained))
    }
}

/// The state behind one JS index object.
pub struct Handle<I> {
    inner: Option<Arc<Shared<I>>>,
    /// Bytes currently reported to V8 as external memory.
    reported: Arc<AtomicI64>,
    /// Set by `close()`: async calls finishing later must not report memory again.
    closed: Arc<AtomicBool>,
}

impl<I: Persistent> Handle<I> {
    pub fn new(env: &Env, index: I) -> Result<Self> {
        let shared = Shared {
            order: Arc::new(WriteOrder::default()),
            len: AtomicU64::new(index.len() as u64),
            memory: AtomicU64::new(index.memory_bytes() as u64),
            index: RwLock::new(index),
        };
        let handle = Handle {
            inner: Some(Arc::new(shared)),
            reported: Arc::new(AtomicI64::new(0)),
            closed: Arc::new(AtomicBool::new(false)),
        };
        handle.report_memory(env)?;
        Ok(handle)
    }

    pub fn shared(&self) -> Result<&Arc<Shared<I>>> {
        self.inner.as_ref().ok_or_else(|| to_napi(Error::Closed))
    }

    pub fn size(&self) -> Result<f64> {
        Ok(self.shared()?.len.load(Ordering::Relaxed) as f64)
    }

    pub fn memory_bytes(&self) -> Result<f64> {
        Ok(self.shared()?.memory.load(Ordering::Relaxed) as f64)
    }

    pub fn reported_external_bytes(&self) -> f64 {
        self.reported.load(Ordering::Relaxed) as f64
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_none()
    }

    /// Tells V8 how much native memory the index holds now.
    pub fn report_memory(&self, env: &Env) -> Result<()> {
        match &self.inner {
            Some(shared) => report_memory(env, shared, &self.reported, &self.closed),
            None => Ok(()),
        }
    }

    /// A blocking write, after every write called before it.
    pub fn write_sync<T>(
        &self,
        env: &Env,
        write: impl FnOnce(&Shared<I>) -> vecdex::Result<T>,
    ) -> Result<T> {
        let shared = self.shared()?;
        let ticket = shared.order.ticket();
        ticket.wait_turn();
        let value = crate::error::guarded(|| write(shared))?;
        drop(ticket);
        self.report_memory(env)?;
        Ok(value)
    }

    /// Runs an async write on the task threads in call order (its ticket is taken now, on the
    /// JS thread), then reports the index's memory to V8 and resolves with the write's value.
    pub fn spawn_write<'env, T>(
        &self,
        env: &'env Env,
        write: impl FnOnce(&Shared<I>) -> vecdex::Result<T> + Send + 'static,
    ) -> Result<Object<'env>>
    where
        T: ToNapiValue + Send + 'static,
    {
        let shared = self.shared()?.clone();
        let (reported, closed) = (self.reported.clone(), self.closed.clone());
        let for_report = shared.clone();
        let ticket = shared.order.ticket();
        tasks::spawn(
            env,
            move || {
                ticket.wait_turn();
                write(&shared)
            },
            move |env, value| report_memory(&env, &for_report, &reported, &closed).map(|()| value),
        )
    }

    /// Runs an async read on the task threads once every write called before it is done (as
    /// awaiting them would), and resolves with `to_js` of its value.
    pub fn spawn_read<'env, T, D>(
        &self,
        env: &'env Env,
        read: impl FnOnce(&I) -> vecdex::Result<T> + Send + 'static,
        to_js: impl FnOnce(Env, T) -> Result<D> + Send + 'static,
    ) -> Result<Object<'env>>
    where
        T: Send + 'static,
        D: ToNapiValue + 'static,
    {
        tasks::spawn(env, self.read_after_writes(read)?, to_js)
    }

    /// `read` as task work: it waits for every write called before now, then reads under the
    /// read lock.
    fn read_after_writes<T>(
        &self,
        read: impl FnOnce(&I) -> vecdex::Result<T> + Send + 'static,
    ) -> Result<impl FnOnce() -> vecdex::Result<T> + Send + 'static> {
        let shared = self.shared()?.clone();
        let after_writes = shared.order.mark();
        Ok(move || {
            shared.order.wait_for(after_writes);
            let index = shared.index.read();
            read(&index)
        })
    }

    /// [`spawn_read`](Self::spawn_read) on the file task threads, for reads that write a file
    /// (a save): a file system that keeps it waiting holds up no search or write.
    pub fn spawn_read_file<'env, T, D>(
        &self,
        env: &'env Env,
        read: impl FnOnce(&I) -> vecdex::Result<T> + Send + 'static,
        to_js: impl FnOnce(Env, T) -> Result<D> + Send + 'static,
    ) -> Result<Object<'env>>
    where
        T: Send + 'static,
        D: ToNapiValue + 'static,
    {
        tasks::spawn_file(env, self.read_after_writes(read)?, to_js)
    }

    /// [`spawn_read_file`](Self::spawn_read_file) in two steps: `read` under the read lock, then
    /// `then` on its result after the lock is released (a save that encodes under the lock and
    /// writes the file without it).
    pub fn spawn_read_then_file<'env, T, U, D>(
        &self,
        env: &'env Env,
        read: impl FnOnce(&I) -> vecdex::Result<T> + Send + 'static,
        then: impl FnOnce(T) -> vecdex::Result<U> + Send + 'static,
        to_js: impl FnOnce(Env, U) -> Result<D> + Send + 'static,
    ) -> Result<Object<'env>>
    where
        T: Send + 'static,
        U: Send + 'static,
        D: ToNapiValue + 'static,
    {
        let read = self.read_after_writes(read)?;
        tasks::spawn_file(env, move || then(read()?), to_js)
    }

    /// An async search on the task threads after earlier writes; the filter is copied now (the
    /// queries are the caller's to copy into `search`), and the results become JS typed arrays.
    pub fn spawn_search<'env>(
        &self,
        env: &'env Env,
        filter: Option<&[u64]>,
        prepared: Option<&NativeKeyFilter>,
        abort: Option<&crate::abort::NativeAbortHandle>,
        search: impl FnOnce(&I, Option<&KeyFilter>, &vecdex::StopFlag) -> vecdex::Result<SearchResults>
            + Send
            + 'static,
    ) -> Result<Object<'env>> {
        let filter = try_filter_of(filter, prepared)?;
        let stop = crate::abort::flag(abort);
        self.spawn_read(
            env,
            move |index| {
                // Aborted while it waited for earlier writes: stop before any work (a search
                // of one query may otherwise finish without reaching a check).
                stop.check()?;
                search(index, filter.as_deref(), &stop)
            },
            |_, results| Ok(to_js_results(results)),
        )
    }

    /// Releases the index. Idempotent; in-flight tasks finish on their own reference.
    pub fn close(&mut self, env: &Env) -> Result<()> {
        if self.inner.take().is_some() {
            self.closed.store(true, Ordering::Relaxed);
            self.release_memory(env)?;
        }
        Ok(())
    }

    /// Hands back the external memory reported to V8 (close or garbage collection).
    pub fn release_memory(&self, env: &Env) -> napi::Result<()> {
        let before = self.reported.swap(0, Ordering::Relaxed);
        if before != 0 {
            env.adjust_external_memory(-before)?;
        }
        Ok(())
    }
}

/// Reports the index's memory now (no lock: reads the atomic), unless the handle was closed
/// meanwhile (its memory was handed back then).
fn report_memory<I>(
    env: &Env,
    shared: &Shared<I>,
    reported: &AtomicI64,
    closed: &AtomicBool,
) -> Result<()> {
    if closed.load(Ordering::Relaxed) {
        return Ok(());
    }
    let now = shared.memory.load(Ordering::Relaxed) as i64;
    let before = reported.swap(now, Ordering::Relaxed);
    if now != before {
        env.adjust_external_memory(now - before)?;
    }
    Ok(())
}

/// A sync search through a weak handle from `searchHandle()` (fails with ERR_CLOSED once the
/// index is closed), with its results written into `out` (layout in [`write_results`]).
pub fn search_weak_into<I>(
    handle: &Weak<Shared<I>>,
    filter: Option<&[u64]>,
    prepared: Option<&NativeKeyFilter>,
    out: Uint8ArraySlice,
    offset: u32,
    capacity: u32,
    search: impl FnOnce(&I, Option<&KeyFilter>) -> vecdex::Result<SearchResults>,
) -> Result<u32> {
    let shared = handle.upgrade().ok_or_else(|| to_napi(Error::Closed))?;
    let filter = try_filter_of(filter, prepared)?;
    let results =
        crate::error::guarded(|| search(&shared.index.read_recursive(), filter.as_deref()))?;
    write_results(&results, out, offset, capacity)
}

/// The most result cells (queries × columns) one search call may return, in every index class
/// and in both twins: `searchSync` views its results in one pooled buffer of 12 bytes a cell,
/// which must stay well within a JS typed array (4 GiB in Node 20), and the async twin refuses
/// the same calls with the same error rather than allocating gigabytes. Exported to JS.
#[napi]
pub const MAX_RESULT_CELLS: u32 = 1 << 28;

/// Refuses a search whose results would exceed [`MAX_RESULT_CELLS`], before anything is
/// allocated. Results have `min(k, size)` columns (what the index can return, not what was
/// asked for), one row per query of `dim` values.
pub fn check_result_cells(
    query_values: usize,
    dim: usize,
    k: usize,
    size: usize,
) -> vecdex::Result<()> {
    let rows = query_values / dim.max(1);
    let cells = rows.saturating_mul(k.min(size));
    if cells > MAX_RESULT_CELLS as usize {
        return Err(Error::invalid(format!(
            "{rows} queries × {} results each is {cells} results, more than one search returns \
             ({MAX_RESULT_CELLS}); search fewer queries per call or ask for a smaller k",
            k.min(size)
        )));
    }
    Ok(())
}

/// Results of a batch search, row-major: row `i` is query `i`, `k` columns, best first.
#[napi(object)]
pub struct NativeSearchResults {
    /// Columns per row: min(k, index size).
    pub k: u32,
    pub keys: BigUint64Array,
    pub distances: Float32Array,
    /// Valid hits per row (fewer than `k` when a filter admits fewer vectors).
    pub counts: Uint32Array,
}

pub fn to_js_results(results: SearchResults) -> NativeSearchResults {
    NativeSearchResults {
        k: results.k as u32,
        keys: BigUint64Array::new(results.keys),
        distances: Float32Array::new(results.distances),
        counts: Uint32Array::new(results.counts),
    }
}

/// Writes results into `out` at byte `offset` (a multiple of 8), laid out as `capacity` u64
/// keys, then `capacity` f32 distances, then one u32 count per query, in native byte order
/// (what JS typed-array views of the same buffer read). Returns the row stride `k`. Results with
/// more cells than `capacity` fail with the internal code
/// [`RESULTS_DID_NOT_FIT`](crate::error::RESULTS_DID_NOT_FIT): the TS layer sizes `out` from
/// the index's size, which an async add may have grown since, and retries once with room.
pub fn write_results(
    results: &SearchResults,
    mut out: Uint8ArraySlice,
    offset: u32,
    capacity: u32,
) -> Result<u32> {
    let (offset, capacity) = (offset as usize, capacity as usize);
    let rows = results.counts.len();
    // SAFETY: this runs on the JS thread for the whole call, so no JS code can touch the
    // buffer while we write (the TS layer copies shared or aliasing inputs first); every write
    // below is bounds-checked by slice indexing.
    let out = unsafe { out.as_mut() };
    let needed = offset + capacity * 12 + rows * 4;
    if !offset.is_multiple_of(8) || out.len() < needed {
        return Err(invalid(format!(
            "search output: {} bytes from offset {offset} cannot hold {capacity} results and \
             {rows} counts at an 8-byte boundary",
            out.len()
        )));
    }
    if results.keys.len() > capacity {
        return Err(NativeError::results_did_not_fit(format!(
            "{} results do not fit the {capacity} the output was sized for",
            results.keys.len()
        )));
    }
    let (key_bytes, rest) = out[offset..needed].split_at_mut(capacity * 8);
    let (distance_bytes, count_bytes) = rest.split_at_mut(capacity * 4);
    for (chunk, key) in key_bytes.chunks_exact_mut(8).zip(&results.keys) {
        chunk.copy_from_slice(&key.to_ne_bytes());
    }
    for (chunk, d) in distance_bytes.chunks_exact_mut(4).zip(&results.distances) {
        chunk.copy_from_slice(&d.to_ne_bytes());
    }
    for (chunk, c) in count_bytes.chunks_exact_mut(4).zip(&results.counts) {
        chunk.copy_from_slice(&c.to_ne_bytes());
    }
    Ok(results.k as u32)
}

/// An allow-list built once and passed to many searches: each index it is used with caches the
/// slots it admits until the index's keys change, so a large list costs one lookup per key
/// once instead of once per search. `close()` frees the list and its cached slot sets at once
/// (searches already running keep their own reference); later use is ERR_CLOSED.
#[napi]
pub struct NativeKeyFilter {
    inner: Option<Arc<KeyFilter>>,
}

#[napi]
impl NativeKeyFilter {
    #[napi(constructor)]
    pub fn new(keys: BigUint64ArraySlice) -> Result<Self> {
        Ok(NativeKeyFilter {
            inner: Some(Arc::new(KeyFilter::new(copied(&keys, "filter keys")?))),
        })
    }

    fn filter(&self) -> Result<&Arc<KeyFilter>> {
        self.inner
            .as_ref()
            .ok_or_else(|| NativeError::closed("key filter"))
    }

    /// Keys in the list (as given, duplicates included).
    #[napi(getter)]
    pub fn size(&self) -> Result<f64> {
        Ok(self.filter()?.key_count() as f64)
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_none()
    }

    /// Frees the list. Idempotent.
    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}

/// The filter of a search: a prepared one, or a list of keys given with the call (copied; a
/// copy that does not fit in memory is ERR_OUT_OF_MEMORY), or none.
pub fn try_filter_of(
    keys: Option<&[u64]>,
    prepared: Option<&NativeKeyFilter>,
) -> Result<Option<Arc<KeyFilter>>> {
    Ok(match (prepared, keys) {
        (Some(prepared), _) => Some(prepared.filter()?.clone()),
        (None, Some(keys)) => Some(Arc::new(KeyFilter::new(copied(keys, "filter keys")?))),
        (None, None) => None,
    })
}

/// A JS array copied before work is queued (async twins) or kept (filters); a copy that does
/// not fit in memory is ERR_OUT_OF_MEMORY, thrown at the call, instead of an abort.
pub fn copied<T: Copy>(values: &[T], what: &str) -> Result<Vec<T>> {
    crate::error::guarded(|| vecdex::validate::try_copy(values, what))
}
