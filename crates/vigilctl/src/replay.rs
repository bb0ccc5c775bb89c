//! `vigilctl replay`: publish a recording through the broker in the native contract, at real
//! time or faster.
//!
//! Input: CSV with optional `#` metadata lines (`# sample_rate_hz: 360`), a header row, a time
//! column (`time_s`, `Time [s]`, or `minute` for numerics) and one column per channel. Waveform
//! columns map to channels by name (`MLII`/`II` → ECG_II, `V5` → ECG_V5, `PLETH`, `RESP`, ...;
//! a `_mV` suffix gives the unit, otherwise the signal is normalised, unit `1`). Files sampled
//! below 5 Hz are numerics: columns map to vitals by common names (HR, PULSE, SpO2, RESP/RR,
//! NBPSys, NBPDias, NBPMean, TEMP, WEIGHT, GLUCOSE/GLU) or by `--map COL=CODE`, with values in
//! the vital's unit (weight in kg, glucose in mg/dL); a blank or 0 means "no reading".
//!
//! Samples are quantised losslessly: each column's factor is the greatest common step of its
//! values (e.g. 0.005 mV for MIT-BIH), so the stored integers reproduce the file exactly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use vigil_core::codes::{self, ChannelInfo, Vital};
use vigil_core::config::{BrokerSection, BrokerSettings, BrokerUrl};
use vigil_core::telemetry::{
    utc_from_ms, valid_segment, ObservationPayload, VitalsPayload, WavePayload, CONTRACT_VERSION,
};
use vigil_sim::device::DeviceLink;

use crate::history::parse_bed;

#[derive(Args)]
pub struct ReplayArgs {
    /// The recording (CSV).
    file: PathBuf,
    #[arg(long)]
    broker: BrokerUrl,
    #[command(flatten)]
    auth: crate::BrokerAuthArgs,
    /// `ward/bed` to publish as.
    #[arg(long)]
    bed: String,
    /// Device id (default `replay-<bed>`).
    #[arg(long)]
    device: Option<String>,
    /// Playback speed: 1 = real time, 10 = ten times faster.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Waveform chunk length in milliseconds.
    #[arg(long, default_value_t = 250)]
    chunk_ms: u64,
    /// Column mapping overrides, `COL=NAME` (NAME a channel such as ECG_II or a vital such as HR).
    #[arg(long = "map", value_parser = parse_map)]
    map: Vec<(String, String)>,
}

fn parse_map(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| format!("{s:?}: expected COL=NAME"))
}

/// A parsed recording.
#[derive(Debug)]
pub struct Recording {
    pub rate: Option<f64>,
    pub header: Vec<String>,
    /// Column-major values as written (text kept for exact quantisation).
    pub columns: Vec<Vec<String>>,
    pub times: Vec<f64>,
}

pub fn read_csv(text: &str) -> Result<Recording> {
    let mut rate = None;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = loop {
        let (_, line) = lines.next().ok_or_else(|| anyhow!("no header row"))?;
        if let Some(meta) = line.strip_prefix('#') {
            if let Some(v) = meta.trim().strip_prefix("sample_rate_hz:") {
                let r: f64 = v.trim().parse().context("sample_rate_hz")?;
                if !(r > 0.0 && r <= 10_000.0) {
                    bail!("sample_rate_hz {r} out of range");
                }
                rate = Some(r);
            }
            continue;
        }
        break line
            .split(',')
            .map(|h| h.trim().to_string())
            .collect::<Vec<_>>();
    };
    if header.len() < 2 {
        bail!("expected a time column and at least one data column");
    }
    let mut columns = vec![Vec::new(); header.len() - 1];
    let mut times = Vec::new();
    for (n, line) in lines {
        if line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != header.len() {
            bail!(
                "line {}: {} cells, expected {}",
                n + 1,
                cells.len(),
                header.len()
            );
        }
        let t: f64 = cells[0]
            .parse()
            .map_err(|_| anyhow!("line {}: bad time {:?}", n + 1, cells[0]))?;
        times.push(t);
        for (col, cell) in columns.iter_mut().zip(&cells[1..]) {
            col.push((*cell).to_string());
        }
    }
    if times.is_empty() {
        bail!("no data rows");
    }
    Ok(Recording {
        rate,
        header,
        columns,
        times,
    })
}

