//! The simulated remote cohort's script (issue 15): twenty patients at home, each with their
//! home devices, a care plan and a behaviour, and every reading they take — what was measured,
//! when it was taken and when it reaches the broker — as pure functions of a seed and the
//! cohort's start (`origin_ms`). No clock, no I/O: the publisher ([`crate::remote`]) plays it
//! against a clock it is given, and the tests count from the same functions what the station
//! must make of it (the slots it misses, those uploaded late).
//!
//! Patients are remote beds `home/h-01` … `home/h-20` (MRN `SIM-H01` …) in four IANA zones.
//! Devices are named by kind and bed (`cuff-h-01`, `scale-h-04`, `oxi-h-07`, `gluco-h-12`); each
//! kind has one plan item (its schedule as `vigil_schedule` text):
//!
//! | device  | item      | measure    | times                                   | also sends        |
//! |---------|-----------|------------|-----------------------------------------|-------------------|
//! | cuff    | `bp`      | `NIBP_SYS` | `07:00-10:00, 18:00-21:00`              | NIBP_DIA/MEAN, PR |
//! | scale   | `weight`  | `WEIGHT`   | `06:00-10:00`                           |                   |
//! | oxi     | `spo2`    | `SPO2`     | `3/day 08:00-20:00`                     | PR                |
//! | gluco   | `glucose` | `GLUCOSE`  | `07:00-08:30, 11:30-13:00, 17:30-19:00` |                   |
//! | disp    | `metformin` (dose) | `metformin` | `07:00-09:00, 19:00-21:00`     |                   |
//!
//! A pill dispenser (`disp-h-13`, `disp-h-16`) sends a dose event instead of readings: `taken`
//! when the patient takes the dose, and `missed` at the end of a window the patient let pass.
//! Behaviours ([`Behaviour`]): most patients take every reading on time, somewhere inside its
//! window; one forgets the evening blood pressure; one's weight climbs 0.8 kg a day (heart
//! failure decompensating); one's cuff stops reporting [`CUFF_STOPS_AFTER_MS`] after the start;
//! one is seen by a clinic that takes readings on time but uploads them every
//! [`BATCH_EVERY_MS`] (on the UTC grid), newest first; one has an occasional hypoglycaemia
//! (glucose about 55 mg/dL) and one an occasional low SpO2 (about 86 %); one leaves the evening
//! dose in the dispenser every other day. Nothing is taken before
//! the start, and no slot whose window was open at the start is taken (the station does not
//! expect those either).

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use vigil_contract::codes::Vital;
use vigil_contract::dose::DoseKind;
use vigil_contract::telemetry::BedId;
use vigil_schedule::{Item, ItemSpec, Kind, RuleSpec, SlotKey};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// The remote ward the cohort's beds belong to.
pub const WARD: &str = "home";
/// Patients in the cohort.
pub const PATIENTS: usize = 20;
/// History published at a publisher's start by default (hours).
pub const DEFAULT_BACKFILL_HOURS: u32 = 72;
/// The cuff of the [`Behaviour::CuffStops`] patient sends nothing from this long after the start.
pub const CUFF_STOPS_AFTER_MS: i64 = 20 * HOUR;
/// The clinic of the [`Behaviour::ClinicBatches`] patient uploads at every multiple of this
/// since the epoch (UTC): 00:00, 06:00, 12:00 and 18:00 UTC.
pub const BATCH_EVERY_MS: i64 = 6 * HOUR;
/// How fast the [`Behaviour::WeightClimbs`] patient's weight rises, for the first
/// [`WEIGHT_CLIMB_DAYS`] after the start (then it stays there).
pub const WEIGHT_GAIN_KG_PER_DAY: f64 = 0.8;
pub const WEIGHT_CLIMB_DAYS: f64 = 10.0;

/// The medication of the cohort's dispensers (and their plan item's id).
pub const MEDICATION: &str = "metformin";

