//! Property-based fuzzing of every decoder (issue 7): the native contract (`decode::decode`,
//! topics), FHIR R4 JSON, HL7 v2 ER7 (and ACKs), MLLP framing, the `dz` waveform codec, and the
//! gap tracker that decoded waveform chunks go through next.
//!
//! Three kinds of input per decoder: arbitrary bytes, structure-aware generators (valid
//! messages with random fields, mutations of real sample messages from `shared/data`), and
//! round trips where an encoder exists. Every property checks that nothing panics, that a
//! refusal is a typed error with a counter key, and that what is accepted is finite and in
//! range.
//!
//! Bounded by default (the whole file runs in seconds in a debug build). For a longer run set
//! `VIGIL_FUZZ_CASES` (cases per property), e.g.
//! `VIGIL_FUZZ_CASES=20000 cargo test -p vigil-core --release --test engine fuzz::`; see
//! `docs/fuzzing.md`. Failures are not persisted to files (the source tree stays clean):
//! proptest prints the shrunk input and the seed; `PROPTEST_RNG_SEED` replays a run.

use crate::support;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Value};

use vigil_core::codec;
use vigil_core::codes::{Vital, CHANNELS};
use vigil_core::ingest::GapTracker;
use vigil_core::interop::{fhir, hl7v2, mllp};
use vigil_core::telemetry::{
    self, utc_from_ms, Batch, BedId, DecodeError, Message, ObsStatus, ObservationPayload,
    StatusPayload, Topic, VitalsPayload, WaveChunk, WavePayload, MAX_CHUNK_SAMPLES,
    MAX_SAMPLE_RATE,
};

// ---------------------------------------------------------------------------------------------
// Configuration and shared checks

/// Cases per property: `default`, or `VIGIL_FUZZ_CASES` when set (the longer documented run).
fn cfg(default: u32) -> ProptestConfig {
    let cases = std::env::var("VIGIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // No regression files in the source tree; a failure prints its input and seed.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

fn data_dir() -> PathBuf {
    support::data_dir("the fuzz seeds come from it")
}

/// The bytes of every file of `dir`.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    support::files(dir)
        .iter()
        .map(|p| support::read(p))
        .collect()
}

/// The real FHIR examples (seeds).
fn fhir_seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| files(&data_dir().join("fhir_r4/official_examples")))
}

/// The real HL7 v2 messages (seeds), CR and CRLF forms.
fn hl7_seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut v = files(&data_dir().join("hl7v2/normalized_cr"));
        v.extend(files(&data_dir().join("hl7v2/ipf_raw")));
        v
    })
}

/// A refusal is typed: it has a counter key and a message.
fn check_error(e: &DecodeError) {
    assert!(!e.reason().is_empty());
    assert!(!e.to_string().is_empty());
}

/// What an interop decoder accepts is finite and in range.
fn check_batch(b: &Batch) {
    for r in &b.readings {
        if let Some(v) = r.value {
            let (lo, hi) = r.vital.info().plausible;
            assert!(v.is_finite() && (lo..=hi).contains(&v), "reading {r:?}");
        }
    }
    for w in &b.waves {
        assert!(
            w.rate.is_finite() && w.rate > 0.0 && w.rate <= MAX_SAMPLE_RATE,
            "rate {}",
            w.rate
        );
        assert!(
            w.factor.is_finite() && w.factor != 0.0,
            "factor {}",
            w.factor
        );
        assert!(w.origin.is_finite(), "origin {}", w.origin);
        assert!(!w.data.is_empty() && w.data.len() <= MAX_CHUNK_SAMPLES);
        for &d in &w.data {
            let v = w.origin + w.factor * f64::from(d);
            assert!(v.is_finite(), "sample {d} of {w:?} is {v}");
        }
    }
    if let Some(d) = &b.device {
        assert!(!d.is_empty() && d.chars().count() <= 128 && !d.chars().any(char::is_control));
        assert_eq!(d.trim(), d);
    }
    for e in &b.rejected {
        check_error(e);
    }
}

/// A decoded waveform chunk is usable: finite, bounded, every physical value finite.
fn check_chunk(w: &WaveChunk) {
    assert!(w.rate.is_finite() && w.rate > 0.0 && w.rate <= MAX_SAMPLE_RATE);
    assert!(w.factor.is_finite() && w.factor != 0.0 && w.origin.is_finite());
    assert!(!w.data.is_empty() && w.data.len() <= MAX_CHUNK_SAMPLES);
    for i in 0..w.data.len() {
        let v = w.value(i).expect("sample in range");
        assert!(v.is_finite(), "sample {i} of {w:?} is {v}");
    }
}

/// Checks on whatever `decode::decode` returns; decoded waves also go through a gap tracker
/// (the next stage of the engine), which must not panic on them either.
fn check_decoded(r: &Result<Message, DecodeError>, gaps: &mut GapTracker) {
    match r {
        Err(e) => check_error(e),
        Ok(Message::Vitals(v)) => {
            assert!(v.readings.len() + v.rejected.len() <= telemetry::MAX_OBSERVATIONS);
            for r in &v.readings {
                if let Some(x) = r.value {
                    let (lo, hi) = r.vital.info().plausible;
                    assert!(x.is_finite() && (lo..=hi).contains(&x), "{r:?}");
                }
            }
            v.rejected.iter().for_each(check_error);
        }
        Ok(Message::Wave(w)) => {
            check_chunk(w);
            let _ = gaps.observe(w, 0);
            let _ = gaps.observe(w, 0);
        }
        Ok(Message::Status(s)) => {
            assert!(s.conditions.len() <= 32);
            assert!(s.conditions.iter().all(|c| telemetry::valid_segment(c)));
        }
        Ok(Message::Batch { batch, .. }) => check_batch(batch),
        Ok(Message::Dose(d)) => {
            assert_eq!(
                vigil_core::dose::parse_medication(&d.medication).as_deref(),
                Ok(d.medication.as_str())
            );
        }
    }
}

