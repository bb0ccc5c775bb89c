//! Auditing reads of patient data without flooding the trail.
//!
//! Who looked at which patient's data, and when, must be in the trail (HIPAA audit controls);
//! one entry per query would not be read by anyone (a trend screen asks for several vitals,
//! scrolling asks again). So reads are recorded per run: the first read of a bed by a user is
//! an entry at once (`phi_read`: what and which time window), further reads of that bed by that
//! user within [`READ_RUN_GAP_MS`] of the previous one join the run, and when the run ends (the
//! gap passes, the user logs out or the session locks) one summary entry says how many reads of
//! what, covering which time window (`phi_read_summary`). A crash loses at most the summary:
//! the start of every run is already in the trail.

use std::collections::{BTreeMap, BTreeSet};

use super::{AuthError, AuthService, Session};
use crate::audit::{actions, format_time_utc, Audit};

/// Reads of one bed by one user closer together than this are one run (15 minutes).
pub const READ_RUN_GAP_MS: i64 = 15 * 60_000;

/// One read of patient data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhiRead<'a> {
    /// `ward/bed`, or `*` for the whole ward (the unmasked patient list).
    pub bed: &'a str,
    /// What was read: `trend HR`, `samples ECG_II`, `alarm history`, `patient list`.
    pub what: &'a str,
    /// The time window of the data read, ms since the epoch.
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug)]
struct Run {
    first_ms: i64,
    last_ms: i64,
    count: u64,
    kinds: BTreeSet<String>,
    from_ms: i64,
    to_ms: i64,
    break_glass: bool,
}

/// Open runs, by (user, bed).
#[derive(Debug, Default)]
pub(super) struct ReadRuns {
    runs: BTreeMap<(String, String), Run>,
}

fn window(from_ms: i64, to_ms: i64) -> String {
    format!("{} to {}", format_time_utc(from_ms), format_time_utc(to_ms))
}

impl AuthService {
    /// Record a read of patient data by the session's user (after [`AuthService::authorize`]
    /// allowed it): an entry at the start of a run, the rest joins the run.
    pub fn audit_read(
        &mut self,
        session: &Session,
        read: PhiRead<'_>,
        now_ms: i64,
    ) -> Result<(), AuthError> {
        self.check_live(session, now_ms)?;
        let key = (session.user().to_string(), read.bed.to_string());
        let bg = session.is_break_glass(now_ms);
        if let Some(run) = self.reads.runs.get_mut(&key) {
            if now_ms - run.last_ms < READ_RUN_GAP_MS {
                run.last_ms = now_ms;
                run.count += 1;
                run.kinds.insert(read.what.to_string());
                run.from_ms = run.from_ms.min(read.from_ms);
                run.to_ms = run.to_ms.max(read.to_ms);
                run.break_glass |= bg;
                return Ok(());
            }
        }
        if let Some(old) = self.reads.runs.remove(&key) {
            self.summarise(&key, &old, now_ms)?;
        }
        Audit::append(
            &self.conn,
            session.user(),
            actions::PHI_READ,
            read.bed,
            &format!(
                "{}{}, data {}",
                if bg { "[break-glass] " } else { "" },
                read.what,
                window(read.from_ms, read.to_ms)
            ),
            now_ms,
        )?;
        self.reads.runs.insert(
            key,
            Run {
                first_ms: now_ms,
                last_ms: now_ms,
                count: 1,
                kinds: [read.what.to_string()].into(),
                from_ms: read.from_ms,
                to_ms: read.to_ms,
                break_glass: bg,
            },
        );
        Ok(())
    }

    /// Summarise the runs that ended: quiet for [`READ_RUN_GAP_MS`], or all of `user`'s (log
    /// out, lock). Called by the idle timer ([`AuthService::check_idle`]).
    pub fn flush_reads(&mut self, user: Option<&str>, now_ms: i64) -> Result<(), AuthError> {
        let ended: Vec<(String, String)> = self
            .reads
            .runs
            .iter()
            .filter(|((u, _), r)| {
                user.is_some_and(|x| x == u) || now_ms - r.last_ms >= READ_RUN_GAP_MS
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            if let Some(run) = self.reads.runs.remove(&k) {
                self.summarise(&k, &run, now_ms)?;
            }
        }
        Ok(())
    }

    fn summarise(&self, key: &(String, String), run: &Run, now_ms: i64) -> Result<(), AuthError> {
        if run.count <= 1 {
            return Ok(()); // the start entry says it all
        }
        Audit::append(
            &self.conn,
            &key.0,
            actions::PHI_READ_SUMMARY,
            &key.1,
            &format!(
                "{}{} reads ({}) between {} and {}, data {}",
                if run.break_glass {
                    "[break-glass] "
                } else {
                    ""
                },
                run.count,
                run.kinds.iter().cloned().collect::<Vec<_>>().join(", "),
                format_time_utc(run.first_ms),
                format_time_utc(run.last_ms),
                window(run.from_ms, run.to_ms)
            ),
            now_ms,
        )?;
        Ok(())
    }
}
