//! Remote patients on a real SQLite file: every action with its audit entry, refusals that
//! write nothing, plan versions in order.

use super::*;
use crate::auth::{Actor, AuthService, Role};
use crate::usecase::testkit::{self, allow_audit, entries, it, refuse_audit, PW};
use vigil_schedule::{Kind, RuleSpec};

/// 2026-06-01T00:00:00Z.
const T: i64 = 1_780_272_000_000;

/// A station with carl (charge nurse: [`MANAGE`], [`PLAN`], [`READ`]) and nina (nurse:
/// [`READ`]).
struct Station {
    _dir: tempfile::TempDir,
    svc: AuthService,
    manage: Authorized,
    plan: Authorized,
    read: Authorized,
    nurse: Authorized,
}

fn station() -> Station {
    let (dir, mut svc) = testkit::service();
    let mut carl = testkit::proofs(&mut svc, "carl", Role::ChargeNurse, &[MANAGE, PLAN, READ]);
    let nurse = testkit::proofs(&mut svc, "nina", Role::Nurse, &[READ]).remove(0);
    let read = carl.remove(2);
    let plan = carl.remove(1);
    let manage = carl.remove(0);
    Station {
        _dir: dir,
        svc,
        manage,
        plan,
        read,
        nurse,
    }
}

impl Station {
    fn conn(&self) -> &Connection {
        self.svc.connection()
    }

    /// Rows of the three tables: stays, pauses, plan versions.
    fn rows(&self) -> [i64; 3] {
        ["remote_patients", "remote_pauses", "care_plans"].map(|t| {
            self.conn()
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .expect("count")
        })
    }

    /// This module's audit entries: "action target detail".
    fn trail(&self) -> Vec<String> {
        entries(&self.svc)
            .into_iter()
            .filter(|e| e.action.starts_with("remote_patient_") || e.action == "care_plan_set")
            .map(|e| format!("{} {} {}", e.action, e.target, e.detail))
            .collect()
    }
}

fn bed(b: &str) -> BedId {
    BedId::new("home", b)
}

fn jane() -> NewRemotePatient<'static> {
    NewRemotePatient {
        mrn: "MRN-1",
        name: "Jane Q. Doe",
        dob: "1950-02-03",
        tz: "Europe/London",
    }
}

fn bp_twice_a_day() -> Vec<ItemSpec> {
    vec![ItemSpec::new(
        "bp",
        Kind::Reading,
        "NIBP_SYS",
        "07:00-10:00, 18:00-21:00",
    )]
}

#[test]
fn enrol_pause_resume_discharge_each_with_its_audit_entry() {
    let s = station();
    let b = bed("p-01");
    let p = enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    assert_eq!(
        (p.mrn.as_str(), p.name.as_str(), p.dob.as_str(), p.tz.name()),
        ("MRN-1", "Jane Q. Doe", "1950-02-03", "Europe/London")
    );
    assert_eq!((p.state(), p.enrolled_by.as_str()), (State::Active, "carl"));
    assert_eq!(in_bed(s.conn(), &b).expect("read"), Some(p.clone()));

    // Paused, with its reason; not twice.
    let paused = pause(
        s.conn(),
        &s.manage,
        &b,
        " admitted to hospital ",
        T + 60_000,
    )
    .expect("paused");
    assert_eq!(paused.state(), State::Paused);
    assert_eq!(in_bed(s.conn(), &b).expect("read"), Some(paused.clone()));
    let pz = paused.pause.as_ref().expect("pause");
    assert_eq!(
        (pz.reason.as_str(), pz.by.as_str()),
        ("admitted to hospital", "carl")
    );
    assert!(matches!(
        pause(s.conn(), &s.manage, &b, "again", T + 2),
        Err(RemoteError::AlreadyPaused(_))
    ));
    // Resumed; not when not paused.
    let back = resume(s.conn(), &s.manage, &b, T + 3 * 60_000).expect("resumed");
    assert_eq!(back.state(), State::Active);
    assert!(matches!(
        resume(s.conn(), &s.manage, &b, T + 4),
        Err(RemoteError::NotPaused(_))
    ));

    // Paused again, then discharged: the pause ends with the stay.
    pause(s.conn(), &s.manage, &b, "travelling", T + 10 * 60_000).expect("paused");
    let out = discharge(s.conn(), &s.manage, &b, T + 20 * 60_000).expect("discharged");
    assert_eq!(out.state(), State::Discharged);
    assert_eq!(stay(s.conn(), p.stay).expect("read"), Some(out.clone()));
    assert_eq!(in_bed(s.conn(), &b).expect("read"), None);
    assert!(current(s.conn()).expect("list").is_empty());
    let ended: Vec<_> = pauses(s.conn(), p.stay)
        .expect("pauses")
        .into_iter()
        .map(|z| (z.from_ms, z.to_ms, z.reason))
        .collect();
    assert_eq!(
        ended,
        [
            (
                T + 60_000,
                Some(T + 3 * 60_000),
                "admitted to hospital".into()
            ),
            (T + 10 * 60_000, Some(T + 20 * 60_000), "travelling".into()),
        ]
    );

    // The same patient comes back to the same bed: a new stay.
    let again = enrol(s.conn(), &s.manage, &b, &jane(), T + 30 * 60_000).expect("again");
    assert_ne!(again.stay, p.stay);
    assert_eq!(
        s.trail(),
        [
            "remote_patient_enrol home/p-01 mrn=MRN-1; tz=Europe/London",
            "remote_patient_pause home/p-01 mrn=MRN-1; reason \"admitted to hospital\"",
            "remote_patient_resume home/p-01 mrn=MRN-1; paused 2 min",
            "remote_patient_pause home/p-01 mrn=MRN-1; reason \"travelling\"",
            "remote_patient_discharge home/p-01 mrn=MRN-1",
            "remote_patient_enrol home/p-01 mrn=MRN-1; tz=Europe/London",
        ]
    );
    assert!(Audit::verify(s.conn()).expect("verify").is_intact());
}

