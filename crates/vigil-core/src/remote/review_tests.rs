//! Findings, reviews, review time and the worklist on a real SQLite file.

use super::*;
use crate::auth::{AuthService, Role};
use crate::remote::watch::{self, WatchSettings};
use crate::remote::{enrol, set_plan, NewRemotePatient, MANAGE, PLAN, READ};
use crate::usecase::testkit::{self, entries};
use vigil_schedule::{ItemSpec, Kind};

/// 2026-06-01T00:00:00Z.
const T: i64 = 1_780_272_000_000;
const H: i64 = 3_600_000;
const M: i64 = 60_000;
/// The alarms' live window.
const LIVE: i64 = 30_000;

struct Station {
    _dir: tempfile::TempDir,
    svc: AuthService,
    manage: Authorized,
    plan: Authorized,
    read: Authorized,
    /// nina, a nurse: reviews, reads.
    review: Authorized,
    nurse_read: Authorized,
}

fn station() -> Station {
    let (dir, mut svc) = testkit::service();
    let mut carl = testkit::proofs(&mut svc, "carl", Role::ChargeNurse, &[MANAGE, PLAN, READ]);
    let mut nina = testkit::proofs(&mut svc, "nina", Role::Nurse, &[REVIEW, READ]);
    let nurse_read = nina.remove(1);
    let review = nina.remove(0);
    let read = carl.remove(2);
    let plan = carl.remove(1);
    let manage = carl.remove(0);
    Station {
        _dir: dir,
        svc,
        manage,
        plan,
        read,
        review,
        nurse_read,
    }
}

impl Station {
    fn conn(&self) -> &Connection {
        self.svc.connection()
    }

    fn enrol(&self, b: &str, mrn: &str, at: i64) -> (BedId, i64) {
        let bed = BedId::new("home", b);
        let p = enrol(
            self.conn(),
            &self.manage,
            &bed,
            &NewRemotePatient {
                mrn,
                name: "Pat Example",
                dob: "1950-02-03",
                tz: "Europe/London",
            },
            at,
        )
        .expect("enrolled");
        (bed, p.stay)
    }

    /// A stored reading of `code` = `value`, taken at `taken`, received at `received`.
    fn reading(&self, b: &BedId, code: &str, value: f64, taken: i64, received: i64) {
        self.reading_as(b, code, value, taken, received, "final");
    }

    fn reading_as(&self, b: &BedId, code: &str, value: f64, taken: i64, rec: i64, status: &str) {
        self.conn()
            .execute(
                "INSERT INTO numerics
                   (ward, bed, device, t_ms, mdc, code, value, unit, status, received_ms)
                 VALUES (?1, ?2, ?2 || '-dev', ?3, (SELECT COUNT(*) FROM numerics), ?4, ?5,
                         'u', ?6, ?7)",
                params![b.ward, b.bed, taken, code, value, status, rec],
            )
            .expect("reading");
    }

    /// Scan with the adult defaults.
    fn scan(&self, now: i64) -> Vec<String> {
        let limits = |_: &BedId| vigil_alarms::limits::default_limits();
        scan(self.conn(), now, LIVE, &limits)
            .expect("scan")
            .into_iter()
            .map(|f| {
                format!(
                    "{} {} {} {}{}",
                    f.bed.bed,
                    f.kind,
                    f.rule,
                    f.detail,
                    if f.stale { " stale" } else { "" }
                )
            })
            .collect()
    }

    fn trail(&self) -> Vec<String> {
        entries(&self.svc)
            .into_iter()
            .filter(|e| e.action.starts_with("remote_record") || e.action.ends_with("review"))
            .map(|e| format!("{} {} {}", e.action, e.target, e.detail))
            .collect()
    }
}

