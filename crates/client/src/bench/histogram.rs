//! A latency histogram in the manner of HdrHistogram: exact below 128 µs,
//! then 64 linear sub-buckets per power of two, so any recorded value is
//! reported within 1/64 (1.6 %) of itself, in a fixed 3,776-bucket array
//! whatever the range (1 µs to u64::MAX µs).
//!
//! In: latencies in microseconds. Out: count, min, max, mean and the value
//! at any quantile (the highest value of the bucket holding that rank).

const SUB_BITS: u32 = 6;
const SUB_COUNT: u64 = 1 << SUB_BITS;
const EXACT_BELOW: u64 = 2 * SUB_COUNT;
const BUCKETS: usize = (EXACT_BELOW + (63 - SUB_BITS as u64) * SUB_COUNT) as usize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], count: 0, sum: 0, min: u64::MAX, max: 0 }
    }
}

fn index_of(value: u64) -> usize {
    if value < EXACT_BELOW {
        return value as usize;
    }
    let msb = 63 - u64::from(value.leading_zeros());
    let shift = msb - u64::from(SUB_BITS);
    let top = value >> shift;
    (EXACT_BELOW + (msb - u64::from(SUB_BITS) - 1) * SUB_COUNT + (top - SUB_COUNT)) as usize
}

/// The highest value that falls in bucket `index`.
fn highest_of(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT_BELOW {
        return index;
    }
    let past = index - EXACT_BELOW;
    let shift = past / SUB_COUNT + 1;
    let top = past % SUB_COUNT + SUB_COUNT;
    let low = top << shift;
    low.saturating_add((1u64 << shift) - 1)
}

impl Histogram {
    pub fn record(&mut self, value_us: u64) {
        self.counts[index_of(value_us)] += 1;
        self.count += 1;
        self.sum += u128::from(value_us);
        self.min = self.min.min(value_us);
        self.max = self.max.max(value_us);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }

    /// The value at quantile `q` in [0, 1]: the smallest recorded bucket
    /// that covers `ceil(q·count)` values, reported as its highest value
    /// (capped by the largest value recorded). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return highest_of(index).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut previous = None;
        for value in (0..5_000u64).chain([1 << 20, (1 << 20) + 1, u64::MAX / 3, u64::MAX]) {
            let index = index_of(value);
            assert!(index < BUCKETS, "{value} maps past the array");
            assert!(highest_of(index) >= value, "bucket {index} ends before {value}");
            if let Some((p, pi)) = previous {
                assert!(index >= pi, "{value} sorts before {p}");
            }
            previous = Some((value, index));
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_the_stated_precision() {
        let mut histogram = Histogram::default();
        // A skewed workload: many fast answers, a long tail.
        let mut values: Vec<u64> = (0..20_000u64).map(|i| 200 + (i * i) % 97_003).collect();
        values.extend((0..50).map(|i| 2_000_000 + i * 10_000));
        for &v in &values {
            histogram.record(v);
        }
        values.sort_unstable();
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let (got, want) = (histogram.quantile(q) as f64, exact(&values, q) as f64);
            assert!(got >= want && got <= want * (1.0 + 1.0 / 64.0), "q={q}: got {got}, exact {want}");
        }
        assert_eq!(histogram.quantile(1.0), *values.last().unwrap());
        assert_eq!(histogram.min(), values[0]);
    }

    #[test]
    fn small_values_are_exact_and_merging_adds_up() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        (1..=50).for_each(|v| a.record(v));
        (51..=100).for_each(|v| b.record(v));
        a.merge(&b);
        assert_eq!((a.count(), a.min(), a.max()), (100, 1, 100));
        assert_eq!((a.quantile(0.5), a.quantile(0.99), a.quantile(0.999)), (50, 99, 100));
        assert!((a.mean() - 50.5).abs() < 1e-9);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
