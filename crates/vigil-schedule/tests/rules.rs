//! Property tests of the change rules: the order samples come in never matters, a change larger
//! than anything in the data never hits, "1 of the last 1" hits exactly where runs start, and
//! the linear-time evaluation agrees with the definition computed the slow way.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use vigil_schedule::{Rule, RuleSpec, Sample, Test};

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// Readings over up to 10 days, on a coarse grid of times and values so that the same instant,
/// the same value and the same reading twice all happen; now and then a non-finite value.
fn raw_samples() -> impl Strategy<Value = Vec<Sample>> {
    let value = prop_oneof![
        8 => (500u32..1500).prop_map(|v| f64::from(v) / 10.0),
        1 => Just(f64::NAN),
        1 => prop::sample::select(vec![80.0, 80.5, 140.0, 141.0]),
    ];
    prop::collection::vec((0i64..10 * 24 * 4, value), 0..40).prop_map(|v| {
        v.into_iter()
            .map(|(quarter, value)| Sample {
                taken: base() + Duration::minutes(15 * quarter),
                value,
            })
            .collect()
    })
}

/// Any valid rule.
fn any_rule() -> impl Strategy<Value = Rule> {
    let within = prop::sample::select(vec!["90m", "6h", "1d", "3d", "31d"]);
    prop_oneof![
        (1u32..400, within.clone()).prop_map(|(by, w)| RuleSpec::rise(
            "r",
            "WEIGHT",
            f64::from(by) / 10.0,
            w
        )),
        (1u32..400, within).prop_map(|(by, w)| RuleSpec::fall(
            "r",
            "WEIGHT",
            f64::from(by) / 10.0,
            w
        )),
        (500u32..1500, 1u32..=8, 0u32..=8).prop_map(|(t, n, extra)| RuleSpec::above(
            "r",
            "NIBP_SYS",
            f64::from(t) / 10.0,
            n,
            n + extra
        )),
        (500u32..1500, 1u32..=8, 0u32..=8).prop_map(|(t, n, extra)| RuleSpec::below(
            "r",
            "NIBP_SYS",
            f64::from(t) / 10.0,
            n,
            n + extra
        )),
    ]
    .prop_map(|spec| Rule::new(spec).expect("a valid rule"))
}

/// The samples as a rule sees them (the module's doc): finite, by instant then value, a
/// repeated reading once.
fn normalised(samples: &[Sample]) -> Vec<Sample> {
    let mut s: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.value.is_finite())
        .collect();
    s.sort_by(|a, b| a.taken.cmp(&b.taken).then(a.value.total_cmp(&b.value)));
    s.dedup_by(|a, b| a.taken == b.taken && a.value == b.value);
    s
}

/// Whether the rule holds at each sample, straight from the definition (quadratic).
fn holds_slowly(rule: &Rule, s: &[Sample]) -> Vec<bool> {
    (0..s.len())
        .map(|i| match *rule.test() {
            Test::Rise { by, within } | Test::Fall { by, within } => {
                let up = matches!(rule.test(), Test::Rise { .. });
                s[..i]
                    .iter()
                    .filter(|e| e.taken < s[i].taken && s[i].taken - e.taken <= within)
                    .any(|e| {
                        let moved = if up {
                            s[i].value - e.value
                        } else {
                            e.value - s[i].value
                        };
                        moved + 1e-9 * s[i].value.abs().max(e.value.abs()).max(by) >= by
                    })
            }
            Test::Above { threshold, n, m } | Test::Below { threshold, n, m } => {
                let up = matches!(rule.test(), Test::Above { .. });
                let from = (i + 1).saturating_sub(m as usize);
                let beyond = s[from..=i]
                    .iter()
                    .filter(|e| {
                        if up {
                            e.value > threshold
                        } else {
                            e.value < threshold
                        }
                    })
                    .count();
                beyond >= n as usize
            }
        })
        .collect()
}

