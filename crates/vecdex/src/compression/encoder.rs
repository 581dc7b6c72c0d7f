//! A trained search form: the reduction of a stored vector to the searched dimensions, then
//! its codec.

use vecdex_distance::Metric;
use vecdex_quant::{AnyCodec, LeanVec, Pca, PcaConfig};

#[derive(Debug, Clone)]
pub(super) enum Reducer {
    None,
    Prefix { dims: usize, normalize: bool },
    Pca(Pca),
    /// LeanVec-OOD: separate projections of queries and stored vectors (`pcaDimensions`
    /// trained with a query sample).
    LeanVec(LeanVec),
}

impl Reducer {
    /// The first `dims` dimensions, renormalised for cosine (whose stored vectors are unit).
    pub(super) fn prefix(dims: usize, metric: Metric) -> Self {
        Reducer::Prefix {
            dims,
            normalize: metric == Metric::Cosine,
        }
    }

    /// A PCA to `out_dim` dimensions for `metric`, trained or loaded (see [`Reduction::Pca`]).
    ///
    /// [`Reduction::Pca`]: super::Reduction::Pca
    pub(super) fn pca_config(out_dim: usize, metric: Metric) -> PcaConfig {
        PcaConfig {
            out_dim,
            centered: metric == Metric::L2sq,
        }
    }

    /// A query in the searched dimensions, written to `out`.
    fn apply_query(&self, query: &[f32], out: &mut [f32]) {
        match self {
            Reducer::LeanVec(lean) => lean.project_query(query, out),
            _ => self.apply(query, out),
        }
    }

    /// A stored vector in the searched dimensions, written to `out`.
    pub(super) fn apply(&self, vector: &[f32], out: &mut [f32]) {
        match self {
            Reducer::None => out.copy_from_slice(vector),
            Reducer::Prefix { dims, normalize } => {
                out.copy_from_slice(&vector[..*dims]);
                // A zero prefix stays zero: its scores are then the same for every query.
                if *normalize && out.iter().any(|x| *x != 0.0) {
                    crate::validate::normalize(out);
                }
            }
            Reducer::Pca(pca) => pca.project(vector, out),
            Reducer::LeanVec(lean) => lean.project_data(vector, out),
        }
    }
}

/// A trained search form: the reduction and the codec.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    pub(super) reducer: Reducer,
    pub(crate) codec: AnyCodec,
    pub(super) searched_dim: usize,
}

impl Encoder {
    pub(crate) fn code_size(&self) -> usize {
        self.codec.code_size()
    }

    /// A query reduced to the searched dimensions (into `scratch`).
    pub(crate) fn reduce_query<'s>(
        &self,
        query: &'s [f32],
        scratch: &'s mut Vec<f32>,
    ) -> &'s [f32] {
        if let Reducer::None = self.reducer {
            return query;
        }
        scratch.resize(self.searched_dim, 0.0);
        self.reducer.apply_query(query, scratch);
        scratch
    }

    pub(super) fn encode(&self, vector: &[f32], scratch: &mut Vec<f32>, code: &mut [u8]) {
        let reduced: &[f32] = if let Reducer::None = self.reducer {
            vector
        } else {
            scratch.resize(self.searched_dim, 0.0);
            self.reducer.apply(vector, scratch);
            scratch
        };
        self.codec.encode(reduced, code)
    }
}
