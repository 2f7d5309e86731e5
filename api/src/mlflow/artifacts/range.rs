//! `Range` requests on artifact downloads (RFC 9110 §14): one byte range,
//! parsed and resolved against the object's size.

/// What a `Range` header asks for (RFC 9110 §14).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum RangeAsk {
    /// No header, another unit, or several ranges (served whole: a server may
    /// ignore a Range it does not support).
    Whole,
    /// `bytes=a-b` (`b` inclusive, `None` for `a-`).
    From(u64, Option<u64>),
    /// `bytes=-n`: the last `n` bytes.
    Last(u64),
    /// A `bytes` range that is malformed (`bytes=9-1`, `bytes=x`).
    Invalid,
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range).
pub(super) fn parse_range(h: &str) -> RangeAsk {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::Invalid;
    };
    let num = |t: &str| {
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => num(n).map_or(RangeAsk::Invalid, RangeAsk::Last),
        (a, "") => num(a).map_or(RangeAsk::Invalid, |a| RangeAsk::From(a, None)),
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => RangeAsk::From(a, Some(b)),
            _ => RangeAsk::Invalid,
        },
    }
}

/// The bytes `ask` names in an object of `size` bytes, or `None` when it
/// cannot be satisfied (416).
pub(super) fn resolve_range(ask: RangeAsk, size: u64) -> Option<std::ops::Range<u64>> {
    match ask {
        RangeAsk::Whole => Some(0..size),
        RangeAsk::From(a, b) if a < size => {
            Some(a..b.map_or(size, |b| b.saturating_add(1).min(size)))
        }
        RangeAsk::Last(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
        RangeAsk::From(..) | RangeAsk::Last(_) | RangeAsk::Invalid => None,
    }
}
