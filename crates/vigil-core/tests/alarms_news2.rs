//! NEWS2 against every band edge of the table in clinical.md §3, written out case by case.

use vigil_core::alarms::news2::{
    score, score_pulse, score_rr, score_sbp, score_spo2, score_temp, Band, Consciousness,
    News2Input,
};

/// The score of one vital, by name, and its band edges: (value, score).
type OneVital = (&'static str, fn(f64) -> u8, &'static [(f64, u8)]);

/// The scores of one vital each (respiration rate, systolic pressure, pulse, temperature) at
/// every band edge.
#[test]
fn single_vital_edges() {
    let vitals: [OneVital; 4] = [
        (
            "rr",
            score_rr,
            &[
                (0.0, 3),
                (8.0, 3),
                (9.0, 1),
                (11.0, 1),
                (12.0, 0),
                (20.0, 0),
                (21.0, 2),
                (24.0, 2),
                (25.0, 3),
                (60.0, 3),
            ],
        ),
        (
            "sbp",
            score_sbp,
            &[
                (60.0, 3),
                (90.0, 3),
                (91.0, 2),
                (100.0, 2),
                (101.0, 1),
                (110.0, 1),
                (111.0, 0),
                (219.0, 0),
                (220.0, 3),
                (260.0, 3),
            ],
        ),
        (
            "pulse",
            score_pulse,
            &[
                (20.0, 3),
                (40.0, 3),
                (41.0, 1),
                (50.0, 1),
                (51.0, 0),
                (90.0, 0),
                (91.0, 1),
                (110.0, 1),
                (111.0, 2),
                (130.0, 2),
                (131.0, 3),
                (200.0, 3),
            ],
        ),
        (
            "temp",
            score_temp,
            &[
                (33.0, 3),
                (35.0, 3),
                (35.1, 1),
                (36.0, 1),
                (36.1, 0),
                (38.0, 0),
                (38.1, 1),
                (39.0, 1),
                (39.1, 2),
                (41.0, 2),
            ],
        ),
    ];
    for (name, score_of, edges) in vitals {
        for &(x, want) in edges {
            assert_eq!(score_of(x), want, "{name} {x}");
        }
    }
}

#[test]
fn spo2_scale1_edges() {
    for (s, want) in [
        (50.0, 3),
        (91.0, 3),
        (92.0, 2),
        (93.0, 2),
        (94.0, 1),
        (95.0, 1),
        (96.0, 0),
        (100.0, 0),
    ] {
        assert_eq!(score_spo2(s, false, false), want, "scale 1 air {s}");
        assert_eq!(score_spo2(s, false, true), want, "scale 1 oxygen {s}");
    }
}

#[test]
fn spo2_scale2_edges() {
    // (spo2, on air, on oxygen)
    for (s, air, o2) in [
        (50.0, 3, 3),
        (83.0, 3, 3),
        (84.0, 2, 2),
        (85.0, 2, 2),
        (86.0, 1, 1),
        (87.0, 1, 1),
        (88.0, 0, 0),
        (92.0, 0, 0),
        (93.0, 0, 1),
        (94.0, 0, 1),
        (95.0, 0, 2),
        (96.0, 0, 2),
        (97.0, 0, 3),
        (100.0, 0, 3),
    ] {
        assert_eq!(score_spo2(s, true, false), air, "scale 2 air {s}");
        assert_eq!(score_spo2(s, true, true), o2, "scale 2 oxygen {s}");
    }
}

fn normal() -> News2Input {
    News2Input {
        rr: 16.0,
        spo2: 98.0,
        scale2: false,
        oxygen: false,
        sbp: 120.0,
        pulse: 70.0,
        consciousness: Consciousness::Alert,
        temp: 37.0,
    }
}

#[test]
fn consciousness_and_oxygen() {
    assert_eq!(score(&normal()).consciousness, 0);
    for c in [
        Consciousness::Confusion,
        Consciousness::Voice,
        Consciousness::Pain,
        Consciousness::Unresponsive,
    ] {
        let s = score(&News2Input {
            consciousness: c,
            ..normal()
        });
        assert_eq!(
            (s.consciousness, s.total, s.band),
            (3, 3, Band::LowMedium),
            "{c:?}"
        );
    }
    let s = score(&News2Input {
        oxygen: true,
        ..normal()
    });
    assert_eq!((s.oxygen, s.total, s.band), (2, 2, Band::Low));
}

/// The band edges: (case, rr, pulse, sbp, temp, total, band), every other parameter normal.
/// Subscores: rr 21 = 2, rr 25 = 3; pulse 91 = 1, pulse 111 = 2; sbp 101 = 1; temp 38.1 = 1,
/// temp 39.1 = 2.
#[rustfmt::skip]
const BANDS: [(&str, f64, f64, f64, f64, u8, Band); 9] = [
    ("0: routine",                             16.0, 70.0,  120.0, 37.0, 0, Band::Zero),
    ("1 (pulse 91): low",                      16.0, 91.0,  120.0, 37.0, 1, Band::Low),
    ("4 without a 3: low",                     21.0, 111.0, 120.0, 37.0, 4, Band::Low),
    ("a single 3 alone (total 3): low-medium", 25.0, 70.0,  120.0, 37.0, 3, Band::LowMedium),
    ("a single 3 with total 4: low-medium",    25.0, 91.0,  120.0, 37.0, 4, Band::LowMedium),
    ("5: medium",                              21.0, 111.0, 120.0, 38.1, 5, Band::Medium),
    ("5 including a 3: medium (the total)",    25.0, 111.0, 120.0, 37.0, 5, Band::Medium),
    ("6: medium",                              21.0, 111.0, 120.0, 39.1, 6, Band::Medium),
    ("7: high",                                25.0, 111.0, 101.0, 38.1, 7, Band::High),
];

#[test]
fn band_edges() {
    for (case, rr, pulse, sbp, temp, total, band) in BANDS {
        let s = score(&News2Input {
            rr,
            pulse,
            sbp,
            temp,
            ..normal()
        });
        assert_eq!((s.total, s.band), (total, band), "{case}");
    }
    // Maximum 20.
    let s = score(&News2Input {
        rr: 5.0,
        spo2: 80.0,
        scale2: false,
        oxygen: true,
        sbp: 80.0,
        pulse: 140.0,
        consciousness: Consciousness::Unresponsive,
        temp: 34.0,
    });
    assert_eq!((s.total, s.band), (20, Band::High));
}