#[test]
fn invalid_input_is_refused_clearly_and_writes_nothing() {
    let s = station();
    let b = bed("p-01");
    let with = |f: &dyn Fn(&mut NewRemotePatient<'static>)| {
        let mut n = jane();
        f(&mut n);
        enrol(s.conn(), &s.manage, &b, &n, T)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        with(&|n| n.tz = "Mars/Olympus_Mons"),
        "time zone \"Mars/Olympus_Mons\": not an IANA time zone name \
         (e.g. Europe/London, America/New_York)"
    );
    for tz in ["", "GMT+25", "europe/london "] {
        assert!(with(&|n| n.tz = tz).starts_with("time zone"), "{tz:?}");
    }
    assert_eq!(with(&|n| n.mrn = "  "), "MRN is required");
    assert_eq!(with(&|n| n.name = ""), "name is required");
    assert_eq!(
        with(&|n| n.dob = ""),
        "date of birth is required (the second identifier)"
    );
    assert!(with(&|n| n.dob = "1950-02-30").contains("expected YYYY-MM-DD"));
    assert!(with(&|n| n.dob = "2999-01-01").contains("in the future"));
    assert_eq!(s.rows(), [0, 0, 0]);

    // Duplicate enrolment: the same bed, the same MRN elsewhere.
    enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    let john = NewRemotePatient {
        mrn: "MRN-2",
        name: "John Roe",
        ..jane()
    };
    let e = enrol(s.conn(), &s.manage, &b, &john, T).unwrap_err();
    assert_eq!(
        e.to_string(),
        "remote bed home/p-01 already has a patient; discharge first"
    );
    let e = enrol(s.conn(), &s.manage, &bed("p-02"), &jane(), T).unwrap_err();
    assert_eq!(
        e.to_string(),
        "MRN MRN-1 is already enrolled in remote bed home/p-01"
    );
    // A discharged patient's bed is not given to another MRN.
    discharge(s.conn(), &s.manage, &b, T + 1).expect("discharged");
    assert!(matches!(
        enrol(s.conn(), &s.manage, &b, &john, T + 2),
        Err(RemoteError::BedOfAnother(_))
    ));
    // Nor a bed with a ward patient (the register's own permission is the same).
    let ward_bed = BedId::new("4W", "01");
    let ward_patient = crate::patients::NewPatient {
        mrn: "MRN-9",
        name: "Ward Patient",
        dob: "1960-01-01",
        ..Default::default()
    };
    crate::patients::admit(s.conn(), &s.manage, &ward_bed, &ward_patient, T).expect("admit");
    assert!(matches!(
        enrol(s.conn(), &s.manage, &ward_bed, &john, T + 3),
        Err(RemoteError::WardBed(_))
    ));

    // Unknown patient: every change to a bed without a current stay.
    let empty = bed("p-99");
    let unknown = [
        pause(s.conn(), &s.manage, &empty, "x", T).unwrap_err(),
        resume(s.conn(), &s.manage, &empty, T).unwrap_err(),
        discharge(s.conn(), &s.manage, &empty, T).unwrap_err(),
        set_plan(s.conn(), &s.plan, &empty, &bp_twice_a_day(), &[], T).unwrap_err(),
        discharge(s.conn(), &s.manage, &b, T + 4).unwrap_err(),
    ];
    for e in unknown {
        assert!(matches!(e, RemoteError::NoPatient(_)), "{e}");
    }
    // A pause needs its reason.
    enrol(s.conn(), &s.manage, &bed("p-02"), &john, T + 5).expect("enrolled");
    for reason in ["", "   ", &"x".repeat(MAX_REASON + 1), "a\u{7}b"] {
        assert!(matches!(
            pause(s.conn(), &s.manage, &bed("p-02"), reason, T + 6),
            Err(RemoteError::Invalid(_))
        ));
    }
    assert_eq!(s.rows(), [2, 0, 0]);
    assert_eq!(s.trail().len(), 3, "{:?}", s.trail());
}

