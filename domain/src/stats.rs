//! Small statistics shared by the read side (statistics.md conventions).

/// The `q`-quantile of sorted values by linear interpolation between
/// closest ranks — numpy's default (type 7, statistics.md §6.3):
/// `h = (n − 1)q`, `v[⌊h⌋] + (h − ⌊h⌋)(v[⌊h⌋+1] − v[⌊h⌋])`. `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = q.clamp(0.0, 1.0) * last as f64;
    let (lo, hi) = (h.floor() as usize, (h.ceil() as usize).min(last));
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [50, 95]) = [3.0, 8.8]
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert!((quantile(&v, 0.95).unwrap() - 8.8).abs() < 1e-12);
        // numpy.median([5, 7]) = 6.0
        assert_eq!(quantile(&[5.0, 7.0], 0.5), Some(6.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
