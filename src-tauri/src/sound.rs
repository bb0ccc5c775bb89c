//! The station's alarm sound, played natively (cpal: PulseAudio where its server runs, else
//! ALSA) rather than by the web page: it sounds from start-up without anyone touching the
//! window, whatever the page is doing, and the station knows when it cannot sound: no output
//! device, a device that fails or stalls. That is reported ([`SoundState::Failed`]) and the
//! station raises it as a technical alarm (`AUDIO_FAILED`), shown like any other alarm.
//!
//! The signals follow IEC 60601-1-8 (Tables 3 and 4): the burst of the highest-priority audible
//! alarm repeats until nothing audible is left. [`Synth`] (pure, unit-tested) makes the samples;
//! [`Player`] owns the output stream on its own thread and reopens it after a failure.
//!
//! Terms (IEC 60601-1-8, 3.x): pulse duration td is between the 50 % points of rise and fall;
//! pulse spacing ts from the end of one pulse to the start of the next; interburst interval tb
//! from the end of a burst's last pulse to the start of the next burst.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use vigil_core::alarms::{ActiveAlarm, Priority};

// ---- IEC 60601-1-8 signal characteristics -------------------------------------------------

/// Fundamental frequency f0 per priority (IEC: 150–1000 Hz).
pub fn fundamental_hz(p: Priority) -> f64 {
    match p {
        Priority::High => 880.0,
        Priority::Medium => 660.0,
        Priority::Low => 520.0,
    }
}

/// Relative amplitudes of harmonics 1..5 (IEC: at least 4 in 300–4000 Hz, each within 15 dB
/// of the fundamental; the smallest, 0.25, is −12 dB).
pub const HARMONICS: [f64; 5] = [1.0, 0.7, 0.5, 0.35, 0.25];

/// Effective pulse duration td, ms (IEC: high 75–200, medium and low 125–250).
pub fn pulse_ms(p: Priority) -> f64 {
    match p {
        Priority::High => 150.0,
        Priority::Medium | Priority::Low => 200.0,
    }
}

/// Pulse spacing ts inside a group, ms (IEC: high 50–125, medium and low 125–250).
pub fn spacing_ms(p: Priority) -> f64 {
    match p {
        Priority::High => 100.0,
        Priority::Medium | Priority::Low => 200.0,
    }
}

/// Interburst interval tb, ms (IEC: high 2.5–15 s, medium 2.5–30 s, low more than 15 s).
pub fn interburst_ms(p: Priority) -> f64 {
    match p {
        Priority::High => 5_000.0,
        Priority::Medium => 8_000.0,
        Priority::Low => 20_000.0,
    }
}

/// Rise and fall, as a fraction of td (IEC: rise 10–20 % of td).
pub const RAMP_FRACTION: f64 = 0.15;
/// High priority: 10 pulses as 3 + 2, 3 + 2, with this gap between the two halves (IEC
/// 0.35–1.30 s).
pub const HIGH_MID_GAP_MS: f64 = 600.0;

/// Pulses of one burst: (start, duration) in ms from the burst start, effective (50 %) values.
pub fn burst(p: Priority) -> Vec<(f64, f64)> {
    let td = pulse_ms(p);
    let x = spacing_ms(p);
    let groups: &[usize] = match p {
        Priority::High => &[3, 2, 3, 2],
        Priority::Medium => &[3],
        Priority::Low => &[2],
    };
    let mut out = Vec::new();
    let mut t = 0.0;
    for (g, &n) in groups.iter().enumerate() {
        if g > 0 {
            // 2x + td between the 3 and the 2; the long gap between the two 3 + 2 halves.
            t += if g % 2 == 1 {
                2.0 * x + td
            } else {
                HIGH_MID_GAP_MS
            } - x;
        }
        for _ in 0..n {
            out.push((t, td));
            t += td + x;
        }
    }
    out
}

/// From the start of the first pulse to the end of the last, ms.
pub fn burst_length_ms(p: Priority) -> f64 {
    burst(p).last().map_or(0.0, |&(s, d)| s + d)
}

/// Start-to-start period of the repeating burst, ms.
pub fn burst_period_ms(p: Priority) -> f64 {
    burst_length_ms(p) + interburst_ms(p)
}