#[test]
fn plan_versions_are_kept_in_order_with_who_set_them() {
    let s = station();
    let b = bed("p-01");
    let p = enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    assert_eq!(current_plan(s.conn(), p.stay).expect("read"), None);

    let v1 = set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), &[], T + 1).expect("v1");
    assert_eq!(
        (v1.version, v1.set_by.as_str(), v1.set_ms),
        (1, "carl", T + 1)
    );
    assert_eq!(v1.plan.tz(), p.tz, "the plan runs on the patient's clock");
    // The same plan again is not a new version.
    assert!(matches!(
        set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), &[], T + 2),
        Err(RemoteError::Unchanged(_, 1))
    ));
    // Bad schedules: refused by the schedule's validator, with its words.
    let bad = |id: &str, times: &str| {
        let items = [
            ItemSpec::new("bp", Kind::Reading, "NIBP_SYS", "07:00-10:00"),
            ItemSpec::new(id, Kind::Reading, "SPO2", times),
        ];
        set_plan(s.conn(), &s.plan, &b, &items, &[], T + 3)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad("weight", "07:00-25:00"),
        "care plan: `25:00` is not a time of day (HH:MM, 00:00 to 23:59; 24:00 as an end)"
    );
    assert_eq!(
        bad("spo2", "08:00-12:00, 11:00-13:00"),
        "care plan: windows 08:00-12:00 and 11:00-13:00 overlap"
    );
    assert_eq!(
        bad("bp", "18:00-21:00"),
        "care plan: item `bp` appears twice in the plan"
    );
    assert!(bad("Weight!", "06:00-10:00").contains("is not an item id"));
    assert!(bad("weight", "").contains("empty schedule"));

    // A paused patient's plan may change.
    pause(s.conn(), &s.manage, &b, "in hospital", T + 4).expect("paused");
    let mut items = bp_twice_a_day();
    items.push(ItemSpec {
        urgent_after_min: 30,
        ..ItemSpec::new("weight", Kind::Reading, "WEIGHT", "06:00-10:00")
    });
    // A dose item names its medication as dispensers report it (one spelling, lower case).
    let mut with_dose = items.clone();
    with_dose.push(ItemSpec::new(
        "metformin",
        Kind::Dose,
        "Metformin",
        "08:00 ± 1h",
    ));
    let e = set_plan(s.conn(), &s.plan, &b, &with_dose, &[], T + 5).unwrap_err();
    assert!(e.to_string().contains("is not a medication id"), "{e}");
    let v2 = set_plan(s.conn(), &s.plan, &b, &items, &[], T + 5).expect("v2");
    let v3 = set_plan(s.conn(), &s.plan, &b, &[], &[], T + 6).expect("v3: no items");
    assert_eq!((v2.version, v3.version), (2, 3));
    assert_eq!(
        plan_versions(s.conn(), p.stay).expect("versions"),
        [v1.clone(), v2.clone(), v3.clone()]
    );
    assert_eq!(current_plan(s.conn(), p.stay).expect("read"), Some(v3));
    assert_eq!(plan_version(s.conn(), p.stay, 2).expect("read"), Some(v2));
    assert_eq!(plan_version(s.conn(), p.stay, 9).expect("read"), None);

    // Versions are kept as set.
    for sql in [
        "UPDATE care_plans SET plan = '{}' WHERE version = 1",
        "DELETE FROM care_plans",
    ] {
        let e = s.conn().execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("kept as set"), "{e}");
    }
    // A discharged stay's plan cannot change; its versions remain.
    discharge(s.conn(), &s.manage, &b, T + 7).expect("discharged");
    assert!(matches!(
        set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), &[], T + 8),
        Err(RemoteError::NoPatient(_))
    ));
    assert_eq!(plan_versions(s.conn(), p.stay).expect("versions").len(), 3);
    let plans: Vec<String> = s
        .trail()
        .into_iter()
        .filter(|t| t.starts_with("care_plan_set"))
        .collect();
    assert_eq!(
        plans,
        [
            "care_plan_set home/p-01 mrn=MRN-1; v1: \
             bp reading NIBP_SYS \"07:00-10:00, 18:00-21:00\" urgent +60m grace 120m",
            "care_plan_set home/p-01 mrn=MRN-1; v2: \
             bp reading NIBP_SYS \"07:00-10:00, 18:00-21:00\" urgent +60m grace 120m; \
             weight reading WEIGHT \"06:00-10:00\" urgent +30m grace 120m",
            "care_plan_set home/p-01 mrn=MRN-1; v3: no items",
        ]
    );
}

/// Heart failure at home: weight gain of 2 kg in 3 days (the measure in any case), systolic
/// above 140 on 3 of the last 5 readings.
fn heart_failure_rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec::rise("weight-gain", "weight", 2.0, "3d"),
        RuleSpec::above("sbp-high", "NIBP_SYS", 140.0, 3, 5),
    ]
}