/// How a patient behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Every reading taken in its window and sent at once.
    OnTime,
    /// The evening blood pressure is never taken (the morning one is).
    ForgetsEvenings,
    /// On time; the weight rises [`WEIGHT_GAIN_KG_PER_DAY`] (heart failure decompensating).
    WeightClimbs,
    /// On time until [`CUFF_STOPS_AFTER_MS`] after the start; nothing from the cuff after.
    CuffStops,
    /// Taken on time by a clinic, uploaded together every [`BATCH_EVERY_MS`], newest first.
    ClinicBatches,
    /// On time; the pre-breakfast glucose is about 55 mg/dL every other day.
    Hypoglycaemia,
    /// On time; the midday SpO2 is about 86 % every other day.
    LowSpo2,
    /// On time, but the evening dose stays in the dispenser every other day (the dispenser
    /// reports it missed at the window's end).
    SkipsEveningDose,
}

impl Behaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnTime => "on time",
            Self::ForgetsEvenings => "forgets the evening blood pressure",
            Self::WeightClimbs => "weight climbs",
            Self::CuffStops => "cuff stops reporting",
            Self::ClinicBatches => "clinic uploads in batches",
            Self::Hypoglycaemia => "occasional hypoglycaemia",
            Self::LowSpo2 => "occasional low SpO2",
            Self::SkipsEveningDose => "skips the evening dose every other day",
        }
    }
}

/// A kind of home device, with the one plan item it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceKind {
    Cuff,
    Scale,
    Oximeter,
    GlucoseMeter,
    /// A pill dispenser: dose events, no readings.
    Dispenser,
}

impl DeviceKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Cuff => "cuff",
            Self::Scale => "scale",
            Self::Oximeter => "oxi",
            Self::GlucoseMeter => "gluco",
            Self::Dispenser => "disp",
        }
    }

    /// A label for the device registry.
    pub fn label(self) -> &'static str {
        match self {
            Self::Cuff => "home BP cuff",
            Self::Scale => "home scale",
            Self::Oximeter => "home pulse oximeter",
            Self::GlucoseMeter => "home glucose meter",
            Self::Dispenser => "home pill dispenser",
        }
    }

    /// The plan item the device's readings (or doses) meet: id, kind, measure (a vital's code
    /// or a medication id), schedule.
    pub fn item(self) -> (&'static str, Kind, &'static str, &'static str) {
        let reading = Kind::Reading;
        match self {
            Self::Cuff => (
                "bp",
                reading,
                Vital::NibpSys.name(),
                "07:00-10:00, 18:00-21:00",
            ),
            Self::Scale => ("weight", reading, Vital::Weight.name(), "06:00-10:00"),
            Self::Oximeter => ("spo2", reading, Vital::SpO2.name(), "3/day 08:00-20:00"),
            Self::GlucoseMeter => (
                "glucose",
                reading,
                Vital::Glucose.name(),
                "07:00-08:30, 11:30-13:00, 17:30-19:00",
            ),
            Self::Dispenser => (
                MEDICATION,
                Kind::Dose,
                MEDICATION,
                "07:00-09:00, 19:00-21:00",
            ),
        }
    }
}

/// A home device of a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `cuff-h-01`.
    pub id: String,
    pub kind: DeviceKind,
}

/// One patient of the cohort.
#[derive(Debug, Clone)]
pub struct Patient {
    /// 1 to [`PATIENTS`].
    pub index: usize,
    /// `home/h-01`.
    pub bed: BedId,
    /// `SIM-H01`.
    pub mrn: String,
    pub name: &'static str,
    /// `YYYY-MM-DD`.
    pub dob: &'static str,
    /// IANA name.
    pub tz_name: &'static str,
    pub tz: Tz,
    pub behaviour: Behaviour,
    pub devices: Vec<Device>,
    /// The care plan: one item per device, as given to `vigil_core::remote::set_plan`.
    pub items: Vec<ItemSpec>,
    /// The change rules a charge nurse sets with this plan (weight gain, sustained
    /// hypertension); none for most patients.
    pub rules: Vec<RuleSpec>,
    /// Baselines.
    sys0: f64,
    weight0: f64,
}

