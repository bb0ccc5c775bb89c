//! Research export as CSV, written as it is fed ([`CsvWriter`]).
//!
//! One writer, two outputs: readings and waveform samples have different columns, so each goes
//! to its own `std::io::Write` (two files; pass [`std::io::sink`] for the one not wanted).
//! The feeding API is the FHIR writer's ([`super::fhir_export::FhirWriter`]).
//!
//! - **Readings**: `time_utc,vital,value,unit,status,device,loinc,mdc`, one row per reading.
//!   `value` is the shortest decimal that reads back as the same `f64`, empty for no reading;
//!   `unit` is the vital's UCUM code; `status` the
//!   [`ObsStatus`](crate::telemetry::ObsStatus) name (including
//!   `unverified`, which FHIR cannot carry).
//! - **Waveforms**: `time_utc,channel,value,unit,device`, one row per sample. `value` is
//!   `origin + factor × sample` computed exactly in decimal from the shortest decimals of
//!   `origin` and `factor` (0.005 × 3 is `0.015`, not `0.015000000000000001`), falling back to
//!   `f64` arithmetic only for numbers beyond 30 digits. The time of sample `i` is
//!   `t0 + i × 1000 / rate` rounded to the millisecond (the exact time is not representable
//!   with milliseconds at 360 Hz; the metadata says so).
//! - **Metadata**: both outputs start with lines beginning with `#`: what the file holds, the
//!   export id, the subject (the pseudonym, or the identity; `none` when no patient was
//!   admitted), the bed (identified only), the period, the generation time and, when
//!   de-identified, that dates are shifted by an undisclosed offset and devices renamed. Then
//!   the header row. Control characters in names are replaced by spaces.
//! - **Times**: ISO 8601 UTC with milliseconds and `Z`.
//! - Fields are quoted (RFC 4180) when they contain a comma, a quote or a line break (only a
//!   device id can).
//!
//! Common rules (order, time range, de-identification, errors): [`super::export`].

use std::borrow::Cow;
use std::io::Write;

use super::export::{end_ms, iso, Rules};
pub use super::export::{
    ExportCounts, ExportError, ExportHeader, ExportReading, ExportWave, Subject,
};
use super::parse_decimal;

/// Header row of the readings output.
pub const READINGS_HEADER: &str = "time_utc,vital,value,unit,status,device,loinc,mdc";
/// Header row of the waveform output.
pub const WAVES_HEADER: &str = "time_utc,channel,value,unit,device";

/// Writes an export as two CSV outputs (readings, waveform samples) as it is fed.
///
/// Feed readings in time order and each channel's stretches in time order, then call
/// [`CsvWriter::finish`] (which flushes both outputs). After an error the output is
/// incomplete: discard it.
#[derive(Debug)]
pub struct CsvWriter<R: Write, V: Write> {
    readings: R,
    waves: V,
    rules: Rules,
    counts: ExportCounts,
}

impl<R: Write, V: Write> CsvWriter<R, V> {
    /// Check the header and write the metadata block and header row to both outputs.
    pub fn new(readings: R, waves: V, header: ExportHeader) -> Result<Self, ExportError> {
        let rules = Rules::new(&header.subject);
        let generated = iso(rules.time(header.generated_ms, "generation time")?);
        let (start, end) = header.period_ms;
        let start_t = iso(rules.time(start, "period start")?);
        let end_t = iso(rules.time(end, "period end")?);
        if start > end {
            return Err(ExportError::Header {
                field: "period_ms",
                why: "the start is after the end".into(),
            });
        }
        let mut meta = vec![
            format!("export: {}", header.bundle_id),
            format!("subject: {}", subject_line(&header.subject)),
        ];
        if let (false, Some(bed)) = (rules.deidentified(), &header.bed) {
            meta.push(format!("bed: {bed}"));
        }
        meta.push(format!("period: {start_t} to {end_t} (UTC)"));
        meta.push(format!("generated: {generated}"));
        if rules.deidentified() {
            meta.push("dates shifted by an undisclosed offset (de-identified export)".into());
            meta.push(
                "devices renamed device-1, device-2, ... in order of first appearance".into(),
            );
        }
        meta.push("times: ISO 8601 UTC with milliseconds".into());
        let mut me = CsvWriter {
            readings,
            waves,
            rules,
            counts: ExportCounts::default(),
        };
        let mut r =
            String::from("# Vigil research export: vital-sign readings, one row per reading\n");
        let mut w = String::from("# Vigil research export: waveform samples, one row per sample\n");
        for line in &meta {
            let line = format!("# {}\n", sanitize(line));
            r.push_str(&line);
            w.push_str(&line);
        }
        r.push_str("# value: in the unit column (UCUM); empty = no reading\n");
        w.push_str(
            "# value: origin + factor x sample, in the unit column (UCUM); time: first sample + \
             i / rate, rounded to the millisecond\n",
        );
        r.push_str(READINGS_HEADER);
        r.push('\n');
        w.push_str(WAVES_HEADER);
        w.push('\n');
        me.readings.write_all(r.as_bytes())?;
        me.waves.write_all(w.as_bytes())?;
        Ok(me)
    }

