//! A set of visited nodes that clears in O(1): each node holds the generation in which it was
//! last visited, and clearing starts a new generation (a full reset only when the counter wraps).

#[derive(Debug, Clone, Default)]
pub struct VisitedSet {
    marks: Vec<u16>,
    generation: u16,
}

impl VisitedSet {
    pub fn new(capacity: usize) -> Self {
        VisitedSet {
            marks: vec![0; capacity],
            generation: 1,
        }
    }

    /// Forgets every visit and makes room for node ids below `capacity`.
    pub fn clear(&mut self, capacity: usize) {
        if self.marks.len() < capacity {
            self.marks.resize(capacity, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `node`; true if it was not visited before. Ids past the capacity count as visited.
    #[inline]
    pub fn insert(&mut self, node: u32) -> bool {
        match self.marks.get_mut(node as usize) {
            Some(mark) if *mark != self.generation => {
                *mark = self.generation;
                true
            }
            _ => false,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.marks.capacity() * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_across_generation_wraparound() {
        let mut v = VisitedSet::new(4);
        for _ in 0..70_000 {
            v.clear(4);
            assert!(v.insert(2));
            assert!(!v.insert(2));
        }
        assert!(!v.insert(9), "out of range counts as visited");
    }
}