/// Gain (0..1) of a burst at `t_ms` from its start: linear ramps of RAMP_FRACTION·td centred on
/// each pulse's effective start and end.
pub fn burst_gain(pulses: &[(f64, f64)], t_ms: f64) -> f64 {
    for &(start, dur) in pulses {
        let half = RAMP_FRACTION * dur / 2.0;
        if t_ms < start - half || t_ms > start + dur + half {
            continue;
        }
        return if t_ms < start + half {
            (t_ms - (start - half)) / (2.0 * half)
        } else if t_ms > start + dur - half {
            ((start + dur + half) - t_ms) / (2.0 * half)
        } else {
            1.0
        };
    }
    0.0
}

// ---- volume ---------------------------------------------------------------------------------

// The range a volume is clamped into (never below the minimum) is the station setting's; the
// player enforces it again.
pub use vigil_core::settings::{clamp_volume, MAX_VOLUME, MIN_VOLUME};

// ---- synthesis ------------------------------------------------------------------------------

fn priority_code(p: Option<Priority>) -> u8 {
    match p {
        None => 0,
        Some(Priority::Low) => 1,
        Some(Priority::Medium) => 2,
        Some(Priority::High) => 3,
    }
}

fn priority_of(code: u8) -> Option<Priority> {
    match code {
        1 => Some(Priority::Low),
        2 => Some(Priority::Medium),
        3 => Some(Priority::High),
        _ => None,
    }
}

/// The samples of the alarm signal, one output buffer at a time.
pub struct Synth {
    rate: f64,
    playing: Option<Priority>,
    pulses: Vec<(f64, f64)>,
    period: u64,
    /// Sample index within the current burst period.
    pos: u64,
    /// Samples since start, for the oscillator phase.
    clock: u64,
    norm: f64,
}

impl Synth {
    pub fn new(sample_rate: u32) -> Synth {
        Synth {
            rate: f64::from(sample_rate.max(1)),
            playing: None,
            pulses: Vec::new(),
            period: 1,
            pos: 0,
            clock: 0,
            norm: HARMONICS.iter().sum(),
        }
    }

    /// Fill `out` (interleaved, `channels` per frame) with the signal of `wanted` at `volume`
    /// percent. A change of priority starts the new burst at once. Returns the bursts started.
    pub fn fill(
        &mut self,
        out: &mut [f32],
        channels: usize,
        wanted: Option<Priority>,
        volume: u8,
    ) -> u64 {
        let channels = channels.max(1);
        let mut started = 0;
        if wanted != self.playing {
            self.playing = wanted;
            self.pos = 0;
            if let Some(p) = wanted {
                self.pulses = burst(p);
                self.period = ((burst_period_ms(p) / 1000.0) * self.rate).round().max(1.0) as u64;
            }
        }
        let amp = f64::from(volume.min(MAX_VOLUME)) / 100.0 / self.norm;
        for frame in out.chunks_mut(channels) {
            let v = match self.playing {
                None => 0.0,
                Some(p) => {
                    if self.pos == 0 {
                        started += 1;
                    }
                    let t_ms = self.pos as f64 * 1000.0 / self.rate;
                    let g = burst_gain(&self.pulses, t_ms);
                    let mut v = 0.0;
                    if g > 0.0 {
                        let t = self.clock as f64 / self.rate;
                        let f0 = fundamental_hz(p);
                        for (k, a) in HARMONICS.iter().enumerate() {
                            v += a * (std::f64::consts::TAU * f0 * (k + 1) as f64 * t).sin();
                        }
                    }
                    self.pos = (self.pos + 1) % self.period;
                    v * g * amp
                }
            };
            self.clock = self.clock.wrapping_add(1);
            for s in frame.iter_mut() {
                *s = v as f32;
            }
        }
        started
    }
}

// ---- the player ------------------------------------------------------------------------------

/// What the station's sound is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SoundState {
    /// Not opened yet.
    Starting,
    /// An output device is open and running (silent or sounding).
    Ready,
    /// No sound can be produced (no device, a failing or stalled device).
    Failed,
}

