//! `vigilctl remote …` as a charge nurse and a nurse would run it: the real binary on a
//! temporary database (users made with `vigilctl user add`), passwords on standard input or in
//! $VIGIL_PASSWORD. Every action is checked in its output and in `vigilctl audit list`; the
//! refusals (a nurse enrolling, a wrong password, a plan the schedule's validator refuses, a
//! change rule its validator refuses, a measure that is no vital) change nothing.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;
use support::{run_vigilctl, Run};

const CARL: &str = "river-lamp-9-cedar";
const NINA: &str = "ward4-kettle-moon";
const BED: &str = "home/p-0042";

/// Run vigilctl with `args`, `stdin` as standard input and, if given, $VIGIL_PASSWORD.
fn run(args: &[&str], stdin: &str, password_env: Option<&str>) -> Run {
    run_vigilctl(args, stdin, password_env)
}

/// `vigilctl remote ARGS --db DB --user USER`, the password on standard input.
fn remote(db: &str, user: &str, password: &str, args: &[&str]) -> Run {
    let mut all = vec!["remote"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", db, "--user", user]);
    run(&all, &format!("{password}\n"), None)
}

/// The rows of `vigilctl audit list --action ACTION` (the header left out).
fn audit(db: &str, action: &str) -> Vec<String> {
    let r = run(&["audit", "list", "--db", db, "--action", action], "", None);
    assert!(r.ok(), "audit list: {r:?}");
    r.stdout.lines().skip(1).map(str::to_string).collect()
}

/// A database with a nurse, a charge nurse and an admin made through the CLI.
fn station(dir: &tempfile::TempDir) -> (PathBuf, String) {
    let db = dir.path().join("station.db");
    let d = db.to_string_lossy().into_owned();
    for (name, role, pw) in [
        ("nina", "nurse", NINA),
        ("carl", "charge-nurse", CARL),
        ("ada", "admin", "amber-quill-72-fjord"),
    ] {
        let r = run(
            &["user", "add", name, "--role", role, "--db", &d],
            &format!("{pw}\n"),
            None,
        );
        assert!(r.ok(), "user add {name}: {r:?}");
    }
    (db, d)
}

fn enrol(d: &str, user: &str, password: &str) -> Run {
    remote(
        d,
        user,
        password,
        &[
            "enrol",
            "--bed",
            BED,
            "--mrn",
            "MRN-0042",
            "--name",
            "Jane Roe",
            "--dob",
            "1950-03-14",
            "--tz",
            "Europe/London",
        ],
    )
}

fn write_plan(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write plan");
    p.to_string_lossy().into_owned()
}

const PLAN: &str = r#"
# Jane Roe's plan: blood pressure twice a day, oxygen saturation in the morning.
[[item]]
id = "bp"
kind = "reading"
measure = "NIBP_SYS"
times = "07:00-10:00, 18:00-21:00"

[[item]]
id = "spo2"
kind = "reading"
measure = "SPO2"
times = "08:00 ± 1h"
late_grace_min = 30
"#;

/// The change rules added to [`PLAN`] in its version 2, one of each form.
const RULES: &str = r#"
# Heart failure: weight gain of 2 kg in 3 days; systolic above 140 on 3 of the last 5.
[[rule]]
id = "weight-gain"
measure = "weight"
rise = 2
within = "72h"

[[rule]]
id = "sbp-high"
measure = "NIBP_SYS"
above = 140
n = 3
m = 5
"#;

#[test]
fn a_charge_nurse_enrols_plans_pauses_and_discharges_a_remote_patient() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, d) = station(&dir);

    // Enrol (password on standard input).
    let r = enrol(&d, "carl", CARL);
    assert!(r.ok(), "enrol: {r:?}");
    assert!(
        r.stdout
            .contains("enrolled MRN MRN-0042 (Jane Roe, born 1950-03-14, Europe/London) in remote bed home/p-0042"),
        "{r:?}"
    );
    let rows = audit(&d, "remote_patient_enrol");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("carl") && rows[0].contains(BED) && rows[0].contains("mrn=MRN-0042"),
        "{rows:?}"
    );
    assert!(
        !rows[0].contains("Jane"),
        "the trail names the MRN, never the name: {rows:?}"
    );

    // No plan yet.
    let r = remote(&d, "nina", NINA, &["plan", "show", "--bed", BED]);
    assert!(r.ok(), "plan show: {r:?}");
    assert!(r.stdout.contains("no care plan set"), "{r:?}");

    // Set the plan from a file ($VIGIL_PASSWORD this time).
    let plan = write_plan(dir.path(), "plan.toml", PLAN);
    let r = run(
        &[
            "remote", "plan", "set", "--db", &d, "--user", "carl", "--bed", BED, "--file", &plan,
        ],
        "",
        Some(CARL),
    );
    assert!(r.ok(), "plan set: {r:?}");
    assert!(
        r.stdout
            .contains("care plan of remote bed home/p-0042 set: version 1 (2 items)"),
        "{r:?}"
    );
    let rows = audit(&d, "care_plan_set");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("carl")
            && rows[0].contains("v1: bp reading NIBP_SYS \"07:00-10:00, 18:00-21:00\"")
            && rows[0].contains("spo2 reading SPO2 \"07:00-09:00\"")
            && rows[0].contains("grace 30m"),
        "{rows:?}"
    );

    // The same plan again is refused as unchanged.
    let r = run(
        &[
            "remote", "plan", "set", "--db", &d, "--user", "carl", "--bed", BED, "--file", &plan,
        ],
        "",
        Some(CARL),
    );
    assert!(!r.ok(), "unchanged plan accepted: {r:?}");
    assert!(r.stderr.contains("unchanged (version 1)"), "{r:?}");

    // A nurse reads the plan in force: version, who set it, every item.
    let r = remote(&d, "nina", NINA, &["plan", "show", "--bed", BED]);
    assert!(r.ok(), "plan show: {r:?}");
    assert!(
        r.stdout
            .contains("remote bed home/p-0042: MRN MRN-0042, Jane Roe, Europe/London (active)"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("care plan version 1, set by carl at "),
        "{r:?}"
    );
    let bp = r
        .stdout
        .lines()
        .find(|l| l.starts_with("bp "))
        .unwrap_or_else(|| panic!("no bp row: {r:?}"));
    for want in [
        "reading",
        "NIBP_SYS",
        "07:00-10:00, 18:00-21:00",
        "60 min",
        "120 min",
    ] {
        assert!(bp.contains(want), "{want:?} missing: {bp}");
    }
    let spo2 = r
        .stdout
        .lines()
        .find(|l| l.starts_with("spo2 "))
        .unwrap_or_else(|| panic!("no spo2 row: {r:?}"));
    for want in ["reading", "SPO2", "07:00-09:00", "30 min"] {
        assert!(spo2.contains(want), "{want:?} missing: {spo2}");
    }
    let reads = audit(&d, "phi_read");
    assert!(
        reads
            .iter()
            .any(|l| l.contains("nina") && l.contains(BED) && l.contains("care plan")),
        "{reads:?}"
    );

    // Pause with a reason.
    let r = remote(
        &d,
        "carl",
        CARL,
        &["pause", "--bed", BED, "--reason", "hospital stay"],
    );
    assert!(r.ok(), "pause: {r:?}");
    assert!(
        r.stdout
            .contains("monitoring of remote bed home/p-0042 (MRN MRN-0042) paused: hospital stay"),
        "{r:?}"
    );
    let rows = audit(&d, "remote_patient_pause");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("carl") && rows[0].contains("\"hospital stay\""),
        "{rows:?}"
    );
    // Paused twice is refused.
    let r = remote(
        &d,
        "carl",
        CARL,
        &["pause", "--bed", BED, "--reason", "travel"],
    );
    assert!(!r.ok() && r.stderr.contains("already paused"), "{r:?}");

    // IT registers the patient's home device to the bed (its own action, as for a ward bed).
    let r = run(
        &[
            "device",
            "add",
            "bp-cuff-77",
            "--bed",
            BED,
            "--label",
            "home cuff",
            "--db",
            &d,
        ],
        "",
        None,
    );
    assert!(r.ok(), "device add: {r:?}");

    // The list, as a table and as JSON.
    let r = remote(&d, "nina", NINA, &["list"]);
    assert!(r.ok(), "list: {r:?}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(BED))
        .unwrap_or_else(|| panic!("no row: {r:?}"));
    for want in [
        "MRN-0042",
        "Jane Roe",
        "paused",
        "hospital stay",
        "v1",
        "bp-cuff-77",
    ] {
        assert!(row.contains(want), "{want:?} missing: {row}");
    }
    let r = run(
        &["remote", "list", "--json", "--db", &d, "--user", "nina"],
        "",
        Some(NINA),
    );
    assert!(r.ok(), "list --json: {r:?}");
    let v = r.json();
    let all = v.as_array().expect("array");
    assert_eq!(all.len(), 1, "{v}");
    let p = &all[0];
    assert_eq!(p["bed"], BED);
    assert_eq!(p["mrn"], "MRN-0042");
    assert_eq!(p["dob"], "1950-03-14");
    assert_eq!(p["tz"], "Europe/London");
    assert_eq!(p["state"], "paused");
    assert_eq!(p["pause"]["reason"], "hospital stay");
    assert_eq!(p["pause"]["by"], "carl");
    assert_eq!(p["plan"]["version"], 1);
    assert_eq!(p["plan"]["set_by"], "carl");
    assert_eq!(p["plan"]["items"][0]["id"], "bp");
    assert_eq!(p["plan"]["items"][0]["measure"], "NIBP_SYS");
    assert_eq!(
        p["devices"],
        serde_json::json!([{"device": "bp-cuff-77", "label": "home cuff", "enabled": true}])
    );
    let reads = audit(&d, "phi_read");
    assert!(
        reads
            .iter()
            .any(|l| l.contains("nina") && l.contains("remote patient list")),
        "{reads:?}"
    );

    // Resume.
    let r = remote(&d, "carl", CARL, &["resume", "--bed", BED]);
    assert!(r.ok(), "resume: {r:?}");
    assert!(
        r.stdout
            .contains("monitoring of remote bed home/p-0042 (MRN MRN-0042) resumed"),
        "{r:?}"
    );
    let rows = audit(&d, "remote_patient_resume");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("carl") && rows[0].contains(BED),
        "{rows:?}"
    );
    let r = run(
        &["remote", "list", "--json", "--db", &d, "--user", "carl"],
        "",
        Some(CARL),
    );
    assert!(r.ok(), "list --json: {r:?}");
    let v = r.json();
    assert_eq!(v[0]["state"], "active", "{v}");
    assert_eq!(v[0]["pause"], Value::Null, "{v}");

    // The adherence report (CSV): the plan was set moments ago, so nothing is due yet, and no
    // reading came; the share of nothing is left empty, never 0 % or 100 %. The read is
    // audited.
    let r = remote(&d, "nina", NINA, &["adherence"]);
    assert!(r.ok(), "adherence: {r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "bed,mrn,due_7d,on_time_7d,received_late_7d,taken_late_7d,missed_7d,in_window_7d,\
             due_30d,on_time_30d,received_late_30d,taken_late_30d,missed_30d,in_window_30d,\
             days_with_data_30d",
            "home/p-0042,MRN-0042,0,0,0,0,0,,0,0,0,0,0,,0",
        ],
        "{r:?}"
    );
    assert!(
        audit(&d, "phi_read")
            .iter()
            .any(|e| e.contains("remote adherence report")),
        "{:?}",
        audit(&d, "phi_read")
    );

    // Version 2 adds change rules, one of each form: printed when set and shown, audited.
    let plan2 = write_plan(dir.path(), "plan2.toml", &format!("{PLAN}{RULES}"));
    let r = remote(
        &d,
        "carl",
        CARL,
        &["plan", "set", "--bed", BED, "--file", &plan2],
    );
    assert!(r.ok(), "plan set with rules: {r:?}");
    assert!(
        r.stdout
            .contains("care plan of remote bed home/p-0042 set: version 2 (2 items, 2 rules)"),
        "{r:?}"
    );
    let rows = audit(&d, "care_plan_set");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let v2 = rows
        .iter()
        .find(|l| l.contains("v2: "))
        .unwrap_or_else(|| panic!("no v2 entry: {rows:?}"));
    assert!(
        v2.contains("carl")
            && v2.contains("v2: bp reading NIBP_SYS")
            && v2.contains("; rule weight-gain: WEIGHT rises by ≥ 2 within 3d")
            && v2.contains("; rule sbp-high: NIBP_SYS > 140 on 3 of the last 5"),
        "{rows:?}"
    );
    let r = remote(&d, "nina", NINA, &["plan", "show", "--bed", BED]);
    assert!(r.ok(), "plan show: {r:?}");
    assert!(
        r.stdout.contains("care plan version 2, set by carl at "),
        "{r:?}"
    );
    assert!(r.stdout.lines().any(|l| l.starts_with("bp ")), "{r:?}");
    for (id, want) in [
        ("weight-gain ", ["WEIGHT", "rises by ≥ 2 within 3d"]),
        ("sbp-high ", ["NIBP_SYS", "> 140 on 3 of the last 5"]),
    ] {
        let row = r
            .stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no {id:?} row: {r:?}"));
        for w in want {
            assert!(row.contains(w), "{w:?} missing: {row}");
        }
    }
    let r = run(
        &["remote", "list", "--json", "--db", &d, "--user", "nina"],
        "",
        Some(NINA),
    );
    assert!(r.ok(), "list --json: {r:?}");
    let v = r.json();
    assert_eq!(
        v[0]["plan"]["rules"],
        serde_json::json!([
            {"id": "weight-gain", "measure": "WEIGHT", "rise": 2.0, "within": "3d"},
            {"id": "sbp-high", "measure": "NIBP_SYS", "above": 140.0, "n": 3, "m": 5},
        ]),
        "{v}"
    );
    // A bad rule is refused with the validator's message; version 2 stays in force.
    let bad = write_plan(
        dir.path(),
        "bad-rule.toml",
        &format!("{PLAN}\n[[rule]]\nid = \"sbp-high\"\nmeasure = \"NIBP_SYS\"\nabove = 140\nn = 6\nm = 5\n"),
    );
    let r = remote(
        &d,
        "carl",
        CARL,
        &["plan", "set", "--bed", BED, "--file", &bad],
    );
    assert!(!r.ok(), "bad rule accepted: {r:?}");
    assert!(
        r.stderr
            .contains("rule `sbp-high`: 6 of the last 5 is not a count (1 <= n <= m <= 50)"),
        "{r:?}"
    );
    assert_eq!(audit(&d, "care_plan_set").len(), 2);
    let r = remote(&d, "nina", NINA, &["plan", "show", "--bed", BED]);
    assert!(
        r.ok() && r.stdout.contains("care plan version 2,") && r.stdout.contains("sbp-high "),
        "{r:?}"
    );

    // Discharge: the list is empty again.
    let r = remote(&d, "carl", CARL, &["discharge", "--bed", BED]);
    assert!(r.ok(), "discharge: {r:?}");
    assert!(
        r.stdout
            .contains("MRN MRN-0042 discharged from remote bed home/p-0042"),
        "{r:?}"
    );
    let rows = audit(&d, "remote_patient_discharge");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("carl") && rows[0].contains("mrn=MRN-0042"),
        "{rows:?}"
    );
    let r = run(
        &["remote", "list", "--json", "--db", &d, "--user", "nina"],
        "",
        Some(NINA),
    );
    assert!(r.ok(), "list --json: {r:?}");
    assert_eq!(r.json(), serde_json::json!([]));

    // Every command logged in and out as its user.
    let logins = audit(&d, "login");
    let logouts = audit(&d, "logout");
    assert!(logins.iter().any(|l| l.contains("carl")), "{logins:?}");
    assert!(logins.iter().any(|l| l.contains("nina")), "{logins:?}");
    assert_eq!(logins.len(), logouts.len(), "{logins:?}\n{logouts:?}");

    // And the trail is intact.
    let r = run(&["audit", "verify", "--db", &d], "", None);
    assert!(r.ok(), "audit verify: {r:?}");
}