/// serde_json (without its `float_roundtrip` feature) may read a decimal 1 ULP away from the
/// nearest f64, so JSON round trips are compared to within 2 ULP. See docs/fuzzing.md.
fn close(a: f64, b: f64) -> bool {
    // Subnormals have a fixed spacing: the tolerance bottoms out at MIN_POSITIVE.
    a == b || (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

fn close_opt(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => close(a, b),
        (a, b) => a == b,
    }
}

/// Byte-level mutations of a seed: overwrite, insert, delete, splice a token, truncate.
fn mutate(seed: &[u8], edits: &[(u8, usize, u8)], tokens: &[&[u8]]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(op, pos, byte) in edits {
        let at = if b.is_empty() { 0 } else { pos % (b.len() + 1) };
        match op % 5 {
            0 if at < b.len() => b[at] = byte,
            1 => b.insert(at, byte),
            2 if at < b.len() => {
                b.remove(at);
            }
            3 => {
                let t = tokens[usize::from(byte) % tokens.len()];
                b.splice(at..at, t.iter().copied());
            }
            4 => b.truncate(at),
            _ => {}
        }
    }
    b
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..8)
}

const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e308",
    b"-1e308",
    b"1e-320",
    b"18446744073709551615",
    b"-9223372036854775808",
    b"3.4028236e38",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"final\"",
    b"\"entered-in-error\"",
    b"\"Observation\"",
    b"\"Bundle\"",
    b"\"valueQuantity\"",
    b"\"valueSampledData\"",
    b"\"dataAbsentReason\"",
    b"\"component\"",
    b"\"E L U 1.5e-7 99999999999\"",
    b"\"[degF]\"",
    b"\"2026-11-23T10:00:00Z\"",
    b"\"+275760-09-13T00:00:00Z\"",
];

// ---------------------------------------------------------------------------------------------
// Native contract: topics and payloads

fn segment_str() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._-]{1,8}",
        Just("_station".to_string()),
        Just(String::new()),
        Just("+".to_string()),
        Just("#".to_string()),
        "[A-Za-z0-9]{64,66}",
        ".{0,6}",
    ]
}

fn stream_str() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("vitals".to_string()),
        Just("status".to_string()),
        Just("fhir".to_string()),
        Just("hl7v2".to_string()),
        Just("dose".to_string()),
        prop::sample::select(CHANNELS.iter().map(|c| c.name).collect::<Vec<_>>())
            .prop_map(|c| format!("wave/{c}")),
        segment_str().prop_map(|c| format!("wave/{c}")),
        Just("wave".to_string()),
        ".{0,10}",
    ]
}

fn topic_str() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => ".{0,80}",
        6 => (segment_str(), segment_str(), segment_str(), stream_str())
            .prop_map(|(w, b, d, s)| format!("vigil/v1/{w}/{b}/{d}/{s}")),
    ]
}

/// An f64 from every class: small, in range, huge, subnormal, infinite, NaN.
fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => -50.0..300.0f64,
        1 => any::<f64>(),
        1 => prop::sample::select(vec![
            0.0, -0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, f64::MIN, f64::INFINITY,
            f64::NEG_INFINITY, f64::NAN, 1e-300, 1e300, 10_000.0, 10_000.000_000_1,
        ]),
    ]
}

fn any_status() -> impl Strategy<Value = ObsStatus> {
    prop::sample::select(ObsStatus::ALL.to_vec())
}

/// Milliseconds from year 1 to 9999 (what RFC 3339 can carry), mostly near now.
fn any_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 1_700_000_000_000i64..1_900_000_000_000,
        1 => -62_135_596_800_000i64..253_402_300_799_000,
    ]
}

fn observation() -> impl Strategy<Value = ObservationPayload> {
    let mdc = prop_oneof![
        3 => prop::sample::select(Vital::ALL.iter().map(|v| v.mdc()).collect::<Vec<_>>()),
        1 => any::<u32>(),
    ];
    let unit = prop_oneof![
        3 => Just(None),
        1 => prop::sample::select(vec!["/min", "%", "mm[Hg]", "Cel", "[degF]", "", "mV"])
            .prop_map(Some),
    ];
    (
        mdc,
        prop::option::weighted(0.9, any_f64()),
        unit,
        prop::option::of(any_ms()),
        any_status(),
    )
        .prop_map(|(mdc, value, unit, t, status)| {
            let unit = unit.map(str::to_string).unwrap_or_else(|| {
                Vital::from_mdc(mdc).map_or_else(|| "/min".to_string(), |v| v.unit().to_string())
            });
            ObservationPayload {
                mdc,
                value,
                unit,
                t: t.map(utc_from_ms),
                status,
            }
        })
}

fn vitals_payload() -> impl Strategy<Value = VitalsPayload> {
    (
        prop_oneof![9 => Just(1u32), 1 => any::<u32>()],
        prop_oneof![9 => Just("mon-1".to_string()), 1 => ".{0,8}"],
        any_ms(),
        any::<u64>(),
        prop::collection::vec(observation(), 0..12),
    )
        .prop_map(|(v, device, t, seq, obs)| VitalsPayload {
            v,
            device,
            t: utc_from_ms(t),
            seq,
            obs,
        })
}

fn wave_payload() -> impl Strategy<Value = WavePayload> {
    let channel = prop::sample::select(CHANNELS.iter().map(|c| c.name).collect::<Vec<_>>());
    let data = prop_oneof![
        4 => prop::collection::vec(-5000i32..5000, 1..300),
        1 => prop::collection::vec(any::<i32>(), 0..50),
    ];
    let rate = prop_oneof![
        3 => prop::sample::select(vec![125.0, 250.0, 360.0, 500.0]),
        1 => any_f64(),
    ];
    (
        channel,
        prop::bool::weighted(0.9),
        any_ms(),
        rate,
        any::<u64>(),
        prop_oneof![3 => Just(0.0), 1 => any_f64()],
        prop_oneof![3 => 0.0001..0.01f64, 1 => any_f64()],
        data,
    )
        .prop_map(
            |(channel, own_unit, t0, rate, seq, origin, factor, data)| WavePayload {
                v: 1,
                device: "mon-1".into(),
                channel: channel.to_string(),
                unit: if own_unit {
                    vigil_core::codes::channel(channel)
                        .expect("channel")
                        .unit
                        .to_string()
                } else {
                    "1".into()
                },
                t0: utc_from_ms(t0),
                rate,
                seq,
                origin,
                factor,
                data,
            },
        )
}

