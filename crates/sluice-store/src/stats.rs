//! Lock-free counters and histograms, for the store's own figures and for whoever renders metrics
//! (the server's `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed-bucket histogram of non-negative values (Prometheus style: cumulative on export).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus +Inf.
    counts: Box<[AtomicU64]>,
    /// Sum of observations, in millionths of the unit (keeps it an integer).
    sum_micros: AtomicU64,
}

/// Bucket bounds for durations in seconds, from 100 µs to 10 s.
pub const SECONDS_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Bucket bounds for sizes (ops per commit).
pub const SIZE_BUCKETS: &[f64] =
    &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0];

impl Histogram {
    /// An empty histogram with the given bucket upper bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        let i = self.bounds.iter().position(|b| value <= *b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((value * 1e6) as u64, Ordering::Relaxed);
    }

    /// (upper bound, cumulative count) pairs ending with +Inf, the total count and the sum.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            buckets.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), cumulative));
        }
        (buckets, cumulative, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets() {
        let h = Histogram::new(&[1.0, 10.0]);
        h.observe(0.5);
        h.observe(5.0);
        h.observe(50.0);
        let (b, n, sum) = h.snapshot();
        assert_eq!(b, vec![(1.0, 1), (10.0, 2), (f64::INFINITY, 3)]);
        assert_eq!(n, 3);
        assert!((sum - 55.5).abs() < 1e-6);
    }
}
