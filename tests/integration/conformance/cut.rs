//! How a row's bytes are cut into writes: whole, at a few pseudo-random points (drawn from a seed
//! the row's messages name), or before every byte.

use super::Row;

/// How many points a random cut has.
pub(super) const CUTS: usize = 4;

/// How a row's bytes are cut into writes. The runner writes each piece on a `TCP_NODELAY` socket
/// once the server has read the ones before it, so every cut is where one of the server's reads
/// ends; what comes back must not depend on where they end.
#[derive(Clone, Debug)]
pub(super) enum Cut {
    /// One write.
    Whole,
    /// Before each of these offsets, drawn by [`Cut::random`] from this seed.
    At { seed: u64, points: Vec<usize> },
    /// One write per byte.
    EveryByte,
}

impl Cut {
    /// [`CUTS`] distinct points strictly inside the row's request, drawn with SplitMix64 from a
    /// seed made of the rule's text and the round: a row is cut the same way on every run, and the
    /// points are in every message about it.
    pub(super) fn random(row: &Row, round: u64) -> Cut {
        // FNV-1a of the rule.
        let rule = row
            .rule
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let seed = rule ^ round;
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let z = (state ^ (state >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let inside = row.request.len() - 1;
        let mut points = std::collections::BTreeSet::new();
        while points.len() < CUTS.min(inside) {
            points.insert(1 + (next() % inside as u64) as usize);
        }
        Cut::At { seed, points: points.into_iter().collect() }
    }

    /// `request`, cut.
    pub(super) fn pieces(&self, request: &'static [u8]) -> Vec<&'static [u8]> {
        match self {
            Cut::Whole => vec![request],
            Cut::EveryByte => request.chunks(1).collect(),
            Cut::At { points, .. } => {
                let ends = points.iter().copied().chain([request.len()]);
                let starts = [0].into_iter().chain(points.iter().copied());
                starts.zip(ends).map(|(start, end)| &request[start..end]).collect()
            }
        }
    }
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Cut::Whole => write!(f, "in one write"),
            Cut::At { seed, points } => write!(f, "cut before bytes {points:?} (seed {seed:#x})"),
            Cut::EveryByte => write!(f, "byte by byte"),
        }
    }
}