proptest! {
    #![proptest_config(cfg(512))]

    /// Any topic: a typed error or a topic that formats back to the same string.
    #[test]
    fn topics_parse_or_refuse(topic in topic_str()) {
        match Topic::parse(&topic) {
            Err(e) => prop_assert_eq!(e.reason(), "bad_topic"),
            Ok(t) => {
                let again = match &t.stream {
                    telemetry::Stream::Vitals => Topic::vitals(&t.bed, &t.device),
                    telemetry::Stream::Status => Topic::status(&t.bed, &t.device),
                    telemetry::Stream::Fhir => Topic::fhir(&t.bed, &t.device),
                    telemetry::Stream::Hl7v2 => Topic::hl7v2(&t.bed, &t.device),
                    telemetry::Stream::Dose => Topic::dose(&t.bed, &t.device),
                    telemetry::Stream::Wave(c) => Topic::wave(&t.bed, &t.device, c),
                };
                prop_assert_eq!(again, topic);
            }
        }
    }

    /// Arbitrary bytes on any topic never panic.
    #[test]
    fn native_arbitrary_bytes(topic in topic_str(), payload in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut gaps = GapTracker::default();
        check_decoded(&vigil_core::decode::decode(&topic, &payload), &mut gaps);
    }

    /// Mutated valid payloads (vitals, wave, status) never panic; what decodes is in range.
    #[test]
    fn native_mutated_payloads(
        vitals in vitals_payload(),
        wave in wave_payload(),
        which in 0u8..3,
        edits in edits(),
    ) {
        let bed = BedId::new("4W", "12");
        let (topic, seed) = match which {
            0 => (Topic::vitals(&bed, "mon-1"), serde_json::to_vec(&vitals).expect("json")),
            1 => (Topic::wave(&bed, "mon-1", &wave.channel), serde_json::to_vec(&wave).expect("json")),
            _ => (
                Topic::status(&bed, "mon-1"),
                br#"{"v":1,"device":"mon-1","state":"online","t":"2026-11-23T10:00:00Z","conditions":["leads-off","low-battery"]}"#.to_vec(),
            ),
        };
        let mut gaps = GapTracker::default();
        let bytes = mutate(&seed, &edits, JSON_TOKENS);
        check_decoded(&vigil_core::decode::decode(&topic, &bytes), &mut gaps);
    }

    /// Encode → decode of vitals: every observation is either a reading with exactly the sent
    /// value, time and status, or a typed reject, in order; out-of-range and non-finite values
    /// are rejected.
    #[test]
    fn native_vitals_round_trip(p in vitals_payload()) {
        let bed = BedId::new("4W", "12");
        let bytes = serde_json::to_vec(&p).expect("serialises");
        let got = vigil_core::decode::decode(&Topic::vitals(&bed, "mon-1"), &bytes);
        if p.v != 1 {
            prop_assert_eq!(got.map(|_| ()).map_err(|e| e.reason()), Err("bad_version"));
            return Ok(());
        }
        if p.device != "mon-1" {
            prop_assert_eq!(got.map(|_| ()).map_err(|e| e.reason()), Err("device_mismatch"));
            return Ok(());
        }
        let Ok(Message::Vitals(v)) = got else {
            return Err(TestCaseError::fail(format!("valid vitals refused: {got:?}")));
        };
        prop_assert_eq!(v.seq, p.seq);
        prop_assert_eq!(v.readings.len() + v.rejected.len(), p.obs.len());
        let mut readings = v.readings.iter();
        for o in &p.obs {
            let info = Vital::from_mdc(o.mdc).map(Vital::info);
            // serde_json writes NaN and ±inf as null: "no reading".
            let sent = o.value.filter(|x| x.is_finite());
            let ok = info.is_some_and(|i| {
                i.unit == o.unit && sent.is_none_or(|x| (i.plausible.0..=i.plausible.1).contains(&x))
            });
            if ok {
                let r = readings.next().expect("a reading per good observation");
                prop_assert_eq!(Some(r.vital.mdc()), Vital::from_mdc(o.mdc).map(Vital::mdc));
                prop_assert!(close_opt(r.value, sent), "{:?} for {:?}", r.value, sent);
                prop_assert_eq!(r.status, o.status);
                let t = o.t.unwrap_or(p.t).timestamp_millis();
                prop_assert_eq!(r.t_ms, t);
            }
        }
        prop_assert!(readings.next().is_none());
    }

    /// Encode → decode of waveform chunks: accepted exactly when rate, factor, origin and
    /// length are valid; then data, scaling and time come back unchanged.
    #[test]
    fn native_wave_round_trip(p in wave_payload()) {
        let bed = BedId::new("4W", "12");
        let bytes = serde_json::to_vec(&p).expect("serialises");
        let got = vigil_core::decode::decode(&Topic::wave(&bed, "mon-1", &p.channel), &bytes);
        let mut gaps = GapTracker::default();
        check_decoded(&got, &mut gaps);
        let valid = p.rate.is_finite() && p.rate > 0.0 && p.rate <= MAX_SAMPLE_RATE
            && p.factor.is_finite() && p.factor != 0.0 && p.origin.is_finite()
            && !p.data.is_empty() && p.data.len() <= MAX_CHUNK_SAMPLES
            && p.data.iter().all(|&d| (p.origin + p.factor * f64::from(d)).is_finite());
        match got {
            Ok(Message::Wave(w)) => {
                prop_assert!(valid, "accepted {p:?}");
                prop_assert_eq!(&w.data, &p.data);
                prop_assert!(close(w.rate, p.rate), "{} {}", w.rate, p.rate);
                prop_assert!(close(w.factor, p.factor), "{} {}", w.factor, p.factor);
                prop_assert!(close(w.origin, p.origin), "{} {}", w.origin, p.origin);
                prop_assert_eq!(w.seq, p.seq);
                prop_assert_eq!(w.t0_ms, p.t0.timestamp_millis());
            }
            Ok(m) => return Err(TestCaseError::fail(format!("not a wave: {m:?}"))),
            Err(e) => {
                // NaN and ±inf serialise as null, which is malformed for a number field.
                prop_assert!(!valid || e.reason() == "malformed", "{e} for {p:?}");
                prop_assert!(matches!(e.reason(), "invalid_field" | "malformed"), "{e}");
            }
        }
    }

    /// Status payloads with arbitrary conditions.
    #[test]
    fn native_status(conditions in prop::collection::vec(".{0,10}", 0..40), online in any::<bool>(), t in prop::option::of(any_ms())) {
        let p = StatusPayload {
            v: 1,
            device: "mon-1".into(),
            state: if online { telemetry::DeviceState::Online } else { telemetry::DeviceState::Offline },
            t: t.map(utc_from_ms),
            conditions: conditions.clone(),
        };
        let bytes = serde_json::to_vec(&p).expect("serialises");
        let got = vigil_core::decode::decode(&Topic::status(&BedId::new("4W", "1"), "mon-1"), &bytes);
        let mut gaps = GapTracker::default();
        check_decoded(&got, &mut gaps);
        let valid = conditions.len() <= 32 && conditions.iter().all(|c| telemetry::valid_segment(c));
        match got {
            Ok(Message::Status(s)) => {
                prop_assert!(valid);
                prop_assert_eq!(s.online, online);
                prop_assert_eq!(s.conditions, conditions);
                prop_assert_eq!(s.t_ms, p.t.map(|t| t.timestamp_millis()));
            }
            other => prop_assert!(!valid, "{other:?}"),
        }
    }

    /// Any dose event: decoded exactly when its medication id is one, with its time and kind;
    /// otherwise the medication id is what is refused.
    #[test]
    fn dose_events_decode_or_refuse(
        t in any_ms(),
        medication in prop_oneof![3 => "[a-z0-9][a-z0-9_-]{0,31}", 1 => ".{0,40}"],
        kind in prop::sample::select(vigil_core::dose::DoseKind::ALL.to_vec()),
        seq in any::<u64>(),
    ) {
        let p = vigil_core::dose::DosePayload::new("disp-1", seq, utc_from_ms(t), &medication, kind);
        let bytes = serde_json::to_vec(&p).expect("serialises");
        let got = vigil_core::decode::decode(&Topic::dose(&BedId::new("home", "h-1"), "disp-1"), &bytes);
        let mut gaps = GapTracker::default();
        check_decoded(&got, &mut gaps);
        let valid = vigil_core::dose::parse_medication(&medication).is_ok();
        match got {
            Ok(Message::Dose(d)) => {
                prop_assert!(valid);
                prop_assert_eq!(d.medication, medication.trim());
                prop_assert_eq!((d.kind, d.t_ms, d.seq), (kind, t, seq));
            }
            Err(DecodeError::Invalid { field: "medication", .. }) => prop_assert!(!valid),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    /// The gap tracker takes any sequence of decodable chunks (any seq, any valid rate).
    #[test]
    fn gap_tracker_any_chunks(
        chunks in prop::collection::vec(
            (any::<u64>(), any_ms(), prop_oneof![Just(f64::MIN_POSITIVE), 1e-300..MAX_SAMPLE_RATE, Just(MAX_SAMPLE_RATE)], 1usize..2000),
            1..20,
        ),
        now in any::<i64>(),
    ) {
        let mut g = GapTracker::default();
        let ch = vigil_core::codes::channel("PLETH").expect("channel");
        for (seq, t0_ms, rate, n) in chunks {
            let w = WaveChunk {
                bed: BedId::new("4W", "1"),
                device: "mon-1".into(),
                channel: ch,
                unit: "1",
                t0_ms,
                rate,
                seq,
                origin: 0.0,
                factor: 1.0,
                data: vec![0; n],
            };
            if let Some(fill) = g.observe(&w, now) {
                prop_assert_eq!(fill.seq, seq);
                prop_assert_eq!(fill.t0_ms, t0_ms);
            }
            for gap in g.due(now) {
                prop_assert!(gap.first_seq <= gap.last_seq);
            }
        }
        for gap in g.due(i64::MAX) {
            prop_assert!(gap.first_seq <= gap.last_seq);
            prop_assert!(gap.last_seq < u64::MAX);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// FHIR R4

fn fhir_value() -> impl Strategy<Value = Value> {
    let unit = prop::sample::select(vec![
        ("http://unitsofmeasure.org", "/min"),
        ("http://unitsofmeasure.org", "{beats}/min"),
        ("http://unitsofmeasure.org", "%"),
        ("http://unitsofmeasure.org", "mm[Hg]"),
        ("http://unitsofmeasure.org", "kPa"),
        ("http://unitsofmeasure.org", "Cel"),
        ("http://unitsofmeasure.org", "[degF]"),
        ("http://unitsofmeasure.org", "K"),
        ("urn:iso:std:iso:11073:10101", "266560"),
        ("urn:iso:std:iso:11073:10101", "x"),
        ("http://example.org", "bpm"),
    ]);
    prop_oneof![
        4 => (any_f64(), unit).prop_map(|(v, (s, c))| json!({"valueQuantity": {"value": v, "system": s, "code": c}})),
        1 => Just(json!({"dataAbsentReason": {"text": "off"}})),
        1 => Just(json!({"valueQuantity": {"value": 70, "comparator": "<", "code": "/min"}})),
        1 => Just(json!({"valueString": "72"})),
        1 => Just(json!({})),
    ]
}

fn fhir_code() -> impl Strategy<Value = Value> {
    let loinc = prop::sample::select(vec![
        "8867-4", "59408-5", "2708-6", "9279-1", "8480-6", "8462-4", "8478-0", "8310-5", "19889-5",
        "8889-8", "85354-9", "85353-1", "9269-2", "x",
    ]);
    let mdc = prop_oneof![
        prop::sample::select(vec![
            147842u32, 150456, 150021, 150364, 188424, 131328, 131330, 150452, 151780
        ]),
        any::<u32>(),
    ];
    prop_oneof![
        loinc.prop_map(|c| json!({"coding": [{"system": "http://loinc.org", "code": c}]})),
        mdc.prop_map(|c| json!({"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": c.to_string()}]})),
        Just(json!({"coding": [
            {"system": "http://loinc.org", "code": "8867-4"},
            {"system": "http://loinc.org", "code": "9279-1"}]})),
        Just(json!({"text": "no coding"})),
    ]
}

fn fhir_time() -> impl Strategy<Value = (String, Value)> {
    let field = prop::sample::select(vec!["effectiveDateTime", "effectiveInstant", "issued"]);
    let value = prop_oneof![
        any_ms().prop_map(|ms| utc_from_ms(ms).to_rfc3339()),
        prop::sample::select(vec![
            "2012",
            "2012-09",
            "2012-09-17",
            "2012-02-30",
            "2012-09-17T10:00:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59+14:00",
            "",
        ])
        .prop_map(str::to_string),
        ".{0,45}",
    ];
    (field, value).prop_map(|(f, v)| (f.to_string(), Value::String(v)))
}

fn sampled_data() -> impl Strategy<Value = Value> {
    let token = prop_oneof![
        6 => (-3000i64..3000).prop_map(|v| v.to_string()),
        2 => (-3000i64..3000, 0u32..8).prop_map(|(v, k)| format!("{}", v as f64 / 10f64.powi(k as i32))),
        1 => prop::sample::select(vec!["E", "L", "U", "1e5", "2147483648", "-2147483649", "NaN", "0x1", "1.5e-9", "1e-60", "-"]).prop_map(str::to_string),
    ];
    (
        prop::collection::vec(token, 0..60),
        prop_oneof![3 => Just(2.0), 1 => any_f64()],
        prop_oneof![3 => Just(0.005), 1 => any_f64()],
        prop_oneof![3 => Just(0.0), 1 => any_f64()],
        prop::option::of(prop::sample::select(vec!["mV", "uV", "V", "1", "mm[Hg]", ""])),
        prop::option::of(0u64..20),
    )
        .prop_map(|(tokens, period, factor, origin, unit, dims)| {
            let mut origin = json!({"value": origin});
            if let Some(u) = unit {
                origin["system"] = json!("http://unitsofmeasure.org");
                origin["code"] = json!(u);
            }
            let mut sd = json!({"origin": origin, "period": period, "factor": factor, "data": tokens.join(" ")});
            if let Some(d) = dims {
                sd["dimensions"] = json!(d);
            }
            sd
        })
}

fn fhir_observation() -> impl Strategy<Value = Value> {
    let status = prop::sample::select(vec![
        "final",
        "amended",
        "corrected",
        "preliminary",
        "registered",
        "cancelled",
        "entered-in-error",
        "unknown",
        "bogus",
    ]);
    let device = prop_oneof![
        Just(Value::Null),
        Just(json!({"reference": "Device/mon-1"})),
        Just(json!({"identifier": {"value": "SN-1"}})),
        ".{0,20}".prop_map(|r| json!({"reference": r})),
    ];
    let component = (fhir_code(), fhir_value()).prop_map(|(code, v)| {
        let mut c = json!({"code": code});
        if let (Some(o), Some(vals)) = (c.as_object_mut(), v.as_object()) {
            o.extend(vals.clone());
        }
        c
    });
    (
        fhir_code(),
        prop_oneof![3 => fhir_value(), 1 => sampled_data().prop_map(|sd| json!({"valueSampledData": sd}))],
        status,
        prop::option::weighted(0.9, fhir_time()),
        device,
        prop::collection::vec(component, 0..3),
    )
        .prop_map(|(code, value, status, time, device, components)| {
            let mut o = json!({"resourceType": "Observation", "status": status, "code": code});
            let obj = o.as_object_mut().expect("object");
            if let Some(vals) = value.as_object() {
                obj.extend(vals.clone());
            }
            if let Some((f, v)) = time {
                obj.insert(f, v);
            }
            if !device.is_null() {
                obj.insert("device".into(), device);
            }
            if !components.is_empty() {
                obj.insert("component".into(), Value::Array(components));
            }
            o
        })
}

proptest! {
    #![proptest_config(cfg(384))]

    /// Arbitrary bytes never panic.
    #[test]
    fn fhir_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        match fhir::decode(&bytes) {
            Ok(b) => check_batch(&b),
            Err(e) => check_error(&e),
        }
    }

    /// Generated Observations and Bundles (codes, units, values, statuses, times, devices,
    /// components, SampledData): a typed result, values in range, waves usable.
    #[test]
    fn fhir_generated(obs in prop::collection::vec(fhir_observation(), 1..5), bundle in any::<bool>()) {
        let doc = if bundle || obs.len() > 1 {
            let entries: Vec<Value> = obs.iter().map(|o| json!({"resource": o})).collect();
            json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
        } else {
            obs[0].clone()
        };
        let bytes = serde_json::to_vec(&doc).expect("json");
        match fhir::decode(&bytes) {
            Ok(b) => check_batch(&b),
            Err(e) => check_error(&e),
        }
    }

    /// Oracle: a final heart rate in /min with a valid time decodes to exactly that value.
    #[test]
    fn fhir_heart_rate_exact(v in 0.0..=350.0f64, ms in 0i64..7_000_000_000_000) {
        let o = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "effectiveDateTime": utc_from_ms(ms).to_rfc3339(),
            "valueQuantity": {"value": v, "system": "http://unitsofmeasure.org", "code": "/min"},
        });
        let b = fhir::decode(&serde_json::to_vec(&o).expect("json")).expect("decodes");
        prop_assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        prop_assert_eq!(b.readings.len(), 1);
        prop_assert_eq!(b.readings[0].vital, Vital::Hr);
        prop_assert!(close_opt(b.readings[0].value, Some(v)), "{:?} for {v}", b.readings[0].value);
        prop_assert_eq!(b.readings[0].t_ms, ms);
    }

    /// Integral SampledData without gaps comes back sample for sample.
    #[test]
    fn fhir_sampled_data_exact(data in prop::collection::vec(any::<i32>(), 1..200), period in prop::sample::select(vec![1.0, 2.0, 8.0, 1000.0])) {
        let tokens: Vec<String> = data.iter().map(i32::to_string).collect();
        let o = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "131330"}]},
            "effectiveDateTime": "2026-11-23T10:00:00Z",
            "valueSampledData": {"origin": {"value": 0}, "period": period, "factor": 0.001, "data": tokens.join(" ")},
        });
        let b = fhir::decode(&serde_json::to_vec(&o).expect("json")).expect("decodes");
        prop_assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        prop_assert_eq!(b.waves.len(), 1);
        prop_assert_eq!(&b.waves[0].data, &data);
        prop_assert_eq!(b.waves[0].rate, 1000.0 / period);
    }

    /// Mutations of the official examples never panic; what decodes is in range.
    #[test]
    fn fhir_mutated_examples(i in any::<prop::sample::Index>(), edits in edits()) {
        let seeds = fhir_seeds();
        let b = mutate(&seeds[i.index(seeds.len())], &edits, JSON_TOKENS);
        match fhir::decode(&b) {
            Ok(b) => check_batch(&b),
            Err(e) => check_error(&e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HL7 v2

const HL7_TOKENS: &[&[u8]] = &[
    b"|",
    b"^",
    b"~",
    b"\\",
    b"&",
    b"\r",
    b"\n",
    b"\\X\\",
    b"\\XZZ\\",
    b"\\X41C3A9\\",
    b"\\F\\",
    b"\\.br\\",
    b"OBX|",
    b"OBR|",
    b"MSH|^~\\&|",
    b"NM",
    b"NA",
    b"MA",
    b"1.0.1",
    b"1.0.1.1.1.1.1.1.1.1.1",
    b"20261123100000+0100",
    b"99991231",
    b"+9999",
    b"NaN",
    b"8388607",
    b"-0",
    b"1e3",
    b"0^MDC_ATTR_SAMP_RATE^MDC",
    b"67981^MDC_ATTR_TIME_PD_SAMP^MDC",
    b"150452^MDC_PULS_OXIM_PLETH^MDC",
    b"\xc3\xa9",
    b"\xff",
];

fn hl7_obx() -> impl Strategy<Value = String> {
    let vt = prop::sample::select(vec!["NM", "NA", "MA", "ST", "CWE", ""]);
    let code = prop::sample::select(vec![
        "147842^MDC_ECG_HEART_RATE^MDC",
        "150456^MDC_PULS_OXIM_SAT_O2^MDC",
        "150021^MDC_PRESS_BLD_NONINV_SYS^MDC",
        "188424^MDC_TEMP_ORAL^MDC",
        "150452^MDC_PULS_OXIM_PLETH^MDC",
        "131330^MDC_ECG_ELEC_POTL_II^MDC",
        "0^MDC_ATTR_SAMP_RATE^MDC",
        "67981^MDC_ATTR_TIME_PD_SAMP^MDC",
        "8867-4^Heart rate^LN",
        "99999^UNKNOWN^MDC",
        "x^y^z",
    ]);
    let value = prop_oneof![
        (-100.0..400.0f64).prop_map(|v| format!("{v:.2}")),
        (-2000i32..2000).prop_map(|v| v.to_string()),
        prop::collection::vec(prop::option::weighted(0.9, -3000i32..3000), 1..40).prop_map(|v| {
            v.iter()
                .map(|s| s.map(|x| x.to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("^")
        }),
        ".{0,12}",
        Just(String::new()),
    ];
    let unit = prop::sample::select(vec![
        "/min",
        "%",
        "mm[Hg]",
        "Cel",
        "[degF]",
        "264864^MDC_DIM_BEAT_PER_MIN^MDC",
        "266560^MDC_DIM_FAHR^MDC",
        "Hz",
        "ms",
        "s",
        "us",
        "",
        "x",
    ]);
    let cid = prop::sample::select(vec![
        "",
        "1",
        "1.0.1",
        "1.0.1.1",
        "1.0.1.2",
        "1.0.1.1.1",
        "a.b",
    ]);
    let status = prop::sample::select(vec!["F", "C", "P", "R", "X", "D", "W", ""]);
    let time = prop_oneof![
        Just(String::new()),
        Just("20261123100000".to_string()),
        Just("20261123100000.1234-0500".to_string()),
        "[0-9]{4,14}",
        "[0-9+.-]{0,20}",
    ];
    let device = prop::sample::select(vec![
        "",
        "0123456789ABCDEF^EUI-64",
        "1^2^FEDCBA9876543210^EUI-64",
    ]);
    (vt, code, value, unit, cid, status, time, device).prop_map(
        |(vt, code, value, unit, cid, status, time, device)| {
            format!("OBX|1|{vt}|{code}|{cid}|{value}|{unit}|||||{status}|||{time}||||{device}")
        },
    )
}

fn hl7_message() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![
            "20261123100000+0100",
            "20261123100000",
            "",
            "1899",
            "bogus",
        ]),
        prop::sample::select(vec!["ORU^R01", "ORU^R01^ORU_R01", "ADT^A01", "ACK"]),
        prop::collection::vec(
            prop_oneof![
                4 => hl7_obx(),
                1 => Just("OBR|1|||x|||20261123090000".to_string()),
                1 => Just("PV1||I|3 WEST ICU^3001^1".to_string()),
            ],
            0..12,
        ),
        prop::sample::select(vec!["\r", "\n", "\r\n"]),
    )
        .prop_map(|(other_delims, truncation, ts, ty, segs, eol)| {
            let mut m = format!("MSH|^~\\&|GW^0011223344556677^EUI-64|FAC|||{ts}||{ty}|C1|P|2.6");
            for s in segs {
                m.push_str(eol);
                m.push_str(&s);
            }
            if truncation {
                // HL7 2.7: a fifth encoding character (truncation).
                m = m.replacen("MSH|^~\\&|", "MSH|^~\\&#|", 1);
            }
            if other_delims {
                // The same message with other separators (escape letters are kept).
                m = m
                    .chars()
                    .map(|c| match c {
                        '|' => '!',
                        '^' => '*',
                        '~' => '$',
                        '\\' => '%',
                        '&' => '@',
                        c => c,
                    })
                    .collect();
            }
            m
        })
}

proptest! {
    #![proptest_config(cfg(384))]

    /// Arbitrary text (alone and behind a valid MSH) never panics in any HL7 entry point.
    #[test]
    fn hl7_arbitrary_text(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let s = String::from_utf8_lossy(&bytes);
        for m in [s.to_string(), format!("MSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6\r{s}")] {
            match hl7v2::decode(&m) {
                Ok(b) => check_batch(&b),
                Err(e) => check_error(&e),
            }
            if let Err(e) = hl7v2::parse_ack(&m) {
                check_error(&e);
            }
            let _ = hl7v2::header(&m);
            let _ = hl7v2::parse(&m);
        }
        let _ = hl7v2::parse_ts(&s, Some(60));
        let _ = fhir::parse_datetime(&s);
        let _ = vigil_core::decode::decode("vigil/v1/4W/1/mon-1/hl7v2", &bytes);
    }

    /// Generated ORU^R01 messages (random OBX types, codes, values, units, containment,
    /// statuses, times, devices, separators and line ends).
    #[test]
    fn hl7_generated(m in hl7_message()) {
        match hl7v2::decode(&m) {
            Ok(b) => check_batch(&b),
            Err(e) => check_error(&e),
        }
    }

    /// Oracle: a final NM heart rate in /min decodes to exactly that value (0 is no reading).
    #[test]
    fn hl7_heart_rate_exact(v in 0u32..=360, frac in 0u32..100) {
        let text = format!("{v}.{frac:02}");
        let m = format!(
            "MSH|^~\\&|GW||||20261123100000+0100||ORU^R01|C1|P|2.6\rOBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.1.1|{text}|/min|||||F"
        );
        let b = hl7v2::decode(&m).expect("decodes");
        let x: f64 = text.parse().expect("number");
        if x > 350.0 {
            prop_assert_eq!(b.readings.len(), 0);
            prop_assert_eq!(b.rejected.len(), 1);
            prop_assert_eq!(b.rejected[0].reason(), "out_of_range");
        } else {
            prop_assert!(b.rejected.is_empty(), "{:?}", b.rejected);
            prop_assert_eq!(b.readings.len(), 1);
            prop_assert_eq!(b.readings[0].value, (x != 0.0).then_some(x));
            prop_assert_eq!(b.readings[0].status, ObsStatus::Final);
            prop_assert_eq!(b.readings[0].t_ms, 1_795_424_400_000);
        }
    }

    /// Mutations of the real messages never panic; what decodes is in range.
    #[test]
    fn hl7_mutated_messages(i in any::<prop::sample::Index>(), edits in edits()) {
        let seeds = hl7_seeds();
        let b = mutate(&seeds[i.index(seeds.len())], &edits, HL7_TOKENS);
        let s = String::from_utf8_lossy(&b);
        match hl7v2::decode(&s) {
            Ok(b) => check_batch(&b),
            Err(e) => check_error(&e),
        }
        let _ = hl7v2::parse_ack(&s);
        let _ = hl7v2::header(&s);
    }

    /// Escaping is undone by unescaping, for any text without control characters.
    #[test]
    fn hl7_escape_round_trip(s in "\\PC{0,40}", d in prop::sample::select(vec!["|^~\\&", "#*!$%"])) {
        let c: Vec<char> = d.chars().collect();
        let delims = hl7v2::Delimiters { field: c[0], component: c[1], repetition: c[2], escape: Some(c[3]), subcomponent: c[4] };
        let e = delims.escape(&s);
        prop_assert!(!e.contains(c[0]) && !e.contains(c[1]) && !e.contains(c[2]) && !e.contains(c[4]));
        prop_assert_eq!(delims.unescape(&e), s);
    }

    /// An ACK Vigil writes reads back with its code and the original control id.
    #[test]
    fn hl7_ack_round_trip(control in "\\PC{0,60}", code in 0u8..3, err in prop::option::of("\\PC{0,80}")) {
        let code = [hl7v2::AckCode::AA, hl7v2::AckCode::AE, hl7v2::AckCode::AR][usize::from(code)];
        let ack = hl7v2::ack(&control, code, err.as_deref(), chrono::Utc::now());
        let info = hl7v2::parse_ack(&ack).expect("our ACK parses");
        prop_assert_eq!(info.code, code.as_str());
        prop_assert_eq!(info.control_id, control.trim());
        if code == hl7v2::AckCode::AA {
            prop_assert_eq!(info.error, None);
        } else {
            prop_assert!(info.error.is_some());
        }
    }

    /// Valid HL7 timestamps agree with chrono; anything else is an error, not a panic.
    #[test]
    fn hl7_timestamps(ms in -2_208_902_400_000i64..7_258_032_000_000, off in -14i32 * 60..=14 * 60) {
        let off = off - off % 15;
        let local = utc_from_ms(ms) + chrono::Duration::minutes(i64::from(off));
        let sign = if off < 0 { '-' } else { '+' };
        let s = format!("{}{sign}{:02}{:02}", local.format("%Y%m%d%H%M%S%.3f"), off.abs() / 60, off.abs() % 60);
        prop_assert_eq!(hl7v2::parse_ts(&s, None), Ok(ms));
    }
}

// ---------------------------------------------------------------------------------------------
// MLLP framing

/// A byte-at-a-time model of the documented framing: skip to START; END closes the frame;
/// START inside a frame starts over; a frame over `max` is reported once and dropped up to END.
fn model_frames(stream: &[u8], max: usize) -> Vec<mllp::FrameEvent> {
    #[derive(PartialEq)]
    enum S {
        Idle,
        In,
        Drop,
    }
    let (mut s, mut buf, mut out) = (S::Idle, Vec::new(), Vec::new());
    for &b in stream {
        match s {
            S::Idle if b == mllp::START_BLOCK => {
                buf.clear();
                s = S::In;
            }
            S::Idle => {}
            S::In if b == mllp::END_BLOCK => {
                out.push(mllp::FrameEvent::Frame(std::mem::take(&mut buf)));
                s = S::Idle;
            }
            S::In if b == mllp::START_BLOCK => buf.clear(),
            S::In => {
                buf.push(b);
                if buf.len() > max {
                    out.push(mllp::FrameEvent::TooLarge {
                        prefix: std::mem::take(&mut buf),
                    });
                    s = S::Drop;
                }
            }
            S::Drop if b == mllp::END_BLOCK => s = S::Idle,
            S::Drop => {}
        }
    }
    out
}

/// The first `n` bytes of oversize prefixes: how much the decoder keeps beyond the limit
/// depends on where reads end, by design (it keeps up to 4 KiB of the frame to address an AR).
fn normalise(events: Vec<mllp::FrameEvent>, n: usize) -> Vec<mllp::FrameEvent> {
    events
        .into_iter()
        .map(|e| match e {
            mllp::FrameEvent::TooLarge { mut prefix } => {
                prefix.truncate(n);
                mllp::FrameEvent::TooLarge { prefix }
            }
            f => f,
        })
        .collect()
}

fn push_in_chunks(
    d: &mut mllp::FrameDecoder,
    stream: &[u8],
    cuts: &[usize],
) -> Vec<mllp::FrameEvent> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for c in cuts.into_iter().chain([stream.len()]) {
        out.extend(d.push(&stream[from..c]));
        from = c;
    }
    out
}

/// A stream of MLLP tokens: messages framed properly, garbage, stray framing bytes.
fn mllp_stream() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    let msg = prop::collection::vec(
        any::<u8>().prop_filter("no framing byte", |b| *b != 0x0B && *b != 0x1C),
        0..300,
    );
    let part = prop_oneof![
        6 => msg.prop_map(|m| (mllp::frame(&m), Some(m))),
        1 => prop::collection::vec(any::<u8>(), 0..20).prop_map(|g| (g, None)),
        1 => prop::sample::select(vec![vec![0x0B], vec![0x1C], vec![0x0D], vec![0x1C, 0x0D]]).prop_map(|g| (g, None)),
    ];
    prop::collection::vec(part, 0..10).prop_map(|parts| {
        let mut stream = Vec::new();
        let mut clean = Vec::new();
        for (bytes, m) in parts {
            stream.extend(bytes);
            clean.extend(m);
        }
        (stream, clean)
    })
}