#[test]
fn a_breach_is_a_finding_once_live_or_hours_late_and_only_remote_patients_count() {
    let s = station();
    let (b, stay) = s.enrol("p-01", "MRN-1", T);
    // Live: received a second after it was taken. Late: a clinic's upload three hours on.
    s.reading(&b, "SPO2", 86.0, T + H, T + H + 1_000);
    s.reading(&b, "GLUCOSE", 52.0, T + 2 * H, T + 5 * H);
    // Within limits; before enrolment; entered in error: nothing.
    s.reading(&b, "SPO2", 97.0, T + H + M, T + H + M);
    s.reading(&b, "SPO2", 80.0, T - H, T + H);
    s.reading_as(&b, "SPO2", 70.0, T + 3 * H, T + 3 * H, "entered-in-error");
    // A ward bed's breach is the alarms' business, not a remote finding.
    s.reading(&BedId::new("4W", "01"), "SPO2", 80.0, T + H, T + H);
    assert_eq!(
        s.scan(T + 5 * H + 1_000),
        [
            "p-01 limit SPO2_LOW SpO2 LOW 86 % (limit 90)",
            "p-01 limit GLUCOSE_LOW Glucose LOW 52 mg/dL (limit 70) stale",
        ]
    );
    // Each reading is checked once: a second scan finds nothing new.
    assert_eq!(s.scan(T + 6 * H), Vec::<String>::new());
    // A reading stored later is checked by the next scan.
    s.reading(&b, "NIBP_SYS", 171.0, T + 6 * H, T + 6 * H);
    assert_eq!(
        s.scan(T + 6 * H + 1_000),
        ["p-01 limit NIBP_SYS_HIGH NIBP sys HIGH 171 mmHg (limit 160)"]
    );
    let open = findings(s.conn(), stay, true).expect("findings");
    assert_eq!(open.len(), 3);
    assert_eq!(
        open.iter().map(|f| f.stale).collect::<Vec<_>>(),
        [false, true, false]
    );
}

#[test]
fn a_review_closes_the_findings_standing_with_its_audit_entry() {
    let s = station();
    let (b, stay) = s.enrol("p-01", "MRN-1", T);
    s.reading(&b, "SPO2", 86.0, T + H, T + H);
    s.scan(T + H + 1_000);
    // A nurse may review; a proof for another permission may not; a bad note writes nothing.
    assert!(matches!(
        review(
            s.conn(),
            &s.nurse_read,
            &b,
            ReviewAction::NoAction,
            "",
            T + 2 * H
        ),
        Err(RemoteError::Auth(_))
    ));
    assert!(matches!(
        review(
            s.conn(),
            &s.review,
            &b,
            ReviewAction::NoAction,
            "a\nb",
            T + 2 * H
        ),
        Err(RemoteError::Invalid(_))
    ));
    assert!(matches!(
        review(
            s.conn(),
            &s.review,
            &BedId::new("home", "none"),
            ReviewAction::NoAction,
            "",
            T
        ),
        Err(RemoteError::NoPatient(_))
    ));
    assert_eq!(reviews(s.conn(), stay).expect("reviews"), []);
    let r = review(
        s.conn(),
        &s.review,
        &b,
        ReviewAction::CalledPatient,
        " probe slipped; repeat reading 97 % ",
        T + 2 * H,
    )
    .expect("reviewed");
    assert_eq!(
        (r.action, r.findings, r.note.as_str(), r.by.as_str()),
        (
            ReviewAction::CalledPatient,
            1,
            "probe slipped; repeat reading 97 %",
            "nina"
        )
    );
    assert_eq!(findings(s.conn(), stay, true).expect("open"), []);
    let all = findings(s.conn(), stay, false).expect("all");
    assert_eq!(all[0].review, Some(r.id));
    // A later breach awaits the next review.
    s.reading(&b, "SPO2", 85.0, T + 3 * H, T + 3 * H);
    s.scan(T + 3 * H + 1_000);
    let e = review(
        s.conn(),
        &s.review,
        &b,
        ReviewAction::Escalated,
        "to Dr Lee",
        T + 4 * H,
    )
    .expect("escalated");
    assert_eq!(e.findings, 1);
    assert_eq!(
        reviews(s.conn(), stay)
            .expect("reviews")
            .iter()
            .map(|r| r.action)
            .collect::<Vec<_>>(),
        [ReviewAction::Escalated, ReviewAction::CalledPatient]
    );
    assert_eq!(
        s.trail(),
        [
            "remote_patient_review home/p-01 mrn=MRN-1; called_patient; 1 finding(s) reviewed; \
             note \"probe slipped; repeat reading 97 %\"",
            "remote_patient_review home/p-01 mrn=MRN-1; escalated; 1 finding(s) reviewed; \
             note \"to Dr Lee\"",
        ]
    );
}

#[test]
fn review_actions_have_one_parser() {
    for a in ReviewAction::ALL {
        assert_eq!(ReviewAction::parse(a.as_str()).expect("parses"), a);
    }
    assert!(ReviewAction::parse("ignored").is_err());
    assert!(parse_note(&"x".repeat(MAX_NOTE + 1)).is_err());
    assert_eq!(
        parse_note(&"x".repeat(MAX_NOTE)).expect("note").len(),
        MAX_NOTE
    );
}

