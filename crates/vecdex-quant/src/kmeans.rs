//! k-means (Lloyd's algorithm) with k-means++ initialisation (Arthur & Vassilvitskii, "k-means++:
//! The Advantages of Careful Seeding", SODA 2007). Seeded and deterministic whatever the thread
//! count: the assignment runs in parallel, and the per-chunk sums are added in chunk order.

use rayon::prelude::*;

/// Rows per parallel chunk; fixed so that sums do not depend on the thread count.
const CHUNK: usize = 1024;

/// A small seeded generator (SplitMix64; Steele, Lea & Flood, OOPSLA 2014).
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index and squared distance of the centroid nearest to `row`.
pub fn nearest(row: &[f32], centroids: &[f32], dim: usize) -> (usize, f32) {
    let mut best = (0, f32::INFINITY);
    for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
        let d = l2(row, centroid);
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

/// `k` centroids (row-major, `k × dim`) of the rows of `data`, after at most `iterations` Lloyd
/// steps. `k` must be between 1 and the number of rows.
pub fn kmeans(data: &[f32], dim: usize, k: usize, iterations: usize, seed: u64) -> Vec<f32> {
    let rows = data.len() / dim;
    assert!(k >= 1 && k <= rows, "k-means needs 1 ≤ k ≤ rows");
    let mut rng = SeededRng::new(seed);
    let mut centroids = plus_plus(data, dim, k, &mut rng);
    let mut assignment = vec![0usize; rows];
    for _ in 0..iterations {
        let changed: usize = data
            .par_chunks(CHUNK * dim)
            .zip(assignment.par_chunks_mut(CHUNK))
            .map(|(chunk, assigned)| {
                let mut changed = 0;
                for (row, a) in chunk.chunks_exact(dim).zip(assigned.iter_mut()) {
                    let (c, _) = nearest(row, &centroids, dim);
                    changed += usize::from(*a != c);
                    *a = c;
                }
                changed
            })
            .sum();
        // Sums per chunk in parallel, added in chunk order: the same bits on any thread count.
        let partial: Vec<(Vec<f64>, Vec<usize>)> = data
            .par_chunks(CHUNK * dim)
            .zip(assignment.par_chunks(CHUNK))
            .map(|(chunk, assigned)| {
                let mut sums = vec![0f64; k * dim];
                let mut counts = vec![0usize; k];
                for (row, &a) in chunk.chunks_exact(dim).zip(assigned) {
                    counts[a] += 1;
                    for (s, x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(row) {
                        *s += f64::from(*x);
                    }
                }
                (sums, counts)
            })
            .collect();
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (s, c) in partial {
            sums.iter_mut().zip(&s).for_each(|(a, b)| *a += b);
            counts.iter_mut().zip(&c).for_each(|(a, b)| *a += b);
        }
        for c in (0..k).filter(|&c| counts[c] > 0) {
            for (x, sum) in centroids[c * dim..(c + 1) * dim]
                .iter_mut()
                .zip(&sums[c * dim..(c + 1) * dim])
            {
                *x = (*sum / counts[c] as f64) as f32;
            }
        }
        // An empty cluster restarts at the row worst served by its centroid.
        let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
        if !empty.is_empty() {
            let mut errors: Vec<(f32, usize)> = data
                .chunks_exact(dim)
                .zip(&assignment)
                .enumerate()
                .map(|(i, (row, &a))| (l2(row, &centroids[a * dim..(a + 1) * dim]), i))
                .collect();
            errors.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            for (&c, &(_, row)) in empty.iter().zip(&errors) {
                let source = data[row * dim..(row + 1) * dim].to_vec();
                centroids[c * dim..(c + 1) * dim].copy_from_slice(&source);
                assignment[row] = c;
            }
            continue;
        }
        if changed == 0 {
            break;
        }
    }
    centroids
}

/// k-means++ seeding: each next centroid is a row drawn with probability proportional to its
/// squared distance to the nearest centroid so far.
fn plus_plus(data: &[f32], dim: usize, k: usize, rng: &mut SeededRng) -> Vec<f32> {
    let rows = data.len() / dim;
    let mut centroids = Vec::with_capacity(k * dim);
    let first = (rng.next_u64() % rows as u64) as usize;
    centroids.extend_from_slice(&data[first * dim..(first + 1) * dim]);
    let mut nearest_sq: Vec<f32> = data
        .chunks_exact(dim)
        .map(|row| l2(row, &centroids[..dim]))
        .collect();
    for _ in 1..k {
        let total: f64 = nearest_sq.iter().map(|&d| f64::from(d)).sum();
        let pick = if total > 0.0 {
            let mut target = rng.unit() * total;
            let mut chosen = rows - 1;
            for (i, &d) in nearest_sq.iter().enumerate() {
                target -= f64::from(d);
                if target < 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            (rng.next_u64() % rows as u64) as usize
        };
        let new = data[pick * dim..(pick + 1) * dim].to_vec();
        nearest_sq
            .par_iter_mut()
            .zip(data.par_chunks(dim))
            .for_each(|(d, row)| *d = d.min(l2(row, &new)));
        centroids.extend_from_slice(&new);
    }
    centroids
}