#[test]
fn the_plan_file_format_is_in_the_help() {
    let r = run(&["remote", "plan", "set", "--help"], "", None);
    assert!(r.ok(), "{r:?}");
    for line in [
        "  [[item]]\n",
        "  id = \"bp\"",
        "  kind = \"reading\"",
        "  measure = \"NIBP_SYS\"",
        "  times = \"07:00-10:00, 18:00-21:00\"\n",
        "  times = \"08:00 ± 1h\"\n",
        "  [[rule]]\n",
        "  id = \"weight-gain\"",
        "  rise = 2",
        "  within = \"3d\"",
        "  above = 140",
        "  n = 3",
        "  m = 5",
    ] {
        assert!(r.stdout.contains(line), "{line:?} missing: {r:?}");
    }
}

#[test]
fn refusals_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, d) = station(&dir);

    // A nurse may not enrol: a permission error, a non-zero exit, nothing written.
    let r = enrol(&d, "nina", NINA);
    assert!(!r.ok(), "nurse enrolled: {r:?}");
    assert!(
        r.stderr.contains("nina may not enrol remote patients")
            && r.stderr
                .contains("role nurse may not admit_discharge_transfer"),
        "{r:?}"
    );
    assert!(audit(&d, "remote_patient_enrol").is_empty());
    // Nor may IT's admin: clinical actions are not theirs.
    let r = enrol(&d, "ada", "amber-quill-72-fjord");
    assert!(!r.ok(), "admin enrolled: {r:?}");
    assert!(r.stderr.contains("role admin may not"), "{r:?}");
    assert!(audit(&d, "remote_patient_enrol").is_empty());
    // A wrong password is refused, and the failure recorded.
    let r = enrol(&d, "carl", "not-carls-password");
    assert!(!r.ok(), "wrong password accepted: {r:?}");
    assert!(
        r.stderr.contains("log-in as \"carl\" refused")
            && r.stderr.contains("wrong user name or password"),
        "{r:?}"
    );
    let failed = audit(&d, "login_failed");
    assert!(
        failed
            .iter()
            .any(|l| l.contains("carl") && l.contains("wrong password")),
        "{failed:?}"
    );
    assert!(audit(&d, "remote_patient_enrol").is_empty());
    // No password at all.
    let r = remote(&d, "carl", "", &["list"]);
    assert!(!r.ok() && r.stderr.contains("no password"), "{r:?}");
    let r = run(
        &["remote", "list", "--db", &d, "--user", "carl"],
        "",
        Some(""),
    );
    assert!(!r.ok() && r.stderr.contains("VIGIL_PASSWORD"), "{r:?}");
    // A bed that is no bed is refused before anything is read.
    let r = remote(&d, "carl", CARL, &["resume", "--bed", "p-0042"]);
    assert!(!r.ok() && r.stderr.contains("not a bed"), "{r:?}");

    let r = enrol(&d, "carl", CARL);
    assert!(r.ok(), "enrol: {r:?}");

    // Plans refused, each with the message that says why.
    let item = |id: &str, kind: &str, measure: &str, times: &str| {
        format!(
            "[[item]]\nid = \"{id}\"\nkind = \"{kind}\"\nmeasure = \"{measure}\"\n\
             times = \"{times}\"\n"
        )
    };
    for (name, text, why) in [
        // Overlapping windows: the schedule validator's message.
        (
            "overlap",
            item("bp", "reading", "NIBP_SYS", "07:00-10:00, 09:00-11:00"),
            "windows 07:00-10:00 and 09:00-11:00 overlap",
        ),
        // A reading of a measure that is no vital.
        (
            "measure",
            item("sugar", "reading", "GLUCOSE_X", "08:00 ± 1h"),
            "\"GLUCOSE_X\" is not a vital Vigil receives",
        ),
        // A dose item whose medication is not spelt as dispensers report it (one spelling).
        (
            "dose",
            item("metformin", "dose", "Metformin", "08:00 ± 1h"),
            "item metformin: invalid field medication: \"Metformin\" is not a medication id",
        ),
        // A file that is not a plan (a misspelt table) names what is wrong.
        ("typo", "[[items]]\nid = \"bp\"\n".to_string(), "items"),
        // A rule mixing the two forms: the rule validator's message, naming the forms.
        (
            "rule-form",
            format!(
                "{}[[rule]]\nid = \"gain\"\nmeasure = \"WEIGHT\"\nrise = 2\nn = 3\nm = 5\n",
                item("bp", "reading", "NIBP_SYS", "07:00-10:00")
            ),
            "rule `gain`: `n` and `m` belong to `above` or `below`, not to `rise`; a rule is \
             `rise` or `fall` with `within`, or `above` or `below` with `n` and `m`",
        ),
        // A rule on a measure that is no vital.
        (
            "rule-measure",
            "[[rule]]\nid = \"gain\"\nmeasure = \"BODY_MASS\"\nrise = 2\nwithin = \"3d\"\n"
                .to_string(),
            "rule gain: \"BODY_MASS\" is not a vital Vigil receives",
        ),
    ] {
        let plan = write_plan(dir.path(), &format!("{name}.toml"), &text);
        let r = remote(
            &d,
            "carl",
            CARL,
            &["plan", "set", "--bed", BED, "--file", &plan],
        );
        assert!(!r.ok(), "{name}: accepted: {r:?}");
        assert!(r.stderr.contains(why), "{name}: {r:?}");
    }
    // A nurse may not set a plan.
    let plan = write_plan(dir.path(), "plan.toml", PLAN);
    let r = remote(
        &d,
        "nina",
        NINA,
        &["plan", "set", "--bed", BED, "--file", &plan],
    );
    assert!(!r.ok(), "nurse set a plan: {r:?}");
    assert!(r.stderr.contains("nina may not set care plans"), "{r:?}");
    assert!(audit(&d, "care_plan_set").is_empty());

    // A pause needs a reason.
    let r = remote(&d, "carl", CARL, &["pause", "--bed", BED, "--reason", "  "]);
    assert!(
        !r.ok() && r.stderr.contains("a reason is required"),
        "{r:?}"
    );
    assert!(audit(&d, "remote_patient_pause").is_empty());

    // The patient is still active, without a plan.
    let r = run(
        &["remote", "list", "--json", "--db", &d, "--user", "carl"],
        "",
        Some(CARL),
    );
    assert!(r.ok(), "list: {r:?}");
    let v = r.json();
    assert_eq!(v[0]["state"], "active", "{v}");
    assert_eq!(v[0]["plan"], Value::Null, "{v}");

    // Five wrong passwords lock an account out; then even the right one is refused.
    for _ in 0..5 {
        let r = remote(&d, "nina", "not-ninas-password", &["list"]);
        assert!(!r.ok(), "wrong password accepted: {r:?}");
    }
    assert_eq!(audit(&d, "lockout").len(), 1);
    let r = remote(&d, "nina", NINA, &["list"]);
    assert!(!r.ok(), "locked-out account accepted: {r:?}");
    assert!(r.stderr.contains("account locked"), "{r:?}");
}