#[test]
fn a_plan_with_change_rules_round_trips_and_is_audited() {
    let s = station();
    let b = bed("p-01");
    let p = enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    let weight = [ItemSpec::new(
        "weight",
        Kind::Reading,
        "WEIGHT",
        "06:00-10:00",
    )];
    let v1 = set_plan(
        s.conn(),
        &s.plan,
        &b,
        &weight,
        &heart_failure_rules(),
        T + 1,
    )
    .expect("v1");
    let rules: Vec<String> = v1.plan.rules().iter().map(ToString::to_string).collect();
    assert_eq!(
        rules,
        [
            "weight-gain: WEIGHT rises by ≥ 2 within 3d",
            "sbp-high: NIBP_SYS > 140 on 3 of the last 5",
        ],
        "the measure as the contract spells it"
    );
    // Read back as set, by every read.
    assert_eq!(
        current_plan(s.conn(), p.stay).expect("read"),
        Some(v1.clone())
    );
    assert_eq!(
        load(s.conn()).expect("load")[0].plan.as_ref(),
        Some(&v1),
        "the engine's read"
    );
    // The same items and rules again: unchanged. The rules alone make a new version.
    assert!(matches!(
        set_plan(
            s.conn(),
            &s.plan,
            &b,
            &weight,
            &heart_failure_rules(),
            T + 2
        ),
        Err(RemoteError::Unchanged(_, 1))
    ));
    let v2 = set_plan(
        s.conn(),
        &s.plan,
        &b,
        &weight,
        &heart_failure_rules()[..1],
        T + 3,
    )
    .expect("v2: one rule fewer");
    assert_eq!(v2.plan.rules().len(), 1);
    assert_eq!(plan_versions(s.conn(), p.stay).expect("versions"), [v1, v2]);
    let plans: Vec<String> = s
        .trail()
        .into_iter()
        .filter(|t| t.starts_with("care_plan_set"))
        .collect();
    assert_eq!(
        plans,
        [
            "care_plan_set home/p-01 mrn=MRN-1; v1: \
             weight reading WEIGHT \"06:00-10:00\" urgent +60m grace 120m; \
             rule weight-gain: WEIGHT rises by ≥ 2 within 3d; \
             rule sbp-high: NIBP_SYS > 140 on 3 of the last 5",
            "care_plan_set home/p-01 mrn=MRN-1; v2: \
             weight reading WEIGHT \"06:00-10:00\" urgent +60m grace 120m; \
             rule weight-gain: WEIGHT rises by ≥ 2 within 3d",
        ]
    );
}

#[test]
fn a_bad_rule_is_refused_with_its_reason_and_nothing_is_stored() {
    let s = station();
    let b = bed("p-01");
    enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    let refused = |rules: &[RuleSpec]| {
        set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), rules, T + 1)
            .unwrap_err()
            .to_string()
    };
    // A measure that is no vital: the same check as a reading item's.
    let e = refused(&[RuleSpec::rise("gain", "WEIGHT_KG", 2.0, "3d")]);
    assert!(
        e.starts_with("rule gain: \"WEIGHT_KG\" is not a vital Vigil receives (")
            && e.contains("WEIGHT"),
        "{e}"
    );
    // The schedule's validator, with its words.
    assert_eq!(
        refused(&[RuleSpec {
            n: Some(3),
            ..RuleSpec::rise("gain", "WEIGHT", 2.0, "3d")
        }]),
        "care plan: rule `gain`: `n` and `m` belong to `above` or `below`, not to `rise`; \
         a rule is `rise` or `fall` with `within`, or `above` or `below` with `n` and `m`"
    );
    assert_eq!(
        refused(&[RuleSpec::rise("gain", "WEIGHT", 2.0, "5w")]),
        "care plan: `5w` is not a look-back (whole days, hours or minutes: `3d`, `72h`, `90m`; \
         above 0 and at most 31 days)"
    );
    assert_eq!(
        refused(&[RuleSpec::above("sbp", "NIBP_SYS", 140.0, 6, 5)]),
        "care plan: rule `sbp`: 6 of the last 5 is not a count (1 <= n <= m <= 50)"
    );
    // Item and rule ids are one set.
    assert_eq!(
        refused(&[RuleSpec::above("bp", "NIBP_SYS", 140.0, 3, 5)]),
        "care plan: rule `bp` appears twice in the plan, or has an item's id (items and rules \
         share one set of ids)"
    );
    assert_eq!(s.rows(), [1, 0, 0]);
    assert!(
        s.trail().iter().all(|t| !t.starts_with("care_plan_set")),
        "{:?}",
        s.trail()
    );
}

