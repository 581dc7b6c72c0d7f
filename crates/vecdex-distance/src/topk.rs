//! Bounded top-k selection: keeps the `k` smallest distances seen without sorting everything.
//! A max-heap of at most `k` entries; `threshold()` is the distance a candidate must beat, so
//! scans can reject most candidates with one comparison (or one SIMD compare for 16).

/// A candidate: distance and the caller's index (a slot number in an index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    pub distance: f32,
    pub index: u32,
}

impl Neighbor {
    /// Total order: by distance, then by index so ties resolve deterministically.
    fn worse_than(&self, other: &Neighbor) -> bool {
        self.distance > other.distance
            || (self.distance == other.distance && self.index > other.index)
    }
}

/// The `k` best (lowest-distance) candidates seen so far.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    heap: Vec<Neighbor>, // max-heap by `worse_than`: heap[0] is the worst kept
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k),
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// A candidate is kept only if its distance is below this (or equal, losing on index).
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap[0].distance
        }
    }

    /// Offers a candidate; NaN distances are dropped (a NaN at the root would never be replaced).
    #[inline]
    pub fn push(&mut self, distance: f32, index: u32) {
        if distance.is_nan() {
            return;
        }
        let candidate = Neighbor { distance, index };
        if self.heap.len() < self.k {
            self.heap.push(candidate);
            self.sift_up(self.heap.len() - 1);
        } else if self.k > 0 && self.heap[0].worse_than(&candidate) {
            self.heap[0] = candidate;
            self.sift_down(0);
        }
    }

    /// Adds every candidate of `other` (used to merge partial results of parallel scans).
    pub fn merge(&mut self, other: TopK) {
        for n in other.heap {
            self.push(n.distance, n.index);
        }
    }

    /// The kept candidates, best first.
    pub fn into_sorted(mut self) -> Vec<Neighbor> {
        self.heap.sort_by(|a, b| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.index.cmp(&b.index))
        });
        self.heap
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i].worse_than(&self.heap[parent]) {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (left, right) = (2 * i + 1, 2 * i + 2);
            let mut worst = i;
            if left < n && self.heap[left].worse_than(&self.heap[worst]) {
                worst = left;
            }
            if right < n && self.heap[right].worse_than(&self.heap[worst]) {
                worst = right;
            }
            if worst == i {
                break;
            }
            self.heap.swap(i, worst);
            i = worst;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_smallest_in_order() {
        let values = [5.0, 1.0, 9.0, 3.0, 3.0, 7.0, 0.5, 8.0];
        let mut top = TopK::new(3);
        for (i, v) in values.iter().enumerate() {
            top.push(*v, i as u32);
        }
        let got: Vec<_> = top
            .into_sorted()
            .iter()
            .map(|n| (n.distance, n.index))
            .collect();
        assert_eq!(got, vec![(0.5, 6), (1.0, 1), (3.0, 3)]);
    }

    #[test]
    fn k_zero_and_k_larger_than_input() {
        let mut none = TopK::new(0);
        none.push(1.0, 0);
        assert!(none.is_empty());
        let mut all = TopK::new(10);
        all.push(2.0, 1);
        all.push(1.0, 0);
        assert_eq!(all.into_sorted().len(), 2);
    }

    #[test]
    fn nan_is_never_kept() {
        let mut top = TopK::new(1);
        top.push(f32::NAN, 0);
        top.push(2.0, 1);
        top.push(1.0, 2);
        assert_eq!(
            top.into_sorted(),
            vec![Neighbor {
                distance: 1.0,
                index: 2
            }]
        );
    }

    #[test]
    fn merge_equals_single_pass() {
        let mut a = TopK::new(4);
        let mut b = TopK::new(4);
        let mut whole = TopK::new(4);
        for i in 0..50u32 {
            let d = ((i * 37) % 23) as f32;
            whole.push(d, i);
            if i % 2 == 0 {
                a.push(d, i)
            } else {
                b.push(d, i)
            }
        }
        a.merge(b);
        assert_eq!(a.into_sorted(), whole.into_sorted());
    }
}