/// The simulated cohort: a nurse may not enrol it; a charge nurse's log-in allows it, and the
/// simulation (`sim:cohort`) enrols its twenty patients with plans and devices, once. Then
/// `remote simulate` publishes its history and readings to a broker, every one acknowledged.
#[test]
fn the_simulated_cohort_is_enrolled_once_as_the_simulation_and_published() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, d) = station(&dir);
    let r = remote(&d, "nina", NINA, &["cohort-enrol"]);
    assert!(!r.ok(), "a nurse enrolled the cohort: {r:?}");
    assert!(audit(&d, "remote_patient_enrol").is_empty());

    let r = remote(
        &d,
        "carl",
        CARL,
        &["cohort-enrol", "--backfill-hours", "24"],
    );
    assert!(r.ok(), "cohort-enrol: {r:?}");
    assert!(r.stdout.contains("20 enrolled, 0 left alone"), "{r:?}");
    let enrolments = audit(&d, "remote_patient_enrol");
    assert_eq!(enrolments.len(), 20);
    assert!(
        enrolments.iter().all(|l| l.contains("sim:cohort")),
        "{enrolments:?}"
    );
    assert_eq!(audit(&d, "care_plan_set").len(), 20);
    let r = run(
        &["remote", "list", "--json", "--db", &d, "--user", "carl"],
        "",
        Some(CARL),
    );
    assert!(r.ok(), "list: {r:?}");
    let v = r.json();
    let all = v.as_array().expect("array");
    assert_eq!(all.len(), 20);
    assert_eq!(all[0]["bed"], "home/h-01", "{v}");
    assert!(all.iter().all(|p| p["plan"] != Value::Null), "{v}");

    // Again: nothing changes.
    let r = remote(&d, "carl", CARL, &["cohort-enrol"]);
    assert!(r.ok(), "cohort-enrol again: {r:?}");
    assert!(r.stdout.contains("0 enrolled, 20 left alone"), "{r:?}");
    assert_eq!(audit(&d, "remote_patient_enrol").len(), 20);

    // Published to a broker, following the enrolled cohort's start.
    let (_bdir, _mosq, _port, url) = support::fresh_broker();
    let r = run(
        &[
            "remote",
            "simulate",
            "--broker",
            &url,
            "--db",
            &d,
            "--duration",
            "1",
        ],
        "",
        None,
    );
    assert!(r.ok(), "simulate: {r:?}");
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("published "))
        .unwrap_or_default();
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(n.len() == 3 && n[0] > 50 && n[0] == n[2], "{r:?}");
}