impl Patient {
    pub fn device(&self, kind: DeviceKind) -> Option<&Device> {
        self.devices.iter().find(|d| d.kind == kind)
    }
}

/// One reading of the script.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device: String,
    pub vital: Vital,
    /// In the vital's canonical unit ([`Reading::unit`]).
    pub value: f64,
    pub taken_ms: i64,
    /// When it reaches the broker: when taken, or at the clinic's upload.
    pub published_ms: i64,
}

impl Reading {
    pub fn unit(&self) -> &'static str {
        self.vital.unit()
    }
}

/// One message a device sends: the readings of one measurement (a cuff's systolic, diastolic,
/// mean and pulse rate), taken together; or a dispenser's dose event (`dose`, no readings),
/// `taken_ms` being when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub device: String,
    pub taken_ms: i64,
    pub published_ms: i64,
    pub obs: Vec<(Vital, f64)>,
    pub dose: Option<(&'static str, DoseKind)>,
}

/// A slot of a patient's plan as the script plays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSlot {
    pub bed: BedId,
    /// The plan item's id (`bp`).
    pub item: String,
    pub key: SlotKey,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The reading (or dose) taken in the window, if any: (taken, published).
    pub reading: Option<(i64, i64)>,
}

impl ScriptSlot {
    /// The key a station files a missed-reading alert under: (bed, item, local date, index).
    pub fn alert_key(&self) -> (String, String, String, u32) {
        (
            self.bed.key(),
            self.item.clone(),
            self.key.date.to_string(),
            u32::from(self.key.index),
        )
    }

    /// No reading was taken in the window.
    pub fn is_missed(&self) -> bool {
        self.reading.is_none()
    }
}

/// The cohort: its patients and its script from `origin_ms` on.
#[derive(Debug, Clone)]
pub struct Cohort {
    seed: u64,
    origin_ms: i64,
    patients: Vec<Patient>,
}

struct Row {
    name: &'static str,
    dob: &'static str,
    tz: &'static str,
    behaviour: Behaviour,
    devices: &'static [DeviceKind],
    hypertensive: bool,
}

const fn row(
    name: &'static str,
    dob: &'static str,
    tz: &'static str,
    behaviour: Behaviour,
    devices: &'static [DeviceKind],
    hypertensive: bool,
) -> Row {
    Row {
        name,
        dob,
        tz,
        behaviour,
        devices,
        hypertensive,
    }
}

use Behaviour as B;
use DeviceKind::{Cuff, Dispenser as Disp, GlucoseMeter as Gluco, Oximeter as Oxi, Scale};

const LONDON: &str = "Europe/London";
const NEW_YORK: &str = "America/New_York";
const BERLIN: &str = "Europe/Berlin";
const KOLKATA: &str = "Asia/Kolkata";