/// The sound as the window shows it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct SoundOut {
    pub state: SoundState,
    pub error: Option<String>,
    /// The output device in use.
    pub device: Option<String>,
    /// Percent; never below `min_volume`.
    pub volume: u8,
    pub min_volume: u8,
    /// The priority sounding now (`high`, `medium`, `low`), if any.
    #[ts(as = "Option<vigil_core::alarms::Priority>")]
    pub priority: Option<&'static str>,
    /// Bursts played since start (the tests count them).
    pub bursts: u64,
}

struct Shared {
    wanted: AtomicU8,
    volume: AtomicU8,
    bursts: AtomicU64,
    /// Output buffers filled: the device is consuming samples.
    callbacks: AtomicU64,
    status: Mutex<(SoundState, Option<String>, Option<String>)>,
}

/// The station's alarm sound. Cheap to clone.
#[derive(Clone)]
pub struct Player {
    shared: Arc<Shared>,
}

/// How long to wait before opening the device again after a failure.
const RETRY: Duration = Duration::from_secs(5);
/// A running stream that fills no buffer for this long has stalled: the device failed.
const STALL: Duration = Duration::from_secs(3);

impl Player {
    /// Start the player on its own thread: `device` is an output device id as cpal names it
    /// (`alsa:default`), `None` for the system's default output.
    pub fn spawn(device: Option<String>, volume: u8) -> Player {
        let shared = Arc::new(Shared {
            wanted: AtomicU8::new(0),
            volume: AtomicU8::new(clamp_volume(i64::from(volume))),
            bursts: AtomicU64::new(0),
            callbacks: AtomicU64::new(0),
            status: Mutex::new((SoundState::Starting, None, None)),
        });
        let sh = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("vigil-sound".into())
            .spawn(move || run(&sh, device.as_deref()));
        if let Err(e) = spawned {
            set_status(
                &shared,
                SoundState::Failed,
                Some(format!("cannot start: {e}")),
                None,
            );
        }
        Player { shared }
    }

    /// Sound the highest priority among the audible alarms (silence if none).
    pub fn update(&self, alarms: &[ActiveAlarm]) {
        let p = alarms
            .iter()
            .filter(|a| a.audible)
            .map(|a| a.priority)
            .max();
        self.shared
            .wanted
            .store(priority_code(p), Ordering::Relaxed);
    }

    pub fn set_volume(&self, percent: u8) {
        self.shared
            .volume
            .store(clamp_volume(i64::from(percent)), Ordering::Relaxed);
    }

    pub fn status(&self) -> SoundOut {
        let (state, error, device) = self
            .shared
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        SoundOut {
            state,
            error,
            device,
            volume: self.shared.volume.load(Ordering::Relaxed),
            min_volume: MIN_VOLUME,
            priority: priority_of(self.shared.wanted.load(Ordering::Relaxed)).map(Priority::as_str),
            bursts: self.shared.bursts.load(Ordering::Relaxed),
        }
    }
}

fn set_status(shared: &Shared, state: SoundState, error: Option<String>, device: Option<String>) {
    let mut st = shared.status.lock().unwrap_or_else(|p| p.into_inner());
    if st.0 != state || st.1 != error {
        match state {
            SoundState::Failed => {
                tracing::error!(target: "vigil::alarm", error = ?error, "ALARM SOUND FAILED: alarms cannot be heard at this station")
            }
            _ => tracing::info!(target: "vigil::alarm", device = ?device, "alarm sound ready"),
        }
    }
    *st = (state, error, device);
}

