//! `vigilctl user …` and `vigilctl audit …`: user administration and the audit trail for hospital
//! IT. Everything is done by `vigil_core::auth` and `vigil_core::audit`; this file reads
//! arguments and passwords and prints. Actions are audited as `cli:<OS user>`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::history::csv_field;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use vigil_core::audit::{format_time_utc, Audit, AuditEntry, AuditFilter};
use vigil_core::auth::{check_password, Actor, AuthConfig, AuthService, Role, UserInfo};
use vigil_core::store;

#[derive(Args)]
pub struct DbArg {
    /// SQLite database file of the station.
    #[arg(long)]
    db: PathBuf,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user. The password is read from standard input (first line) when it is not a
    /// terminal, else prompted for twice. Creates the database if it does not exist.
    Add {
        name: String,
        /// nurse, charge-nurse or admin.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        db: DbArg,
    },
    /// List users: name, role, enabled, locked out, must change password.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Disable a user: they can no longer log in.
    Disable {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Enable a disabled user again.
    Enable {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Give a user a temporary password that must be changed at the next log-in (also clears a
    /// lockout). Prints a generated one, or reads it from standard input with --password-stdin.
    ResetPassword {
        name: String,
        /// Read the temporary password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Clear a lockout after too many failed log-ins.
    Unlock {
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Change a user's role (their open sessions end).
    SetRole {
        name: String,
        /// nurse, charge-nurse or admin.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain of the audit trail and its MACs (with the station key). Exits
    /// non-zero and names the first broken link if an entry was altered, deleted, reordered or
    /// forged, if the protective triggers are gone or replaced, or if the trail no longer holds
    /// a head published earlier (--head).
    Verify {
        #[command(flatten)]
        db: DbArg,
        /// A head published earlier (syslog AUDITHEAD, the retained broker topic, or this
        /// command's output), `ID:HASH`: the trail must still hold it (removal of the newest
        /// entries is seen only this way).
        #[arg(long, value_name = "ID:HASH")]
        head: Option<String>,
        /// The station key file, when it is not beside the database (`[security] key_file`).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// List audit entries (a table, or CSV with --csv; a CSV export is itself audited).
    List {
        #[command(flatten)]
        db: DbArg,
        /// Only this actor (user name, or `cli:<OS user>`).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (login, login_failed, lockout, user_create, break_glass, ...).
        #[arg(long)]
        action: Option<String>,
        /// From this time (inclusive): ms since the epoch, 2025-01-31, or RFC 3339.
        #[arg(long, value_parser = parse_time)]
        from: Option<i64>,
        /// Before this time (exclusive): ms since the epoch, 2025-01-31, or RFC 3339.
        #[arg(long, value_parser = parse_time)]
        to: Option<i64>,
        /// Only the newest N entries.
        #[arg(long)]
        limit: Option<usize>,
        /// CSV on standard output (RFC 4180) instead of a table.
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Subcommand)]
pub enum DbCmd {
    /// Encrypt a plaintext database in place (SQLCipher; the key is derived from its station
    /// key, kept outside it). Stop the station first. Afterwards set `[storage] encrypt = true`
    /// so that a plaintext database is never accepted again.
    Encrypt {
        #[command(flatten)]
        db: DbArg,
        /// The station key file, when it is not beside the database (`[security] key_file`).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

pub fn run_db(cmd: DbCmd) -> Result<()> {
    match cmd {
        DbCmd::Encrypt { db, key_file } => {
            let path = require_file(&db.db)?;
            if let Some(k) = key_file {
                vigil_core::keys::configure(&path, vigil_core::keys::KeyStore::File(k));
            }
            let started = std::time::Instant::now();
            if store::encrypt_in_place(&path)? {
                println!(
                    "encrypted {} in {:.1} s; set [storage] encrypt = true in vigil.toml",
                    path.display(),
                    started.elapsed().as_secs_f64()
                );
            } else {
                println!("{} is encrypted already", path.display());
            }
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum StationCmd {
    /// This station's public key (Ed25519, from its station key): enrol it at the ward's other
    /// stations with `vigilctl station enrol`. Creates the database and key if there are none.
    Key {
        #[command(flatten)]
        db: DbArg,
    },
    /// Enrol another station of the ward (or replace its key or wards): its signed
    /// acknowledgements and audio pauses of those wards are accepted here. Audited.
    Enrol {
        /// The other station's id: its MQTT client id.
        station: String,
        /// Its public key (64 hex digits, `vigilctl station key` at that station).
        #[arg(long)]
        key: String,
        /// The wards whose alarm state it may send, comma-separated.
        #[arg(long)]
        wards: String,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// The enrolled stations: id, wards, key fingerprint, when and by whom.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Remove an enrolled station: its alarm state is refused from now on. Audited.
    Remove {
        station: String,
        #[command(flatten)]
        db: DbArg,
    },
}

/// `vigilctl station`: an adapter over `vigil_core::stations` (a running station takes the
/// change at its next start; the window applies it at once).
pub fn run_station(cmd: StationCmd) -> Result<()> {
    use vigil_core::auth::Permission;
    use vigil_core::stations;
    let by = Actor::cli();
    match cmd {
        StationCmd::Key { db } => {
            drop(store::open(&db.db)?);
            let key = vigil_core::keys::get(&db.db)?
                .with_context(|| format!("no station key for {}", db.db.display()))?;
            println!("{}", stations::own_public_key(&key));
        }
        StationCmd::Enrol {
            station,
            key,
            wards,
            label,
            db,
        } => {
            let svc = open_existing(&db.db)?;
            let now = store::now_ms();
            let auth = svc.authorize_admin(&by, Permission::ManageDevices, now)?;
            let e = stations::enrol(svc.connection(), &auth, &station, &key, &wards, &label, now)?;
            println!(
                "station {} enrolled for wards {} (key {})",
                e.station,
                e.wards.iter().cloned().collect::<Vec<_>>().join(","),
                e.fingerprint()
            );
        }
        StationCmd::List { db } => {
            let conn = store::open_read_only(&require_file(&db.db)?)?;
            println!("station,wards,key,label,enrolled,by");
            for e in stations::list(&conn)? {
                let wards = e.wards.iter().cloned().collect::<Vec<_>>().join(";");
                println!(
                    "{},{},{},{},{},{}",
                    csv_field(&e.station),
                    csv_field(&wards),
                    e.fingerprint(),
                    csv_field(&e.label),
                    format_time_utc(e.enrolled_ms),
                    csv_field(&e.enrolled_by)
                );
            }
        }
        StationCmd::Remove { station, db } => {
            let svc = open_existing(&db.db)?;
            let now = store::now_ms();
            let auth = svc.authorize_admin(&by, Permission::ManageDevices, now)?;
            stations::remove(svc.connection(), &auth, &station, now)?;
            println!("station {station} removed: its alarm state is refused from now on");
        }
    }
    Ok(())
}

pub fn run_user(cmd: UserCmd) -> Result<()> {
    let by = Actor::cli();
    match cmd {
        UserCmd::Add { name, role, db } => {
            let password = read_new_password(&name)?;
            let mut svc = AuthService::open(&db.db, AuthConfig::default())?;
            let u = svc.create_user(&by, &name, role, &password, store::now_ms())?;
            println!("created user {} ({})", u.name, u.role);
        }
        UserCmd::List { db } => {
            let svc = open_existing(&db.db)?;
            let now = store::now_ms();
            print_users(&svc.list_users(&by, now)?, now);
        }
        UserCmd::Disable { name, db } => {
            let mut svc = open_existing(&db.db)?;
            if svc.disable_user(&by, &name, store::now_ms())? {
                println!("disabled {name}");
            } else {
                println!("{name} was already disabled");
            }
        }
        UserCmd::Enable { name, db } => {
            let mut svc = open_existing(&db.db)?;
            if svc.enable_user(&by, &name, store::now_ms())? {
                println!("enabled {name}");
            } else {
                println!("{name} was already enabled");
            }
        }
        UserCmd::ResetPassword {
            name,
            password_stdin,
            db,
        } => {
            let mut svc = open_existing(&db.db)?;
            let given = if password_stdin {
                Some(read_stdin_line()?)
            } else {
                None
            };
            let temp = svc.reset_password(&by, &name, given.as_deref(), store::now_ms())?;
            if given.is_some() {
                println!("temporary password set for {name}; it must be changed at next log-in");
            } else {
                println!("temporary password for {name}: {temp}");
                println!("(it must be changed at next log-in)");
            }
        }
        UserCmd::Unlock { name, db } => {
            let mut svc = open_existing(&db.db)?;
            if svc.unlock_user(&by, &name, store::now_ms())? {
                println!("unlocked {name}");
            } else {
                println!("{name} was not locked out; failed log-in count cleared");
            }
        }
        UserCmd::SetRole { name, role, db } => {
            let mut svc = open_existing(&db.db)?;
            if svc.set_role(&by, &name, role, store::now_ms())? {
                println!("{name} is now {role}");
            } else {
                println!("{name} already has role {role}");
            }
        }
    }
    Ok(())
}

pub fn run_audit(cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Verify { db, head, key_file } => {
            let path = require_file(&db.db)?;
            if let Some(k) = key_file {
                vigil_core::keys::configure(&path, vigil_core::keys::KeyStore::File(k));
            }
            // Read-only, so that checking the trail never changes the evidence.
            let conn = store::open_read_only(&path)?;
            let r = Audit::verify(&conn).context("reading the audit trail")?;
            if let Some(b) = &r.first_break {
                bail!("audit trail BROKEN at {b} ({} entries read)", r.entries);
            }
            if !r.triggers_present {
                bail!(
                    "audit trail chain intact ({} entries), but its append-only triggers are \
                     not the ones Vigil created ({}): the database was modified outside Vigil",
                    r.entries,
                    r.trigger_findings.join("; ")
                );
            }
            if let Some(h) = head {
                let (id, hash) = h
                    .split_once(':')
                    .and_then(|(i, h)| Some((i.parse::<i64>().ok()?, h.to_string())))
                    .context("--head takes ID:HASH, e.g. 42:3f0a…")?;
                let published = vigil_core::audit::AuditHead {
                    station: String::new(),
                    id,
                    hash,
                    t_ms: 0,
                    mac: None,
                };
                let c = Audit::check_head(&conn, &published)?;
                if c != vigil_core::audit::HeadCheck::Extends {
                    bail!("audit trail {c}");
                }
                println!("the trail holds the published head {id}");
            }
            println!(
                "audit trail intact: {} entries ({})",
                r.entries,
                if r.keyed {
                    "hash chain and MACs checked with the station key"
                } else {
                    "hash chain only: no station key found for this database"
                }
            );
            if let Some(id) = r.last_id {
                println!("head: entry {id}, hash {}", r.head_hash);
                println!("head (for --head): {id}:{}", r.head_hash);
            }
        }
        AuditCmd::List {
            db,
            actor,
            action,
            from,
            to,
            limit,
            csv,
        } => {
            let filter = AuditFilter {
                actor,
                action,
                from_ms: from,
                to_ms: to,
                limit,
            };
            if csv {
                let conn = store::open(&require_file(&db.db)?)?;
                let out = std::io::stdout().lock();
                Audit::export_csv(&conn, &filter, Actor::cli().name(), store::now_ms(), out)
                    .context("exporting the audit trail")?;
            } else {
                let conn = store::open_read_only(&require_file(&db.db)?)?;
                print_entries(&Audit::list(&conn, &filter)?);
            }
        }
    }
    Ok(())
}

fn require_file(path: &Path) -> Result<PathBuf> {
    if !path.is_file() {
        bail!("no database at {}", path.display());
    }
    Ok(path.to_path_buf())
}

pub(crate) fn open_existing(path: &Path) -> Result<AuthService> {
    Ok(AuthService::open(
        &require_file(path)?,
        AuthConfig::default(),
    )?)
}

fn read_new_password(name: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return read_stdin_line();
    }
    let first = rpassword::prompt_password(format!("New password for {name}: "))
        .context("reading the password")?;
    check_password(name, &first)?;
    let second =
        rpassword::prompt_password("Repeat the password: ").context("reading the password")?;
    if first != second {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}

/// The first line of standard input, without its line end.
pub(crate) fn read_stdin_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw.to_string())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn print_users(users: &[UserInfo], now_ms: i64) {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                u.role.to_string(),
                yes_no(u.enabled).to_string(),
                match u.locked_until_ms {
                    Some(t) if t > now_ms => format!("until {}", format_time_utc(t)),
                    _ => "no".to_string(),
                },
                yes_no(u.must_change_password).to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "ROLE", "ENABLED", "LOCKED", "MUST-CHANGE"], &rows);
}

fn print_entries(entries: &[AuditEntry]) {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                format_time_utc(e.t_ms),
                printable(&e.actor),
                printable(&e.action),
                printable(&e.target),
                printable(&e.detail),
            ]
        })
        .collect();
    print_table(
        &["ID", "TIME (UTC)", "ACTOR", "ACTION", "TARGET", "DETAIL"],
        &rows,
    );
}

/// Text from the trail as it may be shown on a terminal: control characters (escape sequences,
/// line breaks) are written as escapes instead of being sent to the terminal.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
}

/// `1735689600000` (ms since the epoch), `2025-01-01` (midnight UTC), `2025-01-01T08:30:00`
/// (UTC) or RFC 3339 with an offset (`2025-01-01T08:30:00+01:00`).
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "{s:?}: expected ms since the epoch, YYYY-MM-DD, or an RFC 3339 time"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1735689600000"), Ok(1_735_689_600_000));
        assert_eq!(parse_time("2025-01-01"), Ok(1_735_689_600_000));
        assert_eq!(parse_time("2025-01-01T00:00:01"), Ok(1_735_689_601_000));
        assert_eq!(
            parse_time("2025-01-01T01:00:00+01:00"),
            Ok(1_735_689_600_000)
        );
        assert_eq!(
            parse_time("2025-01-01T00:00:00.250Z"),
            Ok(1_735_689_600_250)
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn control_characters_are_not_printed_raw() {
        assert_eq!(printable("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
        assert_eq!(printable("plain é"), "plain é");
    }
}
