//! Neighbour selection by the paper's heuristic (Algorithm 4): take candidates nearest first,
//! and keep one only if it is closer to the base node than to every neighbour kept so far. This
//! spreads links across directions, which keeps clustered data connected.

use crate::scorer::Scorer;
use crate::search::Scored;

/// Selects up to `m` of `candidates` (sorted nearest first, distances to the base node) into
/// `out`. With `keep_pruned` (the paper's `keepPrunedConnections`), discarded candidates fill
/// the remaining places, nearest first, so the node keeps its full degree.
pub fn select_neighbors<S: Scorer + ?Sized>(
    scorer: &S,
    candidates: &[Scored],
    m: usize,
    keep_pruned: bool,
    out: &mut Vec<Scored>,
) {
    out.clear();
    let mut pruned: Vec<Scored> = Vec::new();
    for &candidate in candidates {
        if out.len() >= m {
            break;
        }
        let diverse = out
            .iter()
            .all(|kept| scorer.between(candidate.node, kept.node) > candidate.distance);
        if diverse {
            out.push(candidate);
        } else if keep_pruned {
            pruned.push(candidate);
        }
    }
    if keep_pruned {
        let room = m.saturating_sub(out.len());
        out.extend(pruned.into_iter().take(room));
    }
}