proptest! {
    #![proptest_config(cfg(512))]

    /// Any byte stream, cut anywhere, gives exactly the model's events (oversize prefixes
    /// compared on their first max+1 bytes), with bounded memory.
    #[test]
    fn mllp_matches_model_whatever_the_chunking(
        (stream, _) in mllp_stream(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        max in prop_oneof![Just(0usize), 1usize..64, Just(200usize), Just(4096usize)],
    ) {
        let mut stream = stream;
        stream.extend(noise);
        let mut d = mllp::FrameDecoder::new(max);
        let got = push_in_chunks(&mut d, &stream, &cuts);
        prop_assert!(d.buffered() <= max);
        let keep = (max + 1).min(4096);
        prop_assert_eq!(normalise(got, keep), normalise(model_frames(&stream, max), keep));
    }

    /// Well-framed messages (with garbage between them) come out whole, in order, whatever the
    /// chunking — the same as one push of the whole stream.
    #[test]
    fn mllp_framed_messages_survive_chunking(
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no framing byte", |b| *b != 0x0B && *b != 0x1C), 0..400), 0..8),
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no start byte", |b| *b != 0x0B), 0..16), 8),
        cuts in prop::collection::vec(any::<usize>(), 0..32),
    ) {
        let mut stream = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            stream.extend(&garbage[i % garbage.len()]);
            stream.extend(mllp::frame(m));
        }
        let mut whole = mllp::FrameDecoder::new(mllp::MAX_FRAME_BYTES);
        let once = whole.push(&stream);
        let mut d = mllp::FrameDecoder::new(mllp::MAX_FRAME_BYTES);
        let chunked = push_in_chunks(&mut d, &stream, &cuts);
        let want: Vec<mllp::FrameEvent> = msgs.iter().cloned().map(mllp::FrameEvent::Frame).collect();
        prop_assert_eq!(&once, &want);
        prop_assert_eq!(&chunked, &want);
        prop_assert_eq!(d.buffered(), 0);
    }

    /// Frames carrying generated HL7 decode the same as the message itself.
    #[test]
    fn mllp_then_hl7(m in hl7_message(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let m = m.replace(['\u{b}', '\u{1c}'], "");
        let stream = mllp::frame(m.as_bytes());
        let mut d = mllp::FrameDecoder::new(mllp::MAX_FRAME_BYTES);
        let ev = push_in_chunks(&mut d, &stream, &cuts);
        prop_assert_eq!(ev.len(), 1);
        let mllp::FrameEvent::Frame(f) = &ev[0] else {
            return Err(TestCaseError::fail("not a frame"));
        };
        let text = String::from_utf8_lossy(f);
        prop_assert_eq!(hl7v2::decode(&text), hl7v2::decode(&m));
    }
}

// ---------------------------------------------------------------------------------------------
// The dz waveform codec (a decoder of stored bytes)

fn samples() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![
        // Arbitrary values, extremes included.
        prop::collection::vec(any::<i32>(), 0..300),
        prop::collection::vec(
            prop::sample::select(vec![i32::MIN, i32::MAX, 0, -1, 1]),
            0..64
        ),
        // Smooth and slowly varying (second differences win, zstd helps).
        (0.0..3000.0f64, 1.0..200.0f64, 0usize..2000)
            .prop_map(|(a, p, n)| { (0..n).map(|i| (a * (i as f64 / p).sin()) as i32).collect() }),
        // Random walks and constants.
        (any::<i32>(), prop::collection::vec(-3i32..=3, 0..1500)).prop_map(|(start, steps)| {
            steps
                .iter()
                .scan(start, |x, s| {
                    *x = x.saturating_add(*s);
                    Some(*x)
                })
                .collect()
        }),
    ]
}