#[test]
fn a_plan_stored_before_rules_existed_still_loads() {
    let s = station();
    let b = bed("p-01");
    let p = enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    // As version 1 was written before plans had rules: no "rules" key.
    let stored = r#"{"tz":"Europe/London","items":[{"id":"bp","kind":"reading","measure":"NIBP_SYS","times":"07:00-10:00, 18:00-21:00","urgent_after_min":60,"late_grace_min":120}]}"#;
    s.conn()
        .execute(
            "INSERT INTO care_plans (patient, version, plan, set_ms, set_by)
             VALUES (?1, 1, ?2, ?3, 'carl')",
            params![p.stay, stored, T],
        )
        .expect("insert");
    let v1 = current_plan(s.conn(), p.stay)
        .expect("read")
        .expect("a plan");
    assert_eq!(
        v1.plan,
        parse_plan(p.tz, &bp_twice_a_day(), &[]).expect("plan")
    );
    assert!(v1.plan.rules().is_empty());
    // Such a plan is the same as one set now without rules, and is written the same way.
    assert!(matches!(
        set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), &[], T + 1),
        Err(RemoteError::Unchanged(_, 1))
    ));
    assert_eq!(serde_json::to_string(&v1.plan).expect("json"), stored);
    // Rules added on top make version 2, which reads back with them.
    let v2 = set_plan(
        s.conn(),
        &s.plan,
        &b,
        &bp_twice_a_day(),
        &heart_failure_rules()[1..],
        T + 2,
    )
    .expect("v2");
    assert_eq!(load(s.conn()).expect("load")[0].plan.as_ref(), Some(&v2));
}

#[test]
fn the_enrolled_list_has_each_patient_with_plan_in_force_and_devices() {
    let s = station();
    let (b1, b2) = (bed("p-01"), bed("p-02"));
    enrol(s.conn(), &s.manage, &b1, &jane(), T).expect("enrolled");
    let john = NewRemotePatient {
        mrn: "MRN-2",
        name: "John Roe",
        tz: "America/New_York",
        ..jane()
    };
    enrol(s.conn(), &s.manage, &b2, &john, T).expect("enrolled");
    set_plan(s.conn(), &s.plan, &b1, &bp_twice_a_day(), &[], T + 1).expect("v1");
    let weight = [ItemSpec::new(
        "weight",
        Kind::Reading,
        "WEIGHT",
        "06:00-10:00",
    )];
    set_plan(s.conn(), &s.plan, &b1, &weight, &[], T + 2).expect("v2");
    // A home cuff registered to Jane's remote bed, as any device is (IT).
    let cuff = crate::usecase::RegisterDevice {
        device: crate::telemetry::DeviceId::parse("cuff-17").expect("id"),
        bed: b1.clone(),
        label: crate::usecase::Label::parse("home BP cuff").expect("label"),
    };
    crate::usecase::register_device(&s.svc, &it(&s.svc, Permission::ManageDevices), &cuff, T)
        .expect("registered");

    // The nurse and the charge nurse read it; the list is by bed.
    let list = enrolled(s.conn(), &s.nurse).expect("nurse reads");
    assert_eq!(
        list,
        enrolled(s.conn(), &s.read).expect("charge nurse reads")
    );
    let summary: Vec<_> = list
        .iter()
        .map(|e| {
            (
                e.patient.bed.key(),
                e.patient.tz.name(),
                e.plan.as_ref().map(|v| v.version),
                e.devices
                    .iter()
                    .map(|d| d.device.as_str())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "home/p-01".into(),
                "Europe/London",
                Some(2),
                vec!["cuff-17"]
            ),
            ("home/p-02".into(), "America/New_York", None, vec![]),
        ]
    );
    assert_eq!(
        list[0]
            .plan
            .as_ref()
            .map(|v| v.plan.items()[0].id().as_str()),
        Some("weight")
    );
    // Paused patients stay on the list; discharged ones leave it.
    pause(s.conn(), &s.manage, &b2, "in hospital", T + 3).expect("paused");
    assert_eq!(
        load(s.conn()).expect("load")[1].patient.state(),
        State::Paused
    );
    discharge(s.conn(), &s.manage, &b1, T + 4).expect("discharged");
    let left: Vec<_> = load(s.conn())
        .expect("load")
        .into_iter()
        .map(|e| e.patient.bed.key())
        .collect();
    assert_eq!(left, ["home/p-02"]);

    // What a locked screen may show.
    let m = list[0].patient.masked();
    assert_eq!(
        (m.name.as_str(), m.mrn.as_str(), m.dob.as_str()),
        ("J. Q. D.", "", "")
    );
}

