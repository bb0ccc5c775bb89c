//! `vigilctl report …` and `vigilctl export …` as a nurse, a charge nurse and IT would run them:
//! the real binary on a temporary database (users made with `vigilctl user add`, a remote
//! patient enrolled with `vigilctl remote enrol`), the password on standard input. Each printout
//! and export is a new private file and an audit entry with its reason; the refusals (IT
//! printing, a nurse exporting with identity, an alarm that was never raised, a file that
//! exists) leave no file and no entry. (The data path itself, a recording through the engine to
//! a strip and a FHIR round trip, is `vigil-core`'s `reports` test.)

use std::path::Path;

use crate::support;
use support::{run_vigilctl, Run};

const CARL: &str = "river-lamp-9-cedar";
const NINA: &str = "ward4-kettle-moon";
const ADA: &str = "amber-quill-72-fjord";

fn run(args: &[&str], stdin: &str) -> Run {
    run_vigilctl(args, stdin, None)
}

/// `vigilctl GROUP ARGS --db DB --user USER`, the password on standard input.
fn as_user(group: &[&str], db: &str, user: &str, password: &str, args: &[&str]) -> Run {
    let mut all = group.to_vec();
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", db, "--user", user]);
    run(&all, &format!("{password}\n"))
}

fn audit(db: &str, action: &str) -> Vec<String> {
    let r = run(&["audit", "list", "--db", db, "--action", action], "");
    assert!(r.ok(), "audit list: {r:?}");
    r.stdout.lines().skip(1).map(str::to_string).collect()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

#[test]
fn printouts_and_exports_are_role_checked_private_and_audited() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("station.db");
    let d = db.to_string_lossy().into_owned();
    for (name, role, pw) in [
        ("nina", "nurse", NINA),
        ("carl", "charge-nurse", CARL),
        ("ada", "admin", ADA),
    ] {
        let r = run(
            &["user", "add", name, "--role", role, "--db", &d],
            &format!("{pw}\n"),
        );
        assert!(r.ok(), "user add {name}: {r:?}");
    }
    let r = as_user(
        &["remote", "enrol"],
        &d,
        "carl",
        CARL,
        &[
            "--bed",
            "home/p-0042",
            "--mrn",
            "MRN-0042",
            "--name",
            "Jane Roe",
            "--dob",
            "1950-03-14",
            "--tz",
            "Europe/London",
        ],
    );
    assert!(r.ok(), "enrol: {r:?}");
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let from = "2026-01-01T00:00:00Z";
    // The exports cover the patient's stay (enrolled just now): ms since the epoch.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let (stay_from, stay_to) = ((now - 3_600_000).to_string(), (now + 60_000).to_string());

    // A nurse prints a trend report and the ward's shift handover: PDF and SVG files, private.
    let trend = out("trend.pdf");
    let r = as_user(
        &["report", "trend"],
        &d,
        "nina",
        NINA,
        &[
            "--bed",
            "home/p-0042",
            "--from",
            from,
            "--to",
            "2026-01-02T00:00:00Z",
            "--interval",
            "1h",
            "--out",
            &trend,
            "--reason",
            "physician review",
        ],
    );
    assert!(r.ok(), "trend: {r:?}");
    assert!(r.stdout.contains("2 pages"), "{r:?}");
    let pdf = std::fs::read(&trend).expect("trend file");
    assert!(pdf.starts_with(b"%PDF"));
    #[cfg(unix)]
    assert_eq!(mode(Path::new(&trend)), 0o600);
    let shift = out("shift.svg");
    let r = as_user(
        &["report", "shift"],
        &d,
        "nina",
        NINA,
        &[
            "--ward",
            "home",
            "--from",
            from,
            "--to",
            "2026-01-01T08:00:00Z",
            "--format",
            "svg",
            "--out",
            &shift,
            "--reason",
            "handover",
        ],
    );
    assert!(r.ok(), "shift: {r:?}");
    let svg = std::fs::read_to_string(&shift).expect("shift file");
    assert!(
        svg.contains("<svg") && svg.contains("297mm"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    // The same file again is refused, not overwritten.
    let again = as_user(
        &["report", "shift"],
        &d,
        "nina",
        NINA,
        &[
            "--ward",
            "home",
            "--from",
            from,
            "--to",
            "2026-01-01T08:00:00Z",
            "--format",
            "svg",
            "--out",
            &shift,
            "--reason",
            "handover",
        ],
    );
    assert!(
        !again.ok() && again.stderr.contains("must not exist"),
        "{again:?}"
    );

    // IT prints nothing; a strip of an alarm never raised is said so.
    let r = as_user(
        &["report", "trend"],
        &d,
        "ada",
        ADA,
        &[
            "--bed",
            "home/p-0042",
            "--from",
            from,
            "--out",
            &out("it.pdf"),
            "--reason",
            "curious",
        ],
    );
    assert!(
        !r.ok() && r.stderr.contains("may not print reports"),
        "{r:?}"
    );
    let r = as_user(
        &["report", "strip"],
        &d,
        "nina",
        NINA,
        &[
            "--bed",
            "home/p-0042",
            "--alarm",
            "home/p-0042/HR_HIGH",
            "--onset",
            from,
            "--out",
            &out("strip.pdf"),
            "--reason",
            "chart copy",
        ],
    );
    assert!(!r.ok() && r.stderr.contains("no alarm"), "{r:?}");
    assert!(!Path::new(&out("it.pdf")).exists() && !Path::new(&out("strip.pdf")).exists());

    // Exports: a nurse de-identified only (no identity in it); a charge nurse identified.
    let deid = out("deid.json");
    let r = as_user(
        &["export", "fhir"],
        &d,
        "nina",
        NINA,
        &[
            "--bed",
            "home/p-0042",
            "--from",
            from,
            "--out",
            &deid,
            "--identified",
            "--reason",
            "study 42",
        ],
    );
    assert!(
        !r.ok() && r.stderr.contains("may not export identified data"),
        "{r:?}"
    );
    let r = as_user(
        &["export", "fhir"],
        &d,
        "nina",
        NINA,
        &[
            "--bed",
            "home/p-0042",
            "--from",
            &stay_from,
            "--to",
            &stay_to,
            "--out",
            &deid,
            "--reason",
            "study 42",
        ],
    );
    assert!(r.ok(), "deid: {r:?}");
    let text = std::fs::read_to_string(&deid).expect("export");
    assert!(text.contains("\"collection\""), "{text}");
    for secret in ["Jane", "MRN-0042", "1950-03-14", "p-0042"] {
        assert!(!text.contains(secret), "{secret} in a de-identified export");
    }
    let ident = out("ident.csv");
    let r = as_user(
        &["export", "csv"],
        &d,
        "carl",
        CARL,
        &[
            "--bed",
            "home/p-0042",
            "--from",
            &stay_from,
            "--to",
            &stay_to,
            "--identified",
            "--waveforms",
            "--out",
            &ident,
            "--reason",
            "transfer to the GP",
        ],
    );
    assert!(r.ok(), "identified: {r:?}");
    let text = std::fs::read_to_string(&ident).expect("export");
    assert!(text.contains("MRN-0042") && text.starts_with('#'), "{text}");
    assert!(Path::new(&out("ident_waveforms.csv")).exists(), "{r:?}");

    // On record: who, what, why; the refusals are not.
    let prints = audit(&d, "report_print");
    assert_eq!(prints.len(), 2, "{prints:?}");
    assert!(prints
        .iter()
        .any(|l| l.contains("nina") && l.contains("reason: physician review")));
    let exports = audit(&d, "data_export");
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert!(exports.iter().any(|l| l.contains("carl")
        && l.contains("csv identified")
        && l.contains("transfer to the GP")));
    assert!(exports
        .iter()
        .any(|l| l.contains("nina") && l.contains("fhir de-identified")));
}
