//! Documents for the tests and the sample files: a strip of MIT-BIH record 100, a plausible
//! 24 h trend report and a shift report (made-up patients).
#![allow(dead_code)]

use std::path::PathBuf;

use vigil_report::*;

/// 2026-12-07 13:00:00 UTC (14:00 CET).
pub const T0: i64 = 1_796_648_400_000;

pub fn printed() -> Printed {
    Printed {
        by: "nina (RN)".into(),
        at_ms: T0 + 3_600_000,
        tz: chrono_tz::Europe::Berlin,
    }
}

pub fn patient() -> PatientLine {
    PatientLine {
        name: "Jane Doe".into(),
        mrn: Some("MRN-004211".into()),
        dob: Some("1957-03-14".into()),
        sex: Some("F".into()),
        pacemaker: false,
    }
}

fn mitdb_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/waveforms/mitdb100")
}

/// Record 100: `(MLII, V5)` in mV at 360 Hz, the first 300 s.
pub fn mitdb100() -> (Vec<f64>, Vec<f64>) {
    let path = mitdb_dir().join("mitdb100_MLII_V5_360hz_first300s.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let (mut mlii, mut v5) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        mlii.push(cols[1].trim().parse().unwrap());
        v5.push(cols[2].trim().parse().unwrap());
    }
    (mlii, v5)
}

/// Record 100's beat annotations: `(time_s, symbol)` of the beats (QRS) only.
pub fn mitdb100_beats() -> Vec<(f64, String)> {
    let path = mitdb_dir().join("mitdb100_beats_atr.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (cols[3].trim() == "1").then(|| (cols[1].parse().unwrap(), cols[2].to_string()))
        })
        .collect()
}

/// A strip of record 100 from `from_s` to `to_s` (s from the record's start, which is put at
/// [`T0`]), both leads, onset in the middle.
pub fn mitdb_strip(from_s: f64, to_s: f64) -> StripDoc {
    let (mlii, v5) = mitdb100();
    let lead = |label: &str, values: &[f64]| Trace {
        label: label.into(),
        kind: TraceKind::Ecg,
        unit: "mV".into(),
        stretches: vec![Stretch {
            t0_ms: T0 as f64,
            rate: 360.0,
            values: values.to_vec(),
        }],
        gaps: vec![],
    };
    let from_ms = T0 + (from_s * 1000.0) as i64;
    let to_ms = T0 + (to_s * 1000.0) as i64;
    StripDoc {
        printed: printed(),
        patient: Some(patient()),
        bed: "ICU-A/bed-03".into(),
        alarm: "HR HIGH 142 > 120 (HR_HIGH)".into(),
        priority: "high".into(),
        onset_ms: (from_ms + to_ms) / 2,
        outcome: "Acknowledged by nina at 14:03:07".into(),
        numerics: vec![
            Numeric {
                label: "HR".into(),
                value: "142 /min".into(),
            },
            Numeric {
                label: "SpO2".into(),
                value: "94 %".into(),
            },
            Numeric {
                label: "RR".into(),
                value: "22 /min".into(),
            },
            Numeric {
                label: "NIBP".into(),
                value: "128/76 (93) mmHg".into(),
            },
            Numeric {
                label: "Temp".into(),
                value: "37.9 °C".into(),
            },
        ],
        from_ms,
        to_ms,
        traces: vec![lead("MLII", &mlii), lead("V5", &v5)],
        reason: "automatic: high-priority alarm".into(),
    }
}

/// A pleth-like scaled trace (arbitrary units), at 125 Hz over `[from, to)` ms.
pub fn pleth(from_ms: i64, to_ms: i64, label: &str) -> Trace {
    let n = ((to_ms - from_ms) as f64 / 8.0) as usize;
    let values = (0..n)
        .map(|i| {
            let t = i as f64 / 125.0;
            let phase = (t * 1.2).fract();
            2000.0 + 800.0 * (-(phase - 0.2).powi(2) / 0.01).exp() + 200.0 * (t * 0.3).sin()
        })
        .collect();
    Trace {
        label: label.into(),
        kind: TraceKind::Scaled,
        unit: "".into(),
        stretches: vec![Stretch {
            t0_ms: from_ms as f64,
            rate: 125.0,
            values,
        }],
        gaps: vec![],
    }
}

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// Deterministic noise in [-1, 1].
fn noise(i: i64) -> f64 {
    let x = (i as f64 * 12.9898).sin() * 43_758.547;
    (x - x.floor()) * 2.0 - 1.0
}