/// The hits as (instant, value).
fn points(rule: &Rule, samples: &[Sample]) -> Vec<(DateTime<Utc>, f64)> {
    rule.evaluate(samples)
        .into_iter()
        .map(|h| (h.at, h.value))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Shuffled (a late batch, a redelivery), the same samples give the same hits, details
    /// included.
    #[test]
    fn the_order_of_samples_never_changes_the_hits(
        rule in any_rule(),
        (samples, shuffled) in raw_samples().prop_flat_map(|s| (Just(s.clone()), Just(s).prop_shuffle())),
    ) {
        prop_assert_eq!(rule.evaluate(&samples), rule.evaluate(&shuffled));
    }

    /// The hits are where the definition turns true, in time order.
    #[test]
    fn hits_are_where_the_definition_turns_true(rule in any_rule(), samples in raw_samples()) {
        let s = normalised(&samples);
        let holds = holds_slowly(&rule, &s);
        let expect: Vec<(DateTime<Utc>, f64)> = (0..s.len())
            .filter(|&i| holds[i] && (i == 0 || !holds[i - 1]))
            .map(|i| (s[i].taken, s[i].value))
            .collect();
        prop_assert_eq!(points(&rule, &samples), expect);
    }

    /// A rise or fall of more than the data's whole range never hits.
    #[test]
    fn a_change_beyond_the_range_of_the_data_never_hits(
        samples in raw_samples(),
        extra in 1u32..10_000,
        within in prop::sample::select(vec!["90m", "1d", "31d"]),
    ) {
        let values: Vec<f64> = samples.iter().map(|s| s.value).filter(|v| v.is_finite()).collect();
        let range = values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - values.iter().copied().fold(f64::INFINITY, f64::min);
        let by = range.max(0.0) + f64::from(extra) / 1000.0;
        for spec in [
            RuleSpec::rise("r", "WEIGHT", by, within),
            RuleSpec::fall("r", "WEIGHT", by, within),
        ] {
            let rule = Rule::new(spec).expect("valid");
            prop_assert!(rule.evaluate(&samples).is_empty(), "{} hit", rule);
        }
    }

    /// "1 of the last 1 above" hits exactly at the first reading of each run of readings above
    /// (and "below" mirrors it).
    #[test]
    fn one_of_the_last_one_hits_where_runs_start(
        values in prop::collection::vec(prop::sample::select(vec![139.0, 140.0, 140.5, 141.0, 150.0]), 0..40),
        threshold in prop::sample::select(vec![139.5, 140.0, 145.0]),
        order in any::<u64>(),
    ) {
        // Distinct instants, given in a scrambled order.
        let mut samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .map(|(i, &value)| Sample { taken: base() + Duration::hours(i as i64), value })
            .collect();
        let k = samples.len().max(1);
        samples.rotate_left((order as usize) % k);
        samples.reverse();
        for up in [true, false] {
            let beyond = |v: f64| if up { v > threshold } else { v < threshold };
            let expect: Vec<(DateTime<Utc>, f64)> = (0..values.len())
                .filter(|&i| beyond(values[i]) && (i == 0 || !beyond(values[i - 1])))
                .map(|i| (base() + Duration::hours(i as i64), values[i]))
                .collect();
            let spec = if up {
                RuleSpec::above("r", "NIBP_SYS", threshold, 1, 1)
            } else {
                RuleSpec::below("r", "NIBP_SYS", threshold, 1, 1)
            };
            let rule = Rule::new(spec).expect("valid");
            prop_assert_eq!(points(&rule, &samples), expect);
        }
    }

    /// A rule's canonical form reads back to the same rule.
    #[test]
    fn rules_round_trip_through_their_spec(rule in any_rule()) {
        let spec = RuleSpec::from(rule.clone());
        prop_assert_eq!(Rule::new(spec).expect("valid"), rule);
    }
}