/// The roster (fictional people). Every patient but the one whose cuff stops sends something
/// morning and evening, so that none is silent for a day.
const ROSTER: [Row; PATIENTS] = [
    row(
        "Margaret Ellison",
        "1944-05-12",
        LONDON,
        B::OnTime,
        &[Cuff],
        true,
    ),
    row(
        "Daniel Okafor",
        "1951-11-03",
        NEW_YORK,
        B::OnTime,
        &[Cuff, Oxi],
        false,
    ),
    row(
        "Helga Brandt",
        "1939-02-27",
        BERLIN,
        B::ForgetsEvenings,
        &[Cuff, Oxi],
        false,
    ),
    row(
        "Arthur Pennington",
        "1947-08-19",
        LONDON,
        B::WeightClimbs,
        &[Cuff, Scale],
        false,
    ),
    row(
        "Ravi Sharma",
        "1956-01-30",
        KOLKATA,
        B::CuffStops,
        &[Cuff],
        false,
    ),
    row(
        "Lucia Romero",
        "1962-06-08",
        BERLIN,
        B::ClinicBatches,
        &[Cuff, Oxi],
        false,
    ),
    row(
        "Priya Nair",
        "1949-09-14",
        KOLKATA,
        B::LowSpo2,
        &[Oxi],
        false,
    ),
    row(
        "James Whitaker",
        "1958-03-22",
        NEW_YORK,
        B::OnTime,
        &[Gluco],
        false,
    ),
    row(
        "Ingrid Vogel",
        "1953-12-01",
        BERLIN,
        B::OnTime,
        &[Cuff, Scale],
        false,
    ),
    row(
        "Samuel Osei",
        "1945-07-07",
        LONDON,
        B::OnTime,
        &[Cuff, Oxi],
        false,
    ),
    row(
        "Eleanor Marsh",
        "1941-10-25",
        NEW_YORK,
        B::OnTime,
        &[Cuff, Scale],
        true,
    ),
    row(
        "Thomas Greene",
        "1960-04-16",
        LONDON,
        B::Hypoglycaemia,
        &[Gluco],
        false,
    ),
    row(
        "Anjali Mehta",
        "1950-02-11",
        KOLKATA,
        B::SkipsEveningDose,
        &[Cuff, Gluco, Disp],
        false,
    ),
    row(
        "Walter Schmidt",
        "1937-11-29",
        BERLIN,
        B::OnTime,
        &[Cuff, Oxi],
        false,
    ),
    row(
        "Rosa Delgado",
        "1955-05-05",
        NEW_YORK,
        B::OnTime,
        &[Cuff, Scale, Oxi],
        false,
    ),
    row(
        "George Hamilton",
        "1943-01-18",
        LONDON,
        B::OnTime,
        &[Cuff, Gluco, Disp],
        false,
    ),
    row(
        "Meera Iyer",
        "1961-08-02",
        KOLKATA,
        B::OnTime,
        &[Cuff, Oxi],
        false,
    ),
    row(
        "Frank Bauer",
        "1948-03-09",
        BERLIN,
        B::OnTime,
        &[Cuff, Scale],
        false,
    ),
    row(
        "Dorothy Kim",
        "1952-12-24",
        NEW_YORK,
        B::OnTime,
        &[Oxi, Gluco],
        false,
    ),
    row(
        "Patrick Doyle",
        "1946-06-21",
        LONDON,
        B::OnTime,
        &[Cuff],
        true,
    ),
];