/// The player thread: open, watch, reopen after a failure. Never returns.
fn run(shared: &Arc<Shared>, device: Option<&str>) {
    loop {
        let (err_tx, err_rx) = mpsc::channel::<String>();
        match open(shared, device, err_tx) {
            Ok((stream, name)) => {
                set_status(shared, SoundState::Ready, None, Some(name.clone()));
                let mut last = shared.callbacks.load(Ordering::Relaxed);
                let mut last_change = Instant::now();
                let mut reported = 0u32;
                let why = loop {
                    match err_rx.recv_timeout(Duration::from_millis(500)) {
                        // A stream error (an underrun on a busy machine, a transient I/O
                        // error) is logged; the stream goes on. The device has failed when it
                        // stops taking samples (below).
                        Ok(e) => {
                            reported += 1;
                            if reported <= 5 || reported.is_power_of_two() {
                                tracing::warn!(target: "vigil::alarm", error = %e, count = reported, "audio stream error");
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break "stream closed".into(),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                    }
                    let now = shared.callbacks.load(Ordering::Relaxed);
                    if now != last {
                        last = now;
                        last_change = Instant::now();
                    } else if last_change.elapsed() > STALL {
                        break format!("the output device {name} stopped taking sound");
                    }
                };
                drop(stream);
                set_status(shared, SoundState::Failed, Some(why), None);
            }
            Err(e) => set_status(shared, SoundState::Failed, Some(e), None),
        }
        std::thread::sleep(RETRY);
    }
}

fn open(
    shared: &Arc<Shared>,
    device: Option<&str>,
    errors: mpsc::Sender<String>,
) -> Result<(cpal::Stream, String), String> {
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    let dev = match device {
        // PulseAudio (native client) where its server runs, else ALSA.
        None => cpal::default_host()
            .default_output_device()
            .ok_or("no audio output device")?,
        Some(name) => {
            let id: cpal::DeviceId = name
                .parse()
                .map_err(|e| format!("audio device {name:?}: {e}"))?;
            cpal::host_from_id(id.host())
                .map_err(|e| format!("audio device {name:?}: {e}"))?
                .device_by_id(&id)
                .ok_or_else(|| format!("no audio output device {name:?}"))?
        }
    };
    let name = dev
        .id()
        .map(|i| i.to_string())
        .unwrap_or_else(|_| "output".into());
    let cfg = dev
        .default_output_config()
        .map_err(|e| format!("audio device {name}: {e}"))?;
    let channels = usize::from(cfg.channels());
    let format = cfg.sample_format();
    let config: cpal::StreamConfig = cfg.into();
    let mut synth = Synth::new(config.sample_rate);
    let mut scratch: Vec<f32> = Vec::new();
    let sh = Arc::clone(shared);
    let mut render = move |n: usize| -> Vec<f32> {
        scratch.resize(n, 0.0);
        let wanted = priority_of(sh.wanted.load(Ordering::Relaxed));
        let vol = sh.volume.load(Ordering::Relaxed);
        let started = synth.fill(&mut scratch, channels, wanted, vol);
        sh.bursts.fetch_add(started, Ordering::Relaxed);
        sh.callbacks.fetch_add(1, Ordering::Relaxed);
        std::mem::take(&mut scratch)
    };
    let on_error = move |e: cpal::Error| {
        let _ = errors.send(format!("audio device error: {e}"));
    };
    let stream = match format {
        cpal::SampleFormat::F32 => dev.build_output_stream(
            config,
            move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                let buf = render(data.len());
                data.copy_from_slice(&buf);
            },
            on_error,
            None,
        ),
        cpal::SampleFormat::I16 => dev.build_output_stream(
            config,
            move |data: &mut [i16], _: &cpal::OutputCallbackInfo| {
                let buf = render(data.len());
                for (d, s) in data.iter_mut().zip(&buf) {
                    *d = (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16;
                }
            },
            on_error,
            None,
        ),
        other => {
            return Err(format!(
                "audio device {name}: unsupported sample format {other}"
            ))
        }
    }
    .map_err(|e| format!("audio device {name}: {e}"))?;
    stream
        .play()
        .map_err(|e| format!("audio device {name}: {e}"))?;
    Ok((stream, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Priority; 3] = [Priority::High, Priority::Medium, Priority::Low];

    #[test]
    fn bursts_follow_iec_60601_1_8() {
        for p in ALL {
            let f0 = fundamental_hz(p);
            assert!((150.0..=1000.0).contains(&f0));
            let in_band = HARMONICS
                .iter()
                .enumerate()
                .filter(|(k, _)| (300.0..=4000.0).contains(&(f0 * (*k as f64 + 1.0))))
                .count();
            assert!(in_band >= 4, "{p:?}");
            assert!(HARMONICS.iter().all(|a| 20.0 * a.log10() >= -15.0));
            let pulses = burst(p);
            let n = match p {
                Priority::High => 10,
                Priority::Medium => 3,
                Priority::Low => 2,
            };
            assert_eq!(pulses.len(), n, "{p:?}");
            let (td, ts) = (pulse_ms(p), spacing_ms(p));
            let (td_range, ts_range) = match p {
                Priority::High => ((75.0, 200.0), (50.0, 125.0)),
                _ => ((125.0, 250.0), (125.0, 250.0)),
            };
            assert!(td >= td_range.0 && td <= td_range.1);
            assert!(ts >= ts_range.0 && ts <= ts_range.1);
            let tb = interburst_ms(p);
            match p {
                Priority::High => assert!((2_500.0..=15_000.0).contains(&tb)),
                Priority::Medium => assert!((2_500.0..=30_000.0).contains(&tb)),
                Priority::Low => assert!(tb > 15_000.0),
            }
        }
        // High: spacing 3rd→4th is 2x + td, 5th→6th within 0.35–1.30 s.
        let h = burst(Priority::High);
        let gap = |i: usize| h[i + 1].0 - (h[i].0 + h[i].1);
        assert_eq!(gap(0), 100.0);
        assert_eq!(gap(2), 2.0 * 100.0 + 150.0);
        assert!((350.0..=1300.0).contains(&gap(4)));
    }

    #[test]
    fn gain_ramps_are_centred_on_the_effective_pulse_edges() {
        let pulses = burst(Priority::Medium);
        let (s, d) = pulses[0];
        assert!((burst_gain(&pulses, s) - 0.5).abs() < 1e-9);
        assert!((burst_gain(&pulses, s + d) - 0.5).abs() < 1e-9);
        assert_eq!(burst_gain(&pulses, s + d / 2.0), 1.0);
        assert_eq!(burst_gain(&pulses, s + d + 100.0), 0.0);
        // Rise 10–90 % within 10–20 % of td.
        let half = RAMP_FRACTION * d / 2.0;
        let rise = 0.8 * 2.0 * half;
        assert!(rise >= 0.10 * d && rise <= 0.20 * d);
    }

    #[test]
    fn the_synth_is_silent_without_an_alarm_and_counts_its_bursts() {
        let rate = 8_000;
        let mut s = Synth::new(rate);
        let mut buf = vec![1.0f32; 2 * 4_000];
        assert_eq!(s.fill(&mut buf, 2, None, 70), 0);
        assert!(buf.iter().all(|&v| v == 0.0));
        // Medium: 3 pulses + 8 s pause, period ≈ 9 s; 20 s of output holds 3 burst starts.
        let mut started = 0;
        let mut peak = 0.0f32;
        for _ in 0..40 {
            started += s.fill(&mut buf, 2, Some(Priority::Medium), 100);
            peak = buf.iter().fold(peak, |m, v| m.max(v.abs()));
            assert!(
                buf.chunks(2).all(|f| f[0] == f[1]),
                "same signal on both channels"
            );
        }
        assert_eq!(started, 3);
        assert!(peak > 0.5 && peak <= 1.0, "{peak}");
        // Volume scales the level but the minimum is enforced by the player.
        let mut quiet = Synth::new(rate);
        let mut b = vec![0.0f32; 4_000];
        quiet.fill(&mut b, 1, Some(Priority::High), MIN_VOLUME);
        let q = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(q > 0.1 && q < peak, "{q}");
        assert_eq!(clamp_volume(0), MIN_VOLUME);
        assert_eq!(clamp_volume(500), MAX_VOLUME);
        // A higher priority starts its burst at once.
        assert_eq!(s.fill(&mut buf, 2, Some(Priority::High), 100), 1);
    }

    #[test]
    fn a_missing_device_is_reported_as_failed() {
        let p = Player::spawn(Some("alsa:vigil-test-no-such-device".into()), 50);
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.status().state == SoundState::Starting && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let st = p.status();
        assert_eq!(st.state, SoundState::Failed, "{st:?}");
        assert!(st
            .error
            .is_some_and(|e| e.contains("vigil-test-no-such-device")));
        assert_eq!(st.volume, 50);
    }
}