    /// Write one reading row. Errors: NaN or infinite value, time out of range, out of time
    /// order, I/O.
    pub fn reading(&mut self, r: &ExportReading) -> Result<(), ExportError> {
        self.rules.check_reading(r)?;
        let t = iso(self.rules.time(r.t_ms, r.vital.name())?);
        let device = self.rules.device(&r.device);
        let info = r.vital.info();
        let value = r.value.map(|v| v.to_string()).unwrap_or_default();
        writeln!(
            self.readings,
            "{t},{},{value},{},{},{},{},{}",
            info.name,
            info.unit,
            r.status.as_str(),
            quote(&device),
            info.loinc,
            info.mdc
        )?;
        self.counts.readings += 1;
        Ok(())
    }

    /// Write one row per sample of a stretch (nothing when empty). Errors: NaN or infinite
    /// origin, factor or sample value, factor 0, rate outside (0, 10 000] Hz, time out of
    /// range, out of time order for its channel, I/O.
    pub fn wave(&mut self, w: &ExportWave) -> Result<(), ExportError> {
        if !self.rules.check_wave(w)? {
            return Ok(());
        }
        let device = self.rules.device(&w.device);
        let device = quote(&device);
        let ch = w.channel;
        let exact = ExactScale::new(w.origin, w.factor);
        for (i, &d) in w.data.iter().enumerate() {
            let t = iso(self.rules.time(end_ms(w.t0_ms, w.rate, i), ch.name)?);
            let value = exact
                .as_ref()
                .and_then(|e| e.value(d))
                .unwrap_or_else(|| (w.origin + w.factor * f64::from(d)).to_string());
            writeln!(self.waves, "{t},{},{value},{},{device}", ch.name, ch.unit)?;
        }
        self.counts.stretches += 1;
        self.counts.samples += w.data.len() as u64;
        Ok(())
    }

    /// Flush both outputs and hand them back with the counts.
    pub fn finish(mut self) -> Result<(R, V, ExportCounts), ExportError> {
        self.readings.flush()?;
        self.waves.flush()?;
        Ok((self.readings, self.waves, self.counts))
    }
}

fn subject_line(s: &Subject) -> String {
    match s {
        Subject::Identified {
            id,
            name,
            mrn,
            mrn_system,
            dob,
            sex,
        } => format!(
            "{name}, MRN {mrn} ({mrn_system}), born {}, sex {}, patient id {id}",
            dob.as_deref().unwrap_or("unknown"),
            sex.as_deref().unwrap_or("unknown")
        ),
        Subject::Deidentified { pseudonym, .. } => format!("pseudonym {pseudonym}"),
        Subject::None => "none (no patient admitted)".into(),
    }
}