#[test]
fn a_wrong_role_is_refused_and_nothing_is_written() {
    let mut s = station();
    let it_admin = Actor::Local("t".into());
    s.svc
        .create_user(&it_admin, "ada", Role::Admin, PW, 1_000)
        .expect("admin");
    let nina = s.svc.login("nina", PW, 1_000).expect("login");
    let ada = s.svc.login("ada", PW, 1_000).expect("login");
    // The matrix: a nurse may read, never enrol or plan; IT neither.
    for p in [MANAGE, PLAN] {
        assert!(s.svc.authorize(Some(&nina), p, 1_000).is_err(), "nurse {p}");
    }
    for p in [MANAGE, PLAN, READ] {
        assert!(s.svc.authorize(Some(&ada), p, 1_000).is_err(), "admin {p}");
    }
    let devices = it(&s.svc, Permission::ManageDevices);

    // Proofs for other permissions are refused by every action, before anything is written.
    let b = bed("p-01");
    let before = s.trail();
    for wrong in [&s.nurse, &devices, &s.plan] {
        for e in [
            enrol(s.conn(), wrong, &b, &jane(), T).unwrap_err(),
            pause(s.conn(), wrong, &b, "x", T).unwrap_err(),
            resume(s.conn(), wrong, &b, T).unwrap_err(),
            discharge(s.conn(), wrong, &b, T).unwrap_err(),
        ] {
            assert!(matches!(e, RemoteError::Auth(_)), "{e}");
        }
    }
    enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    for wrong in [&s.nurse, &devices, &s.manage] {
        let e = set_plan(s.conn(), wrong, &b, &bp_twice_a_day(), &[], T).unwrap_err();
        assert!(matches!(e, RemoteError::Auth(_)), "{e}");
    }
    for wrong in [&s.nurse, &devices, &s.plan] {
        let e = pause(s.conn(), wrong, &b, "x", T).unwrap_err();
        assert!(matches!(e, RemoteError::Auth(_)), "{e}");
        let e = discharge(s.conn(), wrong, &b, T).unwrap_err();
        assert!(matches!(e, RemoteError::Auth(_)), "{e}");
    }
    // Reading needs the reading proof.
    for wrong in [&devices, &s.manage] {
        assert!(matches!(
            enrolled(s.conn(), wrong),
            Err(RemoteError::Auth(_))
        ));
    }
    assert_eq!(s.rows(), [1, 0, 0], "only carl's enrolment");
    assert_eq!(s.trail().len(), before.len() + 1);
    assert_eq!(
        in_bed(s.conn(), &b).expect("read").map(|p| p.state()),
        Some(State::Active)
    );
}

#[test]
fn a_change_whose_audit_entry_cannot_be_written_is_not_made() {
    let s = station();
    let b = bed("p-01");
    refuse_audit(&s.svc);
    assert!(matches!(
        enrol(s.conn(), &s.manage, &b, &jane(), T),
        Err(RemoteError::Audit(_))
    ));
    allow_audit(&s.svc);
    assert_eq!(s.rows(), [0, 0, 0]);
    enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
    refuse_audit(&s.svc);
    assert!(set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), &[], T).is_err());
    assert!(pause(s.conn(), &s.manage, &b, "x", T).is_err());
    assert!(discharge(s.conn(), &s.manage, &b, T).is_err());
    allow_audit(&s.svc);
    assert_eq!(s.rows(), [1, 0, 0]);
    assert_eq!(
        in_bed(s.conn(), &b).expect("read").map(|p| p.state()),
        Some(State::Active)
    );
}

// ---- Silence is an alarm: the watch on a real SQLite file, on the station's clock.

mod watch_tests {
    use super::*;
    use crate::remote::watch::{self, AlertChange, AlertKind, Change, Resolution, WatchSettings};
    use vigil_schedule::Level;

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;
    /// Past a window's end by more than the watch's settle time.
    const AFTER: i64 = 10_000;

    /// A reading of `code` taken at `taken`, received by the station at `received`.
    fn reading(s: &Station, b: &BedId, code: &str, taken: i64, received: i64) {
        s.conn()
            .execute(
                "INSERT INTO numerics
                   (ward, bed, device, t_ms, mdc, code, value, unit, status, received_ms)
                 VALUES (?1, ?2, 'cuff-1', ?3, 0, ?4, 128.0, 'mm[Hg]', 'final', ?5)",
                params![b.ward, b.bed, taken, code, received],
            )
            .expect("reading");
    }

    fn tick(s: &Station, now: i64) -> Vec<(String, Change)> {
        watch::tick(s.conn(), now, &WatchSettings::default())
            .expect("tick")
            .into_iter()
            .map(|c: AlertChange| {
                (
                    format!("{} {} {}", c.kind.as_str(), c.item, c.slot_date),
                    c.change,
                )
            })
            .collect()
    }

    fn resolutions(s: &Station, stay: i64) -> Vec<(String, String, Option<String>)> {
        let mut rows: Vec<_> = watch::alerts(s.conn(), stay)
            .expect("alerts")
            .into_iter()
            .map(|a| (format!("{} {}", a.item, a.slot_date), a.level, a.resolution))
            .collect();
        rows.reverse();
        rows
    }

