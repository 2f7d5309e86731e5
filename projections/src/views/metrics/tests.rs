use super::*;

#[test]
fn agg_merges_like_a_direct_computation() {
    let values = [1.0, 5.0, f64::NAN, -2.0, 3.0];
    let mut a = Agg::of(0, values[0]);
    for (i, v) in values.iter().enumerate().skip(1) {
        a.merge(&Agg::of(i as i64, *v));
    }
    assert_eq!((a.n, a.nan_n, a.finite_n), (5, 1, 4));
    assert_eq!((a.min, a.max), (Some(-2.0), Some(5.0)));
    assert_eq!(a.mean(), (1.0 + 5.0 - 2.0 + 3.0) / 4.0);
    assert_eq!((a.last_step, a.last_value), (4, 3.0));
}

#[test]
fn agg_mean_with_infinities() {
    let mut a = Agg::of(0, 1.0);
    a.merge(&Agg::of(1, f64::INFINITY));
    assert_eq!(a.mean(), f64::INFINITY);
    a.merge(&Agg::of(2, f64::NEG_INFINITY));
    assert!(a.mean().is_nan());
    assert!(Agg::of(0, f64::NAN).mean().is_nan());
    assert_eq!(Agg::of(0, f64::NAN).min, None);
}

#[test]
fn bucket_width_respects_max_points_and_alignment() {
    for (from, to, m, unit) in [
        (0, 999_999, 1000, 512),
        (3, 10, 1000, 1),
        (17, 100_003, 7, 64),
        (0, 0, 1, 1),
    ] {
        let w = bucket_width(from, to, m, unit);
        assert_eq!(w % unit, 0);
        assert!(to / w - from / w < m, "{from}..{to} in {m} with width {w}");
    }
    assert_eq!(bucket_width(0, 9, 10, 1), 1);
}