/// A metadata line on one line: control characters become spaces.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A CSV field, quoted when it must be.
fn quote(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// `origin + factor × d` in exact decimal arithmetic: both as integers over 10^`scale`.
#[derive(Debug, Clone, Copy)]
struct ExactScale {
    origin: i128,
    factor: i128,
    scale: u32,
}

impl ExactScale {
    /// From the shortest decimals of `origin` and `factor`; `None` when they do not fit.
    fn new(origin: f64, factor: f64) -> Option<ExactScale> {
        let o = parse_decimal(&origin.to_string(), false)?;
        let f = parse_decimal(&factor.to_string(), false)?;
        let scale = o.scale.max(f.scale);
        let up = |m: i128, s: u32| 10i128.checked_pow(scale - s).and_then(|p| m.checked_mul(p));
        Some(ExactScale {
            origin: up(o.mantissa, o.scale)?,
            factor: up(f.mantissa, f.scale)?,
            scale,
        })
    }

    fn value(&self, d: i32) -> Option<String> {
        let v = self
            .factor
            .checked_mul(i128::from(d))?
            .checked_add(self.origin)?;
        Some(format_scaled(v, self.scale))
    }
}

/// `v × 10^-scale` as a plain decimal without trailing zeros.
fn format_scaled(v: i128, scale: u32) -> String {
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let mut out = String::new();
    if v < 0 {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
        return out;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    out.push_str(int);
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::codes::Vital;
    use crate::interop::export::testdata::{self, DEVICES, T0};
    use crate::telemetry::{BedId, ObsStatus};

    const SHIFT: i64 = -(417 * 86_400_000 + 3_600_000 * 5 + 12_345);

    fn header(subject: Subject) -> ExportHeader {
        ExportHeader {
            bundle_id: "export-42".into(),
            generated_ms: T0 + 86_400_000,
            period_ms: (T0, T0 + 3_600_000),
            subject,
            bed: Some(BedId::new("CCU-EAST", "B12")),
        }
    }

    fn identified() -> Subject {
        Subject::Identified {
            id: "pat-1".into(),
            name: "Johanna Vermeulen".into(),
            mrn: "MRN-7734512".into(),
            mrn_system: "urn:oid:1.2.3.4.5".into(),
            dob: Some("1948-03-17".into()),
            sex: Some("F".into()),
        }
    }

    fn write(
        h: ExportHeader,
        readings: &[ExportReading],
        waves: &[ExportWave],
    ) -> (String, String, ExportCounts) {
        let mut w = CsvWriter::new(Vec::new(), Vec::new(), h).expect("head");
        for r in readings {
            w.reading(r).expect("reading");
        }
        for x in waves {
            w.wave(x).expect("wave");
        }
        let (r, v, c) = w.finish().expect("finish");
        (
            String::from_utf8(r).expect("utf-8"),
            String::from_utf8(v).expect("utf-8"),
            c,
        )
    }

    fn ms(s: &str) -> i64 {
        assert!(s.len() == 24 && s.ends_with('Z'), "{s}");
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    }

    /// The data rows after the `#` block and the header row.
    fn rows<'a>(csv: &'a str, header: &str) -> Vec<Vec<&'a str>> {
        let mut lines = csv.lines();
        let mut line = lines.next();
        while line.is_some_and(|l| l.starts_with('#')) {
            line = lines.next();
        }
        assert_eq!(line, Some(header));
        lines.map(|l| l.split(',').collect()).collect()
    }

    fn check(
        readings_csv: &str,
        waves_csv: &str,
        readings: &[ExportReading],
        waves: &[ExportWave],
        shift: i64,
        dev: &dyn Fn(&str) -> String,
    ) {
        let got = rows(readings_csv, READINGS_HEADER);
        assert_eq!(got.len(), readings.len());
        for (row, r) in got.iter().zip(readings) {
            let info = r.vital.info();
            assert_eq!(row.len(), 8);
            assert_eq!(ms(row[0]), r.t_ms + shift);
            assert_eq!(Vital::from_name(row[1]), Some(r.vital));
            let value = (!row[2].is_empty()).then(|| row[2].parse::<f64>().expect("value"));
            assert_eq!(value, r.value);
            assert_eq!(row[3], info.unit);
            assert_eq!(row[4], r.status.as_str());
            assert_eq!(row[5], dev(&r.device));
            assert_eq!(row[6], info.loinc);
            assert_eq!(row[7], info.mdc.to_string());
        }
        let got = rows(waves_csv, WAVES_HEADER);
        assert_eq!(got.len(), waves.iter().map(|w| w.data.len()).sum::<usize>());
        let mut rows = got.iter();
        for w in waves {
            for (i, &d) in w.data.iter().enumerate() {
                let row = rows.next().expect("row");
                assert_eq!(row.len(), 5);
                assert_eq!(ms(row[0]), end_ms(w.t0_ms, w.rate, i) + shift);
                assert_eq!(row[1], w.channel.name);
                let v: f64 = row[2].parse().expect("value");
                let want = w.origin + w.factor * f64::from(d);
                assert!(
                    (v - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{} vs {want}",
                    row[2]
                );
                assert_eq!(row[3], w.channel.unit);
                assert_eq!(row[4], dev(&w.device));
            }
        }
    }

    #[test]
    fn csv_reads_back() {
        let readings = testdata::readings(60, 7);
        let waves = testdata::waves(true, 11);
        let (r, w, counts) = write(header(identified()), &readings, &waves);
        check(&r, &w, &readings, &waves, 0, &|d| d.to_string());
        assert_eq!(counts.readings, readings.len() as u64);
        assert_eq!(counts.observations, 0);
        for csv in [&r, &w] {
            let meta: Vec<&str> = csv.lines().take_while(|l| l.starts_with('#')).collect();
            let meta = meta.join("\n");
            assert!(
                meta.contains("Johanna Vermeulen, MRN MRN-7734512"),
                "{meta}"
            );
            assert!(meta.contains("# bed: CCU-EAST/B12"));
            assert!(meta
                .contains("# period: 2026-11-23T10:00:00.000Z to 2026-11-23T11:00:00.000Z (UTC)"));
            assert!(meta.contains("# generated: 2026-11-24T10:00:00.000Z"));
            assert!(!meta.contains("shifted"));
        }
        // Statuses FHIR cannot carry stay exact here.
        assert!(r.contains(",unverified,"));
    }

    #[test]
    fn values_are_exact_decimals() {
        let e = ExactScale::new(0.0, 0.005).expect("exact");
        assert_eq!(e.value(3).as_deref(), Some("0.015"));
        assert_eq!(e.value(-2000).as_deref(), Some("-10"));
        assert_eq!(e.value(0).as_deref(), Some("0"));
        let e = ExactScale::new(-1.5, 0.0025).expect("exact");
        assert_eq!(e.value(1).as_deref(), Some("-1.4975"));
        assert_eq!(e.value(600).as_deref(), Some("0"));
        assert_eq!(e.value(-1).as_deref(), Some("-1.5025"));
        let e = ExactScale::new(0.25, 0.0009765625).expect("exact");
        assert_eq!(e.value(1024).as_deref(), Some("1.25"));
        assert!(ExactScale::new(0.0, 1e300).is_none(), "falls back to f64");
        assert_eq!(format_scaled(-5, 3), "-0.005");
        assert_eq!(format_scaled(12_300, 2), "123");
        assert_eq!(format_scaled(7, 0), "7");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(quote("mon-1"), "mon-1");
    }

    #[test]
    fn deidentified_csv() {
        let readings = testdata::readings(30, 9);
        let waves = testdata::waves(false, 9);
        let h = header(Subject::Deidentified {
            pseudonym: "P-0042".into(),
            shift_ms: SHIFT,
        });
        let (r, w, _) = write(h, &readings, &waves);
        for csv in [&r, &w] {
            for secret in [
                "Johanna",
                "Vermeulen",
                "MRN-7734512",
                "7734512",
                "1948-03-17",
                "CCU-EAST",
                "B12",
                "pat-1",
            ]
            .into_iter()
            .chain(DEVICES)
            {
                assert!(!csv.contains(secret), "{secret}");
            }
            assert!(!csv.contains("2026-11-23"), "no real date");
            assert!(csv.contains("# subject: pseudonym P-0042\n"));
            assert!(csv.contains("# dates shifted by an undisclosed offset"));
        }
        let mut names = std::collections::HashMap::new();
        for d in readings
            .iter()
            .map(|r| &r.device)
            .chain(waves.iter().map(|w| &w.device))
        {
            let n = names.len() + 1;
            names
                .entry(d.clone())
                .or_insert_with(|| format!("device-{n}"));
        }
        check(&r, &w, &readings, &waves, SHIFT, &|d| names[d].clone());
    }

    #[test]
    fn csv_errors_and_quoting() {
        let mut w = CsvWriter::new(Vec::new(), Vec::new(), header(Subject::None)).expect("head");
        let mut r = ExportReading {
            t_ms: T0,
            vital: Vital::Hr,
            value: Some(f64::NAN),
            status: ObsStatus::Final,
            device: "a,\"b\"".into(),
        };
        assert!(matches!(w.reading(&r), Err(ExportError::NotFinite { .. })));
        r.value = Some(72.0);
        r.t_ms = 7_289_654_400_000;
        assert!(matches!(
            w.reading(&r),
            Err(ExportError::TimeOutOfRange { .. })
        ));
        r.t_ms = T0;
        w.reading(&r).expect("reading");
        let mut wave = testdata::waves(false, 1).remove(0);
        wave.factor = f64::INFINITY;
        assert!(matches!(w.wave(&wave), Err(ExportError::NotFinite { .. })));
        let (csv, _, _) = w.finish().expect("finish");
        let csv = String::from_utf8(csv).expect("utf-8");
        assert!(
            csv.ends_with(",72,/min,final,\"a,\"\"b\"\"\",8867-4,147842\n"),
            "{csv}"
        );
        assert!(csv.contains("# subject: none (no patient admitted)"));
    }
}