    /// Jane (Europe/London, UTC+1 in June), enrolled at T, blood pressure twice a day from
    /// T + 1 min: windows 06:00-09:00Z and 17:00-20:00Z.
    fn jane_with_bp(s: &Station) -> (BedId, i64) {
        let b = bed("p-01");
        let p = enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
        set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), &[], T + M).expect("plan");
        (b, p.stay)
    }

    #[test]
    fn a_missed_reading_rises_escalates_and_a_late_upload_resolves_it_as_late() {
        let s = station();
        let (b, stay) = jane_with_bp(&s);
        // Morning: on time. Nothing stands at the window's end.
        reading(&s, &b, "NIBP_SYS", T + 6 * H + 30 * M, T + 6 * H + 30 * M);
        assert_eq!(tick(&s, T + 9 * H + AFTER), []);
        // Evening: nothing by 20:00Z: a missed reading, a warning...
        assert_eq!(
            tick(&s, T + 20 * H + AFTER),
            [(
                "missed_reading bp 2026-06-01".into(),
                Change::Raised(Level::Warning)
            )]
        );
        assert_eq!(tick(&s, T + 20 * H + 30 * M), [], "raised once");
        // ... urgent an hour later (the item's default).
        assert_eq!(
            tick(&s, T + 21 * H + AFTER),
            [("missed_reading bp 2026-06-01".into(), Change::Escalated)]
        );
        // The cuff's buffer arrives: taken at 18:00Z, in the window. Received late, not a
        // breach, and not raised again.
        reading(&s, &b, "NIBP_SYS", T + 18 * H, T + 21 * H + 30 * M);
        assert_eq!(
            tick(&s, T + 21 * H + 30 * M + AFTER),
            [(
                "missed_reading bp 2026-06-01".into(),
                Change::Resolved(Resolution::ReceivedLate)
            )]
        );
        assert_eq!(tick(&s, T + 22 * H), []);
        // Next morning: missed, then taken after the window within its grace: taken late.
        assert_eq!(
            tick(&s, T + 33 * H + AFTER),
            [(
                "missed_reading bp 2026-06-02".into(),
                Change::Raised(Level::Warning)
            )]
        );
        reading(&s, &b, "NIBP_SYS", T + 33 * H + 40 * M, T + 33 * H + 40 * M);
        assert_eq!(
            tick(&s, T + 33 * H + 40 * M + AFTER),
            [(
                "missed_reading bp 2026-06-02".into(),
                Change::Resolved(Resolution::TakenLate)
            )]
        );
        assert_eq!(
            resolutions(&s, stay),
            [
                (
                    "bp 2026-06-01".into(),
                    "urgent".into(),
                    Some("received_late".into())
                ),
                (
                    "bp 2026-06-02".into(),
                    "warning".into(),
                    Some("taken_late".into())
                ),
            ]
        );
    }

    #[test]
    fn only_counted_results_of_the_measure_meet_a_slot_in_any_order() {
        let s = station();
        let (b, stay) = jane_with_bp(&s);
        // Another vital, a cancelled result and "no reading" meet nothing.
        reading(&s, &b, "SPO2", T + 7 * H, T + 7 * H);
        reading(&s, &b, "NIBP_SYS", T + 7 * H + M, T + 7 * H + M);
        s.conn()
            .execute(
                "UPDATE numerics SET status = 'cancelled' WHERE code = 'NIBP_SYS'",
                [],
            )
            .expect("cancel");
        s.conn()
            .execute(
                "INSERT INTO numerics (ward, bed, device, t_ms, mdc, code, value, unit, status,
                   received_ms)
                 VALUES ('home', 'p-01', 'cuff-1', ?1, 0, 'NIBP_SYS', NULL, 'mm[Hg]', 'final', ?1)",
                [T + 7 * H + 2 * M],
            )
            .expect("no reading");
        assert_eq!(
            tick(&s, T + 9 * H + AFTER),
            [(
                "missed_reading bp 2026-06-01".into(),
                Change::Raised(Level::Warning)
            )]
        );
        // Readings of three windows arrive in one upload, newest first: each lands in its own
        // slot; the missed one resolves as received late, the others raise nothing.
        let upload = T + 44 * H;
        for taken in [T + 42 * H, T + 31 * H, T + 18 * H, T + 8 * H] {
            reading(&s, &b, "NIBP_SYS", taken, upload);
        }
        let changes = tick(&s, upload + AFTER);
        assert!(
            changes.contains(&(
                "missed_reading bp 2026-06-01".into(),
                Change::Resolved(Resolution::ReceivedLate)
            )),
            "{changes:?}"
        );
        // The evening of the 1st and the morning of the 2nd were due while nothing had come:
        // between the ticks they were never evaluated as missed, so nothing was raised for them.
        assert_eq!(
            changes
                .iter()
                .filter(|(_, c)| matches!(c, Change::Raised(_)))
                .count(),
            0,
            "{changes:?}"
        );
        assert_eq!(resolutions(&s, stay).len(), 1);
    }

    #[test]
    fn paused_slots_are_neither_due_nor_missed_and_a_discharge_resolves_what_stands() {
        let s = station();
        let (b, stay) = jane_with_bp(&s);
        reading(&s, &b, "NIBP_SYS", T + 7 * H, T + 7 * H);
        // Paused over the evening window: nothing is raised for it.
        pause(s.conn(), &s.manage, &b, "hospital stay", T + 12 * H).expect("pause");
        assert_eq!(tick(&s, T + 20 * H + AFTER), []);
        resume(s.conn(), &s.manage, &b, T + 26 * H).expect("resume");
        assert_eq!(
            tick(&s, T + 33 * H + AFTER),
            [(
                "missed_reading bp 2026-06-02".into(),
                Change::Raised(Level::Warning)
            )]
        );
        discharge(s.conn(), &s.manage, &b, T + 34 * H).expect("discharge");
        assert_eq!(
            tick(&s, T + 34 * H + AFTER),
            [(
                "missed_reading bp 2026-06-02".into(),
                Change::Resolved(Resolution::Discharged)
            )]
        );
        assert_eq!(tick(&s, T + 60 * H), [], "a discharged stay is not watched");
        assert_eq!(resolutions(&s, stay).len(), 1);
    }

    #[test]
    fn silent_devices_are_a_technical_alert_until_data_arrives() {
        let s = station();
        let b = bed("p-02");
        let p = enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
        let settings = WatchSettings {
            silent_after_ms: 6 * H,
            ..WatchSettings::default()
        };
        let run = |now: i64| -> Vec<(AlertKind, Change)> {
            watch::tick(s.conn(), now, &settings)
                .expect("tick")
                .into_iter()
                .map(|c| (c.kind, c.change))
                .collect()
        };
        reading(&s, &b, "SPO2", T + H, T + H);
        assert_eq!(
            run(T + 7 * H),
            [],
            "6 h of silence are reached at T + 7 h, settled after"
        );
        assert_eq!(
            run(T + 7 * H + AFTER),
            [(AlertKind::DeviceSilent, Change::Raised(Level::Warning))]
        );
        assert_eq!(
            run(T + 13 * H + AFTER),
            [(AlertKind::DeviceSilent, Change::Escalated)]
        );
        reading(&s, &b, "SPO2", T + 14 * H, T + 14 * H);
        assert_eq!(
            run(T + 14 * H + AFTER),
            [(
                AlertKind::DeviceSilent,
                Change::Resolved(Resolution::DataReceived)
            )]
        );
        // Silent again, then paused: a pause says no data is expected.
        assert_eq!(
            run(T + 20 * H + AFTER),
            [(AlertKind::DeviceSilent, Change::Raised(Level::Warning))]
        );
        pause(s.conn(), &s.manage, &b, "travel", T + 21 * H).expect("pause");
        assert_eq!(
            run(T + 21 * H + AFTER),
            [(
                AlertKind::DeviceSilent,
                Change::Resolved(Resolution::Paused)
            )]
        );
        assert_eq!(run(T + 40 * H), []);
        let rows = watch::alerts(s.conn(), p.stay).expect("alerts");
        assert_eq!(rows.len(), 2);
        assert!(rows
            .iter()
            .all(|r| r.kind == "device_silent" && r.resolved_ms.is_some()));
    }
}

