//! Neighbour selection by the paper's heuristic (Algorithm 4): take candidates nearest first,
//! and keep one only if it is closer to the base node than to every neighbour kept so far. This
//! spreads links across directions, which keeps clustered data connected.
//!
//! Exact copies of the base node need a rule of their own. A copy `k` is exactly as far from
//! every candidate as the base is, so under the plain rule it prunes every later candidate and
//! the list shrinks to that one copy: with duplicated data, whole groups of nodes then link only
//! to each other and become islands no search reaches. Here a kept copy of the base prunes
//! only other copies (one link into a group of copies is enough to reach it), and pruned copies
//! never fill the list (`keep_pruned`) either.

use crate::scorer::Scorer;
use crate::search::Scored;

/// Selects up to `m` of `candidates` (sorted nearest first, distances to `base`) into `out`.
/// With `keep_pruned` (the paper's `keepPrunedConnections`), discarded candidates that are not
/// copies of `base` fill the remaining places, nearest first.
pub fn select_neighbors<S: Scorer + ?Sized>(
    scorer: &S,
    base: u32,
    candidates: &[Scored],
    m: usize,
    keep_pruned: bool,
    out: &mut Vec<Scored>,
) {
    out.clear();
    let mut pruned: Vec<Scored> = Vec::new();
    // Index in `out` of the kept copy of `base`, if any.
    let mut kept_copy: Option<usize> = None;
    for &candidate in candidates {
        if out.len() >= m {
            break;
        }
        let is_copy = scorer.same_vector(base, candidate.node);
        let diverse = if is_copy {
            kept_copy.is_none()
        } else {
            out.iter().enumerate().all(|(i, kept)| {
                Some(i) == kept_copy
                    || scorer.between(candidate.node, kept.node) > candidate.distance
            })
        };
        if diverse {
            if is_copy {
                kept_copy = Some(out.len());
            }
            out.push(candidate);
        } else if keep_pruned && !is_copy {
            pruned.push(candidate);
        }
    }
    if keep_pruned {
        let room = m.saturating_sub(out.len());
        out.extend(pruned.into_iter().take(room));
    }
}