/// The rate from the metadata, else from the span of the time column (robust to rounded
/// time stamps, e.g. BIDMC's after 100 s).
fn sample_rate(rec: &Recording) -> Option<f64> {
    if rec.rate.is_some() {
        return rec.rate;
    }
    let (first, last) = (*rec.times.first()?, *rec.times.last()?);
    let minutes = rec.header[0].to_ascii_lowercase().starts_with("min");
    let span_s = (last - first) * if minutes { 60.0 } else { 1.0 };
    if rec.times.len() < 2 || span_s <= 0.0 {
        return None;
    }
    let r = (rec.times.len() - 1) as f64 / span_s;
    Some(if r >= 1.0 {
        (r * 1000.0).round() / 1000.0
    } else {
        r
    })
}

fn channel_for(name: &str) -> Option<&'static ChannelInfo> {
    let base = name
        .trim()
        .trim_end_matches("_mV")
        .trim_end_matches("_mv")
        .to_ascii_uppercase();
    let ch = match base.as_str() {
        "MLII" | "II" | "ECG_II" => "ECG_II",
        "I" | "ECG_I" => "ECG_I",
        "III" | "ECG_III" => "ECG_III",
        "V5" | "ECG_V5" => "ECG_V5",
        "PLETH" | "PPG" => "PLETH",
        "RESP" | "IMPEDANCE" => "RESP",
        _ => return None,
    };
    codes::channel(ch)
}

fn vital_for(name: &str) -> Option<Vital> {
    let n = name
        .trim()
        .to_ascii_uppercase()
        .replace([' ', '_', '-'], "");
    Some(match n.as_str() {
        "HR" | "HEARTRATE" => Vital::Hr,
        "PULSE" | "PR" => Vital::Pr,
        "SPO2" => Vital::SpO2,
        "RESP" | "RR" | "RESPRATE" => Vital::Rr,
        "NBPSYS" | "NIBPSYS" | "SYS" | "ABPSYS" => Vital::NibpSys,
        "NBPDIAS" | "NBPDIA" | "NIBPDIA" | "DIA" => Vital::NibpDia,
        "NBPMEAN" | "NIBPMEAN" | "MEAN" => Vital::NibpMean,
        "TEMP" | "TEMPERATURE" => Vital::Temp,
        "ETCO2" => Vital::EtCo2,
        "WEIGHT" | "BODYWEIGHT" => Vital::Weight,
        "GLUCOSE" | "GLU" | "BLOODGLUCOSE" => Vital::Glucose,
        _ => return Vital::from_name(name),
    })
}