/// The cohort on compressed time, headless: a day and a half in 15 s, on a database of its
/// own. The forgetful patient's evening blood pressure is missed, the clinic's batches resolve
/// what they raised as received late, and nothing is refused; an existing file is refused.
#[test]
fn the_cohort_on_compressed_time_prints_its_alerts_as_they_happen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo.db");
    let db = db.to_str().expect("utf-8 path");
    let demo = |speed: &str| {
        run(
            &[
                "remote",
                "demo",
                "--db",
                db,
                "--speed",
                speed,
                "--duration",
                "15",
            ],
            "",
            None,
        )
    };
    let r = demo("0.5");
    assert!(
        !r.ok() && r.stderr.contains("--speed must be from 1"),
        "{r:?}"
    );
    // 8640x: a day in 10 s.
    let r = demo("8640");
    assert!(r.ok(), "{r:?}");
    assert!(
        r.stdout.contains("20 remote patients") || r.stderr.contains("20 remote patients"),
        "{r:?}"
    );
    let forgotten = r
        .stdout
        .lines()
        .filter(|l| {
            l.contains("(cohort time) home/h-03 missed_reading bp ") && l.contains("raised")
        })
        .count();
    assert!(forgotten >= 1, "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains(" home/h-06 ") && l.contains("resolved (received_late)")),
        "the clinic's batch: {}",
        r.stdout
    );
    let summary = r
        .stdout
        .lines()
        .find(|l| l.starts_with("simulated "))
        .unwrap_or_else(|| panic!("no summary: {r:?}"));
    let hours: f64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(hours >= 30.0, "{summary}");
    assert!(!r.stdout.contains("rejected"), "{}", r.stdout);
    // The file is the demonstration's now: a second run is refused, nothing written.
    let r = demo("480");
    assert!(!r.ok() && r.stderr.contains("exists"), "{r:?}");
}
