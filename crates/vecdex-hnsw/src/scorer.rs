//! How the graph gets distances without owning vectors.

/// Distances from one fixed query (a user's vector, or a stored node during construction) to
/// the graph's nodes. Lower is closer.
pub trait QueryDistance {
    fn distance(&self, node: u32) -> f32;

    /// Hint that `node` will be scored soon (e.g. prefetch its row); may do nothing.
    #[inline]
    fn prefetch(&self, _node: u32) {}
}

/// Distances between stored nodes, for construction and repair.
pub trait Scorer: Sync {
    /// A query anchored at a stored node.
    type NodeQuery<'s>: QueryDistance
    where
        Self: 's;

    fn node_query(&self, node: u32) -> Self::NodeQuery<'_>;

    /// Distance between two stored nodes.
    fn between(&self, a: u32, b: u32) -> f32;

    /// Whether two stored nodes hold the same vector. Neighbour selection keeps one link to a
    /// group of copies and lets none of them prune other candidates (see `heuristic`); a scorer
    /// that cannot tell says `false`, and copies are then treated like any close neighbour.
    #[inline]
    fn same_vector(&self, _a: u32, _b: u32) -> bool {
        false
    }
}