/// A plausible 24 h trend report: minute values with a 40-minute hole (monitor off), NIBP
/// every 30 min (one cuff without diastolic), onsets of all priorities, a 15-min table.
pub fn trend_doc() -> TrendDoc {
    let from = T0 - 24 * HOUR;
    let to = T0;
    let minutes = |f: &dyn Fn(i64) -> f64| -> Vec<(i64, f64)> {
        (0..24 * 60)
            .filter(|m| !(600..640).contains(m))
            .map(|m| (from + m * MIN, f(m)))
            .collect()
    };
    let series = |label: &str, unit: &str, points| Series {
        label: label.into(),
        unit: unit.into(),
        points,
    };
    let hr = minutes(&|m| {
        78.0 + 12.0 * ((m as f64) / 180.0).sin()
            + 4.0 * noise(m)
            + if (900..960).contains(&m) { 45.0 } else { 0.0 }
    });
    let pr = hr
        .iter()
        .map(|&(t, v)| (t, v + 2.0 * noise(t / MIN + 7)))
        .collect();
    let spo2 = minutes(&|m| {
        (96.0 + 1.5 * noise(m + 3) - if (900..960).contains(&m) { 6.0 } else { 0.0 }).min(100.0)
    });
    let rr =
        minutes(&|m| 16.0 + 3.0 * noise(m + 11) + if (900..960).contains(&m) { 8.0 } else { 0.0 });
    let temp: Vec<(i64, f64)> = (0..24)
        .map(|h| (from + h * HOUR, 37.1 + 0.5 * ((h as f64) / 4.0).sin()))
        .collect();
    let news2 = (0..12)
        .map(|h| {
            (
                from + h * 2 * HOUR,
                if h == 7 { 6.0 } else { 2.0 + (h % 3) as f64 },
            )
        })
        .collect();
    let cuffs = (0..48)
        .map(|i| {
            let t = from + i * 30 * MIN;
            let sys = 125.0 + 10.0 * noise(i + 50);
            Cuff {
                t_ms: t,
                sys: Some(sys),
                dia: if i == 20 { None } else { Some(sys - 50.0) },
                mean: if i == 20 { None } else { Some(sys - 33.0) },
            }
        })
        .collect();
    let onsets = vec![
        Onset {
            t_ms: from + 900 * MIN,
            priority: "high".into(),
            label: "HR HIGH".into(),
        },
        Onset {
            t_ms: from + 905 * MIN,
            priority: "medium".into(),
            label: "SpO2 LOW".into(),
        },
        Onset {
            t_ms: from + 300 * MIN,
            priority: "low".into(),
            label: "LEADS OFF".into(),
        },
    ];
    let columns: Vec<String> = ["HR", "PR", "SpO2", "RR", "NIBP", "Temp", "NEWS2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows = (0..96)
        .map(|i| {
            let t = from + i * 15 * MIN;
            let m = i * 15;
            let cell = |v: f64| format!("{v:.0}");
            let hole = (600..640).contains(&m);
            let vals = vec![
                if hole {
                    "—".into()
                } else {
                    cell(78.0 + 12.0 * ((m as f64) / 180.0).sin())
                },
                if hole {
                    "—".into()
                } else {
                    cell(80.0 + 12.0 * ((m as f64) / 180.0).sin())
                },
                if hole { "—".into() } else { "96".into() },
                "16".into(),
                if i % 2 == 0 {
                    "126/76 (92)".into()
                } else {
                    "—".into()
                },
                "37.2".into(),
                "2".into(),
            ];
            (t, vals)
        })
        .collect();
    TrendDoc {
        printed: printed(),
        patient: Some(patient()),
        bed: "ICU-A/bed-03".into(),
        from_ms: from,
        to_ms: to,
        hr: series("HR", "/min", hr),
        pr: series("PR", "/min", pr),
        spo2: series("SpO2", "%", spo2),
        rr: series("RR", "/min", rr),
        temp: series("Temp", "°C", temp),
        news2: series("NEWS2", "", news2),
        cuffs,
        onsets,
        table: TrendTable {
            interval_ms: 15 * MIN,
            columns,
            rows,
        },
    }
}

/// A trend report with no data at all.
pub fn empty_trend() -> TrendDoc {
    let empty = |l: &str| Series {
        label: l.into(),
        unit: "".into(),
        points: vec![],
    };
    TrendDoc {
        printed: printed(),
        patient: None,
        bed: "ICU-A/bed-07".into(),
        from_ms: T0 - HOUR,
        to_ms: T0,
        hr: empty("HR"),
        pr: empty("PR"),
        spo2: empty("SpO2"),
        rr: empty("RR"),
        temp: empty("Temp"),
        news2: empty("NEWS2"),
        cuffs: vec![],
        onsets: vec![],
        table: TrendTable {
            interval_ms: 15 * MIN,
            columns: vec!["HR".into()],
            rows: vec![],
        },
    }
}

/// A shift report of `beds` beds: every third bed quiet, the others with alarms.
pub fn shift_doc(beds: usize) -> ShiftDoc {
    let from = T0 - 8 * HOUR;
    let beds = (0..beds)
        .map(|b| {
            let quiet = b % 3 == 2;
            let alarms = if quiet {
                vec![]
            } else {
                (0..(2 + b % 4))
                    .map(|i| ShiftAlarm {
                        t_ms: from + (i as i64 + 1) * 47 * MIN,
                        priority: ["high", "medium", "low"][i % 3].into(),
                        technical: i == 3,
                        message: if i == 3 {
                            "LEADS OFF".into()
                        } else {
                            format!("HR HIGH {} > 120", 125 + i * 3)
                        },
                        outcome: if i == 0 {
                            "ack nina 14:03".into()
                        } else {
                            "resolved 14:05".into()
                        },
                    })
                    .collect()
            };
            ShiftBed {
                bed: format!("ICU-A/bed-{:02}", b + 1),
                patient: if b == 1 { None } else { Some(patient()) },
                counts: if quiet { [0, 0, 0] } else { [1, 1, 1] },
                alarms,
                limit_changes: if b % 2 == 0 && !quiet {
                    vec!["14:10 HR high 120 → 130 by carl".into()]
                } else {
                    vec![]
                },
                news2: if quiet {
                    vec![]
                } else {
                    (0..8)
                        .map(|h| (from + h * HOUR, (h % 4 + (b % 2) as i64) as f64))
                        .collect()
                },
                remote: if b == 4 {
                    vec![
                        "adherence 5 of 6 readings".into(),
                        "missed: BP 08:00".into(),
                    ]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    ShiftDoc {
        printed: printed(),
        ward: "ICU-A".into(),
        from_ms: from,
        to_ms: T0,
        beds,
    }
}