#[test]
fn review_time_counts_closed_views_of_the_month_each_capped() {
    let s = station();
    let (b, stay) = s.enrol("p-01", "MRN-1", T - 40 * 24 * H);
    // Last month (31 May, London): not this month's.
    let old = open_record(s.conn(), &s.review, &b, T - 2 * H).expect("open");
    close_record(s.conn(), &s.review, old, T - H - 50 * M).expect("closed");
    // 4 minutes, and an hour left open on a screen (counted as 30 min).
    let v = open_record(s.conn(), &s.review, &b, T + H).expect("open");
    assert_eq!(
        close_record(s.conn(), &s.review, v, T + H + 4 * M).expect("closed"),
        4 * M
    );
    let long = open_record(s.conn(), &s.review, &b, T + 2 * H).expect("open");
    assert_eq!(
        close_record(s.conn(), &s.review, long, T + 3 * H).expect("closed"),
        MAX_VIEW_MS
    );
    // Never closed: not counted. Closing twice, or another user's view, is refused.
    open_record(s.conn(), &s.review, &b, T + 4 * H).expect("open");
    assert!(close_record(s.conn(), &s.review, v, T + 5 * H).is_err());
    let carl = open_record(s.conn(), &s.read, &b, T + 4 * H);
    assert!(matches!(carl, Err(RemoteError::Auth(_))));
    let stays = crate::remote::current(s.conn())
        .expect("stays")
        .into_iter()
        .map(|p| (p.stay, p))
        .collect();
    let secs = review_ms(s.conn(), &stays, T + 5 * H).expect("seconds");
    assert_eq!(secs.get(&stay).copied(), Some(34 * 60 * 1000));
    let trail = s.trail();
    assert_eq!(trail.len(), 7, "{trail:#?}");
    assert_eq!(
        trail[3],
        format!("remote_record_close home/p-01 mrn=MRN-1; view {v}; open 240 s, counted 240 s")
    );
}

#[test]
fn the_worklist_puts_urgent_first_then_missed_then_findings_then_adherence() {
    let s = station();
    let bp = || {
        vec![ItemSpec::new(
            "bp",
            Kind::Reading,
            "NIBP_SYS",
            "07:00-10:00, 18:00-21:00",
        )]
    };
    const D: i64 = 24 * H;
    // London in June is UTC+1: the windows are 06:00-09:00Z and 17:00-20:00Z.
    // p-e: nothing to do (a reading in range), but escalated at its last review.
    let (e, _) = s.enrol("p-e", "MRN-E", T);
    s.reading(&e, "SPO2", 97.0, T + H, T + H);
    review(
        s.conn(),
        &s.review,
        &e,
        ReviewAction::Escalated,
        "",
        T + 2 * H,
    )
    .expect("review");
    // p-d: every reading taken 10 min after its window (taken late) but this morning's.
    let (d, _) = s.enrol("p-d", "MRN-D", T - 2 * D);
    set_plan(s.conn(), &s.plan, &d, &bp(), &[], T - 2 * D + M).expect("plan");
    for day in [-2, -1] {
        for end in [9 * H, 20 * H] {
            let t = T + day * D + end + 10 * M;
            s.reading(&d, "NIBP_SYS", 128.0, t, t);
        }
    }
    s.reading(&d, "NIBP_SYS", 128.0, T + 7 * H, T + 7 * H);
    // p-c: no plan; a low SpO2 to review.
    let (c, _) = s.enrol("p-c", "MRN-C", T);
    s.reading(&c, "SPO2", 86.0, T + H, T + H);
    // p-b: this morning's reading missed, a warning at the window's end.
    let (b, _) = s.enrol("p-b", "MRN-B", T);
    set_plan(s.conn(), &s.plan, &b, &bp(), &[], T + M).expect("plan");
    s.reading(&b, "SPO2", 97.0, T + H, T + H);
    // p-a: three days of nothing: urgent (five slots in the 72 h looked back and the silent
    // devices), this morning's a warning.
    let (a, _) = s.enrol("p-a", "MRN-A", T - 3 * D);
    set_plan(s.conn(), &s.plan, &a, &bp(), &[], T - 3 * D + M).expect("plan");

    let now = T + 9 * H + 10_000;
    watch::tick(s.conn(), now, &WatchSettings::default()).expect("tick");
    s.scan(now);
    // Identities need the right to see the ward.
    assert!(matches!(
        worklist(s.conn(), &s.review, now),
        Err(RemoteError::Auth(_))
    ));
    let rows = worklist(s.conn(), &s.nurse_read, now).expect("worklist");
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} u{} w{} f{} silent={} esc={} 7d={:?}",
                r.patient.bed.bed,
                r.attention.as_str(),
                r.urgent,
                r.warning,
                r.findings,
                r.silent,
                r.escalated,
                r.adherence.last_7.share().map(|x| (x * 100.0).round())
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "p-a urgent u6 w1 f0 silent=true esc=false 7d=Some(0.0)",
            "p-b missed u0 w1 f0 silent=false esc=false 7d=Some(0.0)",
            "p-c findings u0 w0 f1 silent=false esc=false 7d=None",
            "p-d adherence u0 w0 f0 silent=false esc=false 7d=Some(20.0)",
            "p-e none u0 w0 f0 silent=false esc=true 7d=None",
        ],
        "{rows:#?}"
    );
    assert_eq!(
        rows[2].newest_finding.as_deref(),
        Some("SpO2 LOW 86 % (limit 90)")
    );
}

