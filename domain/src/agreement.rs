//! Inter-annotator and judge–human agreement (`specs/judging.md` §10):
//! Cohen's κ (unweighted, linear, quadratic), Fleiss' κ, Krippendorff's α
//! (nominal, ordinal, interval, ratio) with missing values, and the
//! calibration view of two raters (exact agreement, within ±1, Spearman ρ).
//! Pure functions; `None` where the statistic is undefined (no pairs, a
//! constant rater, no expected disagreement).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    Unweighted,
    Linear,
    Quadratic,
}

/// Cohen's κ of two raters on the scale `min..=max` (all K categories count,
/// observed or not). `a` and `b` are the two raters' values per item.
pub fn cohen_kappa(a: &[i64], b: &[i64], min: i64, max: i64, weights: Weights) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() || max <= min {
        return None;
    }
    let k = (max - min + 1) as usize;
    let idx = |v: i64| -> Option<usize> { (min..=max).contains(&v).then(|| (v - min) as usize) };
    let mut o = vec![vec![0.0; k]; k];
    for (x, y) in a.iter().zip(b) {
        o[idx(*x)?][idx(*y)?] += 1.0;
    }
    let n = a.len() as f64;
    let rows: Vec<f64> = o.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<f64> = (0..k).map(|j| o.iter().map(|r| r[j]).sum()).collect();
    let w = |i: usize, j: usize| -> f64 {
        let d = (i as f64 - j as f64).abs() / (k as f64 - 1.0);
        match weights {
            Weights::Unweighted => f64::from(u8::from(i != j)),
            Weights::Linear => d,
            Weights::Quadratic => d * d,
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            observed += w(i, j) * o[i][j];
            expected += w(i, j) * rows[i] * cols[j] / n;
        }
    }
    (expected > 0.0).then(|| 1.0 - observed / expected)
}

/// Fleiss' κ: `counts[i][j]` raters put item i in category j; every item
/// has the same number of raters (at least two).
pub fn fleiss_kappa(counts: &[Vec<u64>]) -> Option<f64> {
    let n_items = counts.len();
    let raters: u64 = counts.first()?.iter().sum();
    let k = counts[0].len();
    if raters < 2
        || counts
            .iter()
            .any(|r| r.len() != k || r.iter().sum::<u64>() != raters)
    {
        return None;
    }
    let (n, big_n) = (raters as f64, n_items as f64);
    let p_j: Vec<f64> = (0..k)
        .map(|j| counts.iter().map(|r| r[j] as f64).sum::<f64>() / (big_n * n))
        .collect();
    let p_bar = counts
        .iter()
        .map(|r| (r.iter().map(|c| (*c * *c) as f64).sum::<f64>() - n) / (n * (n - 1.0)))
        .sum::<f64>()
        / big_n;
    let p_e: f64 = p_j.iter().map(|p| p * p).sum();
    (p_e < 1.0).then(|| (p_bar - p_e) / (1.0 - p_e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
}

/// Krippendorff's α. `units[u]` holds the values the raters gave unit u
/// (missing ones left out); units with fewer than two values are skipped.
pub fn krippendorff_alpha(units: &[Vec<f64>], level: Level) -> Option<f64> {
    // Coincidences o_ck over the distinct values.
    let mut values: Vec<f64> = units.iter().flatten().copied().collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let at = |v: f64| values.iter().position(|x| *x == v).unwrap_or(0);
    let k = values.len();
    let mut o = vec![vec![0.0; k]; k];
    for unit in units.iter().filter(|u| u.len() >= 2) {
        let m = unit.len() as f64;
        for (i, c) in unit.iter().enumerate() {
            for (j, d) in unit.iter().enumerate() {
                if i != j {
                    o[at(*c)][at(*d)] += 1.0 / (m - 1.0);
                }
            }
        }
    }
    let n_c: Vec<f64> = o.iter().map(|r| r.iter().sum()).collect();
    let n: f64 = n_c.iter().sum();
    if n <= 1.0 {
        return None;
    }
    let delta2 = |c: usize, d: usize| -> f64 {
        let (x, y) = (values[c], values[d]);
        match level {
            Level::Nominal => f64::from(u8::from(c != d)),
            Level::Interval => (x - y) * (x - y),
            Level::Ratio => {
                let s = x + y;
                if s == 0.0 { 0.0 } else { ((x - y) / s).powi(2) }
            }
            Level::Ordinal => {
                let (lo, hi) = (c.min(d), c.max(d));
                let sum: f64 = n_c[lo..=hi].iter().sum();
                (sum - (n_c[c] + n_c[d]) / 2.0).powi(2)
            }
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for c in 0..k {
        for d in 0..k {
            let w = delta2(c, d);
            observed += o[c][d] * w;
            expected += n_c[c] * n_c[d] * w;
        }
    }
    (expected > 0.0).then(|| 1.0 - (n - 1.0) * observed / expected)
}

/// Average ranks (ties share the mean of their positions), 1-based.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for o in &order[i..=j] {
            out[*o] = rank;
        }
        i = j + 1;
    }
    out
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Spearman's ρ: Pearson's r on average ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    pearson(&ranks(a), &ranks(b))
}

/// The calibration view of two raters on the same items.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub exact: f64,
    pub within_one: f64,
    pub spearman: Option<f64>,
}