proptest! {
    #![proptest_config(cfg(384))]

    /// encode → decode is the identity.
    #[test]
    fn codec_round_trip(data in samples()) {
        let (enc, blob) = codec::encode(&data);
        prop_assert_eq!(codec::decode(enc, &blob, data.len()), Ok(data));
    }

    /// Arbitrary blobs, encodings and sample counts (from a corrupt row) give an error or
    /// exactly `n` samples; never a panic or a huge allocation.
    #[test]
    fn codec_arbitrary_blobs(
        enc in prop::sample::select(vec!["dz", "i16le", "i32le", "lz4", ""]),
        blob in prop::collection::vec(any::<u8>(), 0..512),
        n in prop_oneof![0usize..600, Just(usize::MAX), Just(usize::MAX / 2 + 1), Just(usize::MAX / 4 + 1), Just(1usize << 40)],
    ) {
        if let Ok(v) = codec::decode(enc, &blob, n) {
            prop_assert_eq!(v.len(), n);
        }
    }

    /// Mutated valid blobs (either path, raw varints or zstd) and wrong counts.
    #[test]
    fn codec_mutated_blobs(data in samples(), edits in edits(), dn in -2i64..=2, huge in any::<bool>()) {
        let (enc, blob) = codec::encode(&data);
        let b = mutate(&blob, &edits, &[&[0x80], &[0x81], &[0x82], &[0xff; 10], &[0x28, 0xb5, 0x2f, 0xfd]]);
        let n = if huge { usize::MAX - 3 } else { (data.len() as i64 + dn).max(0) as usize };
        if let Ok(v) = codec::decode(enc, &b, n) {
            prop_assert_eq!(v.len(), n);
        }
    }
}