#[test]
fn alert_kinds_have_one_parser() {
    for k in watch::AlertKind::ALL {
        assert_eq!(watch::AlertKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(watch::AlertKind::parse("missed"), None);
}

#[test]
fn change_rules_give_a_finding_where_they_turn_true_late_uploads_included() {
    let s = station();
    let (b, stay) = s.enrol("p-hf", "MRN-HF", T);
    let rules = [
        vigil_schedule::RuleSpec::rise("weight-gain", "WEIGHT", 2.0, "3d"),
        vigil_schedule::RuleSpec::above("sbp-high", "NIBP_SYS", 140.0, 3, 5),
    ];
    set_plan(s.conn(), &s.plan, &b, &[], &rules, T + M).expect("plan");
    const D: i64 = 24 * H;
    // Weight climbs: 78.0, 79.1, then 80.3 on day 3 (+2.3 in two days).
    s.reading(&b, "WEIGHT", 78.0, T + 7 * H, T + 7 * H);
    s.reading(&b, "WEIGHT", 79.1, T + D + 7 * H, T + D + 7 * H);
    assert_eq!(s.scan(T + D + 8 * H), Vec::<String>::new());
    s.reading(&b, "WEIGHT", 80.3, T + 2 * D + 7 * H, T + 2 * D + 7 * H);
    let found = s.scan(T + 2 * D + 8 * H);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("p-hf rule weight-gain weight-gain: WEIGHT rises by ≥ 2 within 3d"),
        "{found:?}"
    );
    // Still climbing: the rule stays true, no second finding.
    s.reading(&b, "WEIGHT", 80.9, T + 3 * D + 7 * H, T + 3 * D + 7 * H);
    assert_eq!(s.scan(T + 3 * D + 8 * H), Vec::<String>::new());

    // Systolic above 140 on 3 of the last 5: the cuff's buffer arrives a day late, out of
    // order; the finding is at the reading where the rule turned true, marked received late.
    let upload = T + 3 * D;
    for (h, v) in [(9, 150.0), (7, 138.0), (8, 146.0), (10, 132.0), (11, 148.0)] {
        s.reading(&b, "NIBP_SYS", v, T + D + h * H, upload);
    }
    let found = s.scan(upload + H);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("sbp-high: NIBP_SYS > 140 on 3 of the last 5")
            && found[0].ends_with(" stale"),
        "{found:?}"
    );
    let rows = findings(s.conn(), stay, true).expect("findings");
    let sbp = rows
        .iter()
        .find(|f| f.rule == "sbp-high")
        .expect("sbp finding");
    assert_eq!((sbp.t_ms, sbp.value), (T + D + 11 * H, 148.0));
    assert_eq!(sbp.kind, "rule");
}

#[test]
fn a_stay_enrolled_after_its_history_was_stored_has_that_history_checked_once() {
    let s = station();
    let b = BedId::new("home", "p-late");
    // A clinic's history arrives before the charge nurse enrols the patient.
    s.reading(&b, "GLUCOSE", 54.0, T + H, T + 3 * H);
    s.reading(&b, "GLUCOSE", 110.0, T + 2 * H, T + 3 * H);
    assert_eq!(
        s.scan(T + 3 * H + 1_000),
        Vec::<String>::new(),
        "nobody enrolled yet"
    );
    // Enrolled from the start of that history: its low glucose is found, once.
    let (_, stay) = s.enrol("p-late", "MRN-L", T);
    assert_eq!(
        s.scan(T + 4 * H),
        ["p-late limit GLUCOSE_LOW Glucose LOW 54 mg/dL (limit 70) stale"]
    );
    assert_eq!(s.scan(T + 5 * H), Vec::<String>::new());
    assert_eq!(findings(s.conn(), stay, true).expect("findings").len(), 1);
}