pub fn calibration(a: &[i64], b: &[i64]) -> Option<Calibration> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let n = a.len() as f64;
    let count = |f: &dyn Fn(i64, i64) -> bool| {
        a.iter().zip(b).filter(|(x, y)| f(**x, **y)).count() as f64 / n
    };
    let fa: Vec<f64> = a.iter().map(|v| *v as f64).collect();
    let fb: Vec<f64> = b.iter().map(|v| *v as f64).collect();
    Some(Calibration {
        exact: count(&|x, y| x == y),
        within_one: count(&|x, y| (x - y).abs() <= 1),
        spearman: spearman(&fa, &fb),
    })
}

/// Ratings by (item, rater) → the units Krippendorff's α takes.
pub fn units_of<I: Ord + Clone, R: Ord>(ratings: &[(I, R, f64)]) -> Vec<Vec<f64>> {
    let mut by_item: BTreeMap<I, Vec<f64>> = BTreeMap::new();
    for (item, _, v) in ratings {
        by_item.entry(item.clone()).or_default().push(*v);
    }
    by_item.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.unwrap();
        assert!((a - b).abs() < 5e-7, "{a} vs {b}");
    }

    const R1: [i64; 10] = [1, 2, 3, 3, 4, 5, 5, 2, 4, 3];
    const R2: [i64; 10] = [1, 3, 3, 2, 4, 5, 4, 2, 4, 4];

    #[test]
    fn cohen_matches_the_specs_example() {
        close(cohen_kappa(&R1, &R2, 1, 5, Weights::Unweighted), 0.493671);
        close(cohen_kappa(&R1, &R2, 1, 5, Weights::Linear), 0.705882);
        close(cohen_kappa(&R1, &R2, 1, 5, Weights::Quadratic), 0.863014);
        assert_eq!(cohen_kappa(&R1, &R2[..3], 1, 5, Weights::Linear), None);
        assert_eq!(cohen_kappa(&[9], &[1], 1, 5, Weights::Linear), None);
    }

    #[test]
    fn calibration_matches_the_specs_example() {
        let c = calibration(&R1, &R2).unwrap();
        assert!((c.exact - 0.6).abs() < 1e-12);
        assert!((c.within_one - 1.0).abs() < 1e-12);
        close(c.spearman, 0.865064);
    }

    #[test]
    fn fleiss_matches_the_wikipedia_example() {
        let rows: Vec<Vec<u64>> = vec![
            vec![0, 0, 0, 0, 14],
            vec![0, 2, 6, 4, 2],
            vec![0, 0, 3, 5, 6],
            vec![0, 3, 9, 2, 0],
            vec![2, 2, 8, 1, 1],
            vec![7, 7, 0, 0, 0],
            vec![3, 2, 6, 3, 0],
            vec![2, 5, 3, 2, 2],
            vec![6, 5, 2, 1, 0],
            vec![0, 2, 2, 3, 7],
        ];
        close(fleiss_kappa(&rows), 0.209931);
        // Rows of different widths, or items with different numbers of raters.
        assert_eq!(fleiss_kappa(&[vec![1, 1], vec![2, 0, 0]]), None);
        assert_eq!(fleiss_kappa(&[vec![1, 1], vec![3, 0]]), None);
    }

    #[test]
    fn krippendorff_matches_the_2011_example() {
        // Raters A–D × 12 units, None = missing.
        let m = None;
        let s = Some;
        let table: [[Option<f64>; 12]; 4] = [
            [
                s(1.),
                s(2.),
                s(3.),
                s(3.),
                s(2.),
                s(1.),
                s(4.),
                s(1.),
                s(2.),
                m,
                m,
                m,
            ],
            [
                s(1.),
                s(2.),
                s(3.),
                s(3.),
                s(2.),
                s(2.),
                s(4.),
                s(1.),
                s(2.),
                s(5.),
                m,
                s(3.),
            ],
            [
                m,
                s(3.),
                s(3.),
                s(3.),
                s(2.),
                s(3.),
                s(4.),
                s(2.),
                s(2.),
                s(5.),
                s(1.),
                m,
            ],
            [
                s(1.),
                s(2.),
                s(3.),
                s(3.),
                s(2.),
                s(4.),
                s(4.),
                s(1.),
                s(2.),
                s(5.),
                s(1.),
                m,
            ],
        ];
        let ratings: Vec<(usize, usize, f64)> = table
            .iter()
            .enumerate()
            .flat_map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .filter_map(move |(u, v)| v.map(|v| (u, r, v)))
            })
            .collect();
        let units = units_of(&ratings);
        close(krippendorff_alpha(&units, Level::Nominal), 0.743421);
        close(krippendorff_alpha(&units, Level::Ordinal), 0.815388);
        close(krippendorff_alpha(&units, Level::Interval), 0.849107);
        close(krippendorff_alpha(&units, Level::Ratio), 0.797403);
        assert_eq!(krippendorff_alpha(&[vec![3.0]], Level::Interval), None);
    }
}