/// Lossless integer quantisation of decimal text: (factor, integers).
pub fn quantise(cells: &[String]) -> Result<(f64, Vec<i32>)> {
    let decimals = cells
        .iter()
        .map(|c| c.split_once('.').map_or(0, |(_, f)| f.len()))
        .max()
        .unwrap_or(0);
    if decimals > 9 {
        bail!("more than 9 decimals");
    }
    let scale = 10f64.powi(decimals as i32);
    let ints: Vec<i64> = cells
        .iter()
        .map(|c| {
            let v: f64 = c.parse().map_err(|_| anyhow!("bad number {c:?}"))?;
            if !v.is_finite() {
                bail!("non-finite value {c:?}");
            }
            Ok((v * scale).round() as i64)
        })
        .collect::<Result<_>>()?;
    let g = ints.iter().fold(0i64, |g, &x| gcd(g, x.abs())).max(1);
    let data = ints
        .iter()
        .map(|&x| i32::try_from(x / g).map_err(|_| anyhow!("value out of range")))
        .collect::<Result<_>>()?;
    Ok((g as f64 / scale, data))
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

pub async fn run(mut a: ReplayArgs) -> Result<()> {
    if !(a.speed > 0.0 && a.speed.is_finite()) {
        bail!("--speed must be positive");
    }
    let bed = parse_bed(&a.bed)?;
    let device = a
        .device
        .clone()
        .unwrap_or_else(|| format!("replay-{}", bed.bed));
    if !valid_segment(&device) {
        bail!("device id {device:?}: 1-64 characters of A-Z a-z 0-9 . _ -");
    }
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let rec = read_csv(&text).with_context(|| format!("parsing {}", a.file.display()))?;
    let rate = sample_rate(&rec).ok_or_else(|| anyhow!("cannot tell the sample rate"))?;
    let overrides: BTreeMap<&str, &str> = a
        .map
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let duration_s = rec.times.len() as f64 / rate;
    // Waveforms: stamp the recording so that it ends about when playback ends (times never run
    // ahead of the station clock, whatever the speed). Numerics are stamped as they are sent.
    let start_ms =
        vigil_core::store::now_ms() - (duration_s * 1000.0 * (1.0 - 1.0 / a.speed)) as i64;
    let auth = std::mem::take(&mut a.auth);
    let settings: BrokerSettings = auth
        .apply(BrokerSection::default(), Some(&a.broker))
        .settings()?
        .ok_or_else(|| anyhow!("no broker"))?;
    let opts = settings.mqtt_options(&format!("{device}-replay"))?;
    let link = DeviceLink::connect(opts, bed.clone(), device.clone()).await;
    let result = if rate >= 5.0 {
        replay_waves(&a, &rec, rate, &overrides, start_ms, link).await
    } else {
        replay_numerics(&a, &rec, &overrides, link).await
    };
    let (queued, acked) = result?;
    eprintln!(
        "replayed {} rows of {} to {bed} as {device}: {queued} messages, {acked} acknowledged",
        rec.times.len(),
        a.file.display()
    );
    if acked < queued {
        bail!(
            "{} messages were not acknowledged by the broker",
            queued - acked
        );
    }
    Ok(())
}

async fn pace(start: Instant, offset_s: f64, speed: f64) {
    let due = start + Duration::from_secs_f64(offset_s / speed);
    tokio::time::sleep_until(due.into()).await;
}

async fn replay_waves(
    a: &ReplayArgs,
    rec: &Recording,
    rate: f64,
    overrides: &BTreeMap<&str, &str>,
    start_ms: i64,
    mut link: DeviceLink,
) -> Result<(u64, u64)> {
    struct Col {
        channel: &'static ChannelInfo,
        unit: &'static str,
        factor: f64,
        data: Vec<i32>,
    }
    let mut cols = Vec::new();
    for (name, cells) in rec.header[1..].iter().zip(&rec.columns) {
        let channel = match overrides.get(name.as_str()) {
            Some(n) => Some(
                codes::channel(n).ok_or_else(|| anyhow!("--map {name}={n}: unknown channel"))?,
            ),
            None => channel_for(name),
        };
        let Some(channel) = channel else {
            eprintln!("column {name:?} skipped (no channel; use --map {name}=CHANNEL)");
            continue;
        };
        let unit = if name.ends_with("_mV") || name.ends_with("_mv") {
            channel.unit
        } else {
            "1"
        };
        let (factor, data) = quantise(cells).with_context(|| format!("column {name}"))?;
        eprintln!(
            "column {name} -> {} ({unit}), {} samples at {rate} Hz, step {factor}",
            channel.name,
            data.len()
        );
        cols.push(Col {
            channel,
            unit,
            factor,
            data,
        });
    }
    if cols.is_empty() {
        bail!("no waveform column maps to a channel");
    }
    let n = rec.times.len();
    let per_chunk = ((rate * a.chunk_ms as f64 / 1000.0).round() as usize).max(1);
    let start = Instant::now();
    for (seq, from) in (0..n).step_by(per_chunk).enumerate() {
        let to = (from + per_chunk).min(n);
        pace(start, from as f64 / rate, a.speed).await;
        for c in &cols {
            let p = WavePayload {
                v: CONTRACT_VERSION,
                device: link.device.clone(),
                channel: c.channel.name.to_string(),
                unit: c.unit.to_string(),
                t0: utc_from_ms(start_ms + (from as f64 * 1000.0 / rate).round() as i64),
                rate,
                seq: seq as u64,
                origin: 0.0,
                factor: c.factor,
                data: c.data[from..to].to_vec(),
            };
            link.wave(&p).await;
        }
    }
    Ok(link.close(Duration::from_secs(30)).await)
}

async fn replay_numerics(
    a: &ReplayArgs,
    rec: &Recording,
    overrides: &BTreeMap<&str, &str>,
    mut link: DeviceLink,
) -> Result<(u64, u64)> {
    let mut cols = Vec::new();
    for (i, name) in rec.header[1..].iter().enumerate() {
        let vital = match overrides.get(name.as_str()) {
            Some(n) => Some(
                Vital::from_name(n)
                    .or_else(|| n.parse().ok().and_then(Vital::from_mdc))
                    .ok_or_else(|| anyhow!("--map {name}={n}: unknown vital"))?,
            ),
            None => vital_for(name),
        };
        match vital {
            Some(v) => cols.push((i, v)),
            None => eprintln!("column {name:?} skipped (no vital; use --map {name}=CODE)"),
        }
    }
    if cols.is_empty() {
        bail!("no column maps to a vital");
    }
    let minutes = rec.header[0].to_ascii_lowercase().starts_with("min");
    let t0 = rec.times[0];
    let start = Instant::now();
    // Each row is stamped with the time it is sent (its offset divided by the speed): the
    // station alarms only on readings taken within its live window, and a recording played
    // fast is still a live patient to the station. `start_ms` (the waveform stamping) would
    // put the first rows of a long recording played at speed in the past (waveform chunks
    // keep their sample rate, so they cannot be compressed the same way).
    let sent_ms = vigil_core::store::now_ms();
    for (row, &t) in rec.times.iter().enumerate() {
        let offset_s = (t - t0) * if minutes { 60.0 } else { 1.0 };
        pace(start, offset_s, a.speed).await;
        let obs = cols
            .iter()
            .map(|&(i, vital)| {
                let cell = &rec.columns[i][row];
                // A blank, NaN or 0 from a monitor means "no reading".
                let value = cell
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v != 0.0);
                ObservationPayload {
                    mdc: vital.mdc(),
                    value,
                    unit: vital.unit().to_string(),
                    t: None,
                    status: Default::default(),
                }
            })
            .collect();
        let p = VitalsPayload {
            v: CONTRACT_VERSION,
            device: link.device.clone(),
            t: utc_from_ms(sent_ms + (offset_s * 1000.0 / a.speed).round() as i64),
            seq: row as u64,
            obs,
        };
        link.vitals(&p).await;
    }
    Ok(link.close(Duration::from_secs(30)).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantise_finds_the_common_step() {
        let cells: Vec<String> = ["-0.145", "-0.065", "0.250", "1.000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (f, d) = quantise(&cells).expect("quantise");
        assert!((f - 0.005).abs() < 1e-12, "{f}");
        assert_eq!(d, vec![-29, -13, 50, 200]);
        let (f, d) = quantise(&["0.35386".to_string(), "0.4".to_string()]).expect("quantise");
        assert!((f - 0.00002).abs() < 1e-15, "{f}");
        assert_eq!(d, vec![17693, 20000]);
        assert!(quantise(&["x".to_string()]).is_err());
        assert!(quantise(&["inf".to_string()]).is_err());
    }

    #[test]
    fn csv_with_and_without_metadata() {
        let r = read_csv(
            "# sample_rate_hz: 360\ntime_s,MLII_mV,V5_mV\n0.0,-0.1,0.2\n0.0028,-0.105,0.2\n",
        )
        .expect("parse");
        assert_eq!(r.rate, Some(360.0));
        assert_eq!(r.columns.len(), 2);
        assert_eq!(sample_rate(&r), Some(360.0));
        let r = read_csv("Time [s], RESP, PLETH\n0,0.1,0.2\n0.008,0.1,0.2\n0.016,0.1,0.3\n")
            .expect("parse");
        assert_eq!(sample_rate(&r), Some(125.0));
        assert_eq!(r.header[1], "RESP");
        assert!(read_csv("time_s,a\n0,1,2\n").is_err());
        assert!(read_csv("").is_err());
        assert_eq!(channel_for("MLII_mV").map(|c| c.name), Some("ECG_II"));
        assert_eq!(channel_for("AVR"), None);
        assert_eq!(vital_for("NBPSys"), Some(Vital::NibpSys));
        assert_eq!(vital_for("SpO2"), Some(Vital::SpO2));
        assert_eq!(vital_for("Body weight"), Some(Vital::Weight));
        assert_eq!(vital_for("glucose"), Some(Vital::Glucose));
        assert_eq!(vital_for("GLU"), Some(Vital::Glucose));
    }
}
