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
}