/// splitmix64: a deterministic hash of the script's coordinates (no crate's RNG version can
/// change the cohort).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from the seed and some coordinates.
fn unit(seed: u64, parts: &[u64]) -> f64 {
    let h = parts.iter().fold(mix(seed), |h, &p| mix(h ^ p));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// About normal (sum of uniforms), mean 0, deviation 1.
fn normal(seed: u64, parts: &[u64]) -> f64 {
    let mut p = parts.to_vec();
    p.push(0);
    let n = p.len() - 1;
    (0..6u64)
        .map(|i| {
            p[n] = 1000 + i;
            unit(seed, &p)
        })
        .sum::<f64>()
        * 2.0_f64.sqrt()
        - 6.0 * 2.0_f64.sqrt() / 2.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The next clinic upload at or after `taken_ms` (strictly after: a reading is never uploaded
/// the instant it is taken).
fn upload_after(taken_ms: i64) -> i64 {
    (taken_ms.div_euclid(BATCH_EVERY_MS) + 1) * BATCH_EVERY_MS
}

impl Cohort {
    /// The cohort whose story starts at `origin_ms` (the enrolment), values from `seed`.
    pub fn new(seed: u64, origin_ms: i64) -> Cohort {
        let patients = ROSTER
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let index = i + 1;
                let tag = format!("h-{index:02}");
                let devices: Vec<Device> = r
                    .devices
                    .iter()
                    .map(|&kind| Device {
                        id: format!("{}-{tag}", kind.prefix()),
                        kind,
                    })
                    .collect();
                let items = devices
                    .iter()
                    .map(|d| {
                        let (id, kind, measure, times) = d.kind.item();
                        ItemSpec::new(id, kind, measure, times)
                    })
                    .collect();
                let rules = match (r.behaviour, r.hypertensive) {
                    (B::WeightClimbs, _) => {
                        vec![RuleSpec::rise(
                            "weight-gain",
                            Vital::Weight.name(),
                            2.0,
                            "3d",
                        )]
                    }
                    (_, true) => vec![RuleSpec::above(
                        "sbp-high",
                        Vital::NibpSys.name(),
                        140.0,
                        3,
                        5,
                    )],
                    _ => Vec::new(),
                };
                let s = seed ^ ((index as u64) << 32);
                let sys0 = if r.hypertensive {
                    146.0 + 8.0 * unit(s, &[1])
                } else {
                    112.0 + 20.0 * unit(s, &[1])
                };
                Patient {
                    index,
                    bed: BedId::new(WARD, tag),
                    mrn: format!("SIM-H{index:02}"),
                    name: r.name,
                    dob: r.dob,
                    tz_name: r.tz,
                    // The roster's zones are IANA names (tested).
                    tz: vigil_schedule::zone(r.tz).unwrap_or(Tz::UTC),
                    behaviour: r.behaviour,
                    devices,
                    items,
                    rules,
                    sys0,
                    weight0: 58.0 + 40.0 * unit(s, &[2]),
                }
            })
            .collect();
        Cohort {
            seed,
            origin_ms,
            patients,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// When the story starts: nothing is taken before.
    pub fn origin_ms(&self) -> i64 {
        self.origin_ms
    }

    pub fn patients(&self) -> &[Patient] {
        &self.patients
    }

    pub fn patient(&self, bed: &BedId) -> Option<&Patient> {
        self.patients.iter().find(|p| &p.bed == bed)
    }

    /// The first patient who behaves so.
    pub fn with(&self, behaviour: Behaviour) -> Option<&Patient> {
        self.patients.iter().find(|p| p.behaviour == behaviour)
    }

    /// Every slot of `p`'s plan whose window lies in `[from_ms, to_ms)` (opening at or after
    /// the start, and ending by `to_ms`), with the reading taken in it, if any.
    pub fn slots(&self, p: &Patient, from_ms: i64, to_ms: i64) -> Vec<ScriptSlot> {
        let from_ms = from_ms.max(self.origin_ms);
        let mut out = Vec::new();
        if from_ms >= to_ms {
            return out;
        }
        for d in &p.devices {
            let (id, kind, _, times) = d.kind.item();
            let Ok(item) = Item::parse(id, kind, "x", times) else {
                continue; // the table's schedules parse (tested)
            };
            for s in item.slots(p.tz, utc(from_ms), utc(to_ms)) {
                let (start, end) = (s.start.timestamp_millis(), s.end.timestamp_millis());
                if start < from_ms || end > to_ms {
                    continue;
                }
                let reading = self
                    .taken_at(p, d, &s.key, start, end)
                    .map(|t| (t, self.published(p, t)));
                out.push(ScriptSlot {
                    bed: p.bed.clone(),
                    item: id.to_string(),
                    key: s.key,
                    start_ms: start,
                    end_ms: end,
                    reading,
                });
            }
        }
        out.sort_by(|a, b| (a.start_ms, &a.item).cmp(&(b.start_ms, &b.item)));
        out
    }

    /// The slots of `p` in `[from_ms, to_ms)` the script misses (nothing taken in the window):
    /// the missed-reading alerts a station watching the cohort must raise, and never resolve.
    pub fn missed(&self, p: &Patient, from_ms: i64, to_ms: i64) -> Vec<ScriptSlot> {
        self.slots(p, from_ms, to_ms)
            .into_iter()
            .filter(ScriptSlot::is_missed)
            .collect()
    }

    /// When `device`'s reading for a slot is taken, if it is: inside the window, away from its
    /// edges; `None` when the behaviour skips it or the window opened before the start.
    fn taken_at(
        &self,
        p: &Patient,
        d: &Device,
        key: &SlotKey,
        start: i64,
        end: i64,
    ) -> Option<i64> {
        if start < self.origin_ms {
            return None;
        }
        if p.behaviour == B::ForgetsEvenings && d.kind == Cuff && key.index == 1 {
            return None;
        }
        if p.behaviour == B::SkipsEveningDose
            && d.kind == Disp
            && key.index == 1
            && day_number(key) % 2 == 1
        {
            return None;
        }
        let len = end - start;
        let u = unit(
            self.seed,
            &[
                p.index as u64,
                d.kind as u64,
                day_number(key),
                u64::from(key.index),
            ],
        );
        // 5 min after the opening to 15 min before the end, on a whole second.
        let span = (len - 20 * MIN).max(0);
        let t = start + 5 * MIN + ((u * span as f64) as i64 / 1000) * 1000;
        if p.behaviour == B::CuffStops
            && d.kind == Cuff
            && t >= self.origin_ms + CUFF_STOPS_AFTER_MS
        {
            return None;
        }
        Some(t)
    }

    fn published(&self, p: &Patient, taken_ms: i64) -> i64 {
        if p.behaviour == B::ClinicBatches {
            upload_after(taken_ms)
        } else {
            taken_ms
        }
    }

    /// The messages `p`'s devices send with readings (or doses) taken in `[from_ms, to_ms)`, by
    /// taken time; and a dispenser's `missed` event at the end of each window with no dose
    /// taken (the instant it happens) in the range.
    pub fn taken(&self, p: &Patient, from_ms: i64, to_ms: i64) -> Vec<Message> {
        // Slots overlapping the range: a window opening a day before may hold a reading in it.
        let mut out: Vec<Message> = self
            .slots(p, from_ms.saturating_sub(DAY), to_ms.saturating_add(DAY))
            .into_iter()
            .filter_map(|s| {
                let kind = p
                    .devices
                    .iter()
                    .find(|d| d.kind.item().0 == s.item)
                    .map(|d| d.kind)?;
                let device = p.device(kind)?.id.clone();
                let (taken, published, event) = match (s.reading, kind) {
                    (Some((taken, published)), _) => (taken, published, DoseKind::Taken),
                    (None, Disp) => (s.end_ms, s.end_ms, DoseKind::Missed),
                    (None, _) => return None,
                };
                if taken < from_ms || taken >= to_ms {
                    return None;
                }
                Some(Message {
                    device,
                    taken_ms: taken,
                    published_ms: published,
                    obs: self.values(p, kind, &s.key, taken),
                    dose: (kind == Disp).then_some((MEDICATION, event)),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.taken_ms, &a.device).cmp(&(b.taken_ms, &b.device)));
        out
    }

    /// The messages `p`'s devices publish in `[from_ms, to_ms)`, in the order they are sent:
    /// by publish instant, and within a clinic's batch newest first (out of order, as a device
    /// dumping its buffer).
    pub fn publications(&self, p: &Patient, from_ms: i64, to_ms: i64) -> Vec<Message> {
        let mut out: Vec<Message> = self
            .taken(p, from_ms.saturating_sub(BATCH_EVERY_MS), to_ms)
            .into_iter()
            .filter(|m| (from_ms..to_ms).contains(&m.published_ms))
            .collect();
        out.sort_by(|a, b| {
            (a.published_ms, std::cmp::Reverse(a.taken_ms), &a.device).cmp(&(
                b.published_ms,
                std::cmp::Reverse(b.taken_ms),
                &b.device,
            ))
        });
        out
    }

    /// Every reading of `p` taken in `[from_ms, to_ms)`, one per vital, by taken time.
    pub fn readings(&self, p: &Patient, from_ms: i64, to_ms: i64) -> Vec<Reading> {
        self.taken(p, from_ms, to_ms)
            .into_iter()
            .flat_map(|m| {
                m.obs.into_iter().map(move |(vital, value)| Reading {
                    device: m.device.clone(),
                    vital,
                    value,
                    taken_ms: m.taken_ms,
                    published_ms: m.published_ms,
                })
            })
            .collect()
    }

    /// The values of one measurement (none for a dispenser's dose event).
    fn values(
        &self,
        p: &Patient,
        kind: DeviceKind,
        key: &SlotKey,
        taken_ms: i64,
    ) -> Vec<(Vital, f64)> {
        let c = [
            p.index as u64,
            kind as u64,
            day_number(key),
            u64::from(key.index),
        ];
        let n = |salt: u64| {
            let mut parts = c.to_vec();
            parts.push(salt);
            normal(self.seed, &parts)
        };
        // Every other day of the patient's calendar.
        let odd_day = day_number(key) % 2 == 1;
        match kind {
            Cuff => {
                let sys = (p.sys0 + 6.0 * n(1)).round().clamp(85.0, 210.0);
                let dia = (sys * 0.58 + 4.0 * n(2)).round().clamp(45.0, 125.0);
                let mean = ((sys + 2.0 * dia) / 3.0).round();
                let pr = (72.0 + 6.0 * n(3)).round().clamp(45.0, 130.0);
                vec![
                    (Vital::NibpSys, sys),
                    (Vital::NibpDia, dia),
                    (Vital::NibpMean, mean),
                    (Vital::Pr, pr),
                ]
            }
            Scale => {
                let climb = if p.behaviour == B::WeightClimbs {
                    WEIGHT_GAIN_KG_PER_DAY
                        * ((taken_ms - self.origin_ms).max(0) as f64 / DAY as f64)
                            .min(WEIGHT_CLIMB_DAYS)
                } else {
                    0.0
                };
                vec![(Vital::Weight, round1(p.weight0 + climb + 0.15 * n(1)))]
            }
            Oxi => {
                let spo2 = if p.behaviour == B::LowSpo2 && key.index == 1 && odd_day {
                    (86.0 + n(1)).round().clamp(83.0, 88.0)
                } else {
                    (96.5 + n(1)).round().clamp(93.0, 100.0)
                };
                let pr = (74.0 + 6.0 * n(2)).round().clamp(45.0, 130.0);
                vec![(Vital::SpO2, spo2), (Vital::Pr, pr)]
            }
            Gluco => {
                let g = if p.behaviour == B::Hypoglycaemia && key.index == 0 && odd_day {
                    (55.0 + 3.0 * n(1)).round().clamp(48.0, 62.0)
                } else {
                    (112.0 + 15.0 * n(1)).round().clamp(80.0, 180.0)
                };
                vec![(Vital::Glucose, g)]
            }
            Disp => Vec::new(),
        }
    }
}

/// The slot's local date as a day number (stable across runs).
fn day_number(key: &SlotKey) -> u64 {
    u64::try_from(key.date.num_days_from_ce()).unwrap_or(0)
}

/// Every message of the cohort published in `[from_ms, to_ms)`, in the order they are sent
/// (by publish instant, then bed): what a publisher sends over that time.
pub fn publications(cohort: &Cohort, from_ms: i64, to_ms: i64) -> Vec<(BedId, Message)> {
    let mut out: Vec<(BedId, Message)> = cohort
        .patients()
        .iter()
        .flat_map(|p| {
            cohort
                .publications(p, from_ms, to_ms)
                .into_iter()
                .map(|m| (p.bed.clone(), m))
        })
        .collect();
    // Stable: a batch keeps its order within the bed.
    out.sort_by_key(|(bed, m)| (m.published_ms, bed.clone()));
    out
}

#[cfg(test)]
mod tests;