mod adherence_tests {
    use super::*;
    use crate::remote::watch;

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    #[test]
    fn adherence_counts_expected_slots_on_time_late_and_missed_and_days_with_data() {
        let s = station();
        let b = bed("p-01");
        let p = enrol(s.conn(), &s.manage, &b, &jane(), T).expect("enrolled");
        // Blood pressure twice a day, 06:00-09:00Z and 17:00-20:00Z (London in June).
        set_plan(s.conn(), &s.plan, &b, &bp_twice_a_day(), &[], T + M).expect("plan");
        let reading = |taken: i64, received: i64| {
            s.conn()
                .execute(
                    "INSERT INTO numerics
                       (ward, bed, device, t_ms, mdc, code, value, unit, status, received_ms)
                     VALUES ('home', 'p-01', 'cuff-1', ?1, 0, 'NIBP_SYS', 131.0, 'mm[Hg]',
                             'final', ?2)",
                    params![taken, received],
                )
                .expect("reading");
        };
        // Day 1: morning on time, evening uploaded late (taken in the window).
        reading(T + 7 * H, T + 7 * H);
        reading(T + 18 * H, T + 23 * H);
        // Day 2: morning taken late (after the window, within the grace), evening missed.
        reading(T + 33 * H + 30 * M, T + 33 * H + 30 * M);
        // Day 3: paused all day: its slots are not expected.
        pause(s.conn(), &s.manage, &b, "hospital stay", T + 48 * H).expect("pause");
        resume(s.conn(), &s.manage, &b, T + 72 * H).expect("resume");
        // Day 4 at 12:00Z: the morning missed, the evening still to come.
        let now = T + 84 * H;
        let rows = watch::adherence(s.conn(), &s.read, now).expect("adherence");
        assert_eq!(rows.len(), 1);
        let a = &rows[0];
        assert_eq!((a.stay, a.bed.clone()), (p.stay, b.clone()));
        let want = vigil_schedule::Adherence {
            due: 5,
            on_time: 1,
            received_late: 1,
            taken_late: 1,
            missed: 2,
        };
        assert_eq!(a.last_30, want);
        assert_eq!(a.last_7, want, "all within 7 days");
        assert_eq!(a.last_30.taken_in_window(), 2);
        assert_eq!(a.days_with_data_30, 2, "readings taken on two local dates");
        // Seen by the nurse too; refused without the read permission.
        assert!(watch::adherence(s.conn(), &s.nurse, now).is_ok());
        assert!(matches!(
            watch::adherence(s.conn(), &s.manage, now),
            Err(RemoteError::Auth(_))
        ));
    }
}
