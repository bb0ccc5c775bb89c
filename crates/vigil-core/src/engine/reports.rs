//! Alarm strips saved automatically ([`crate::report::auto`]): every few seconds on the
//! engine's clock, on a connection of its own and a blocking thread, never in the way of an
//! alarm. The strips go to `[reports] strip_dir`, else `strips/` beside the database.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Level;

use super::security::blocking;
use super::{lock, Shared};
use crate::report::{auto, ReportSettings};

/// How often the saver looks for strips whose window has passed.
const EVERY: Duration = Duration::from_secs(2);

pub(super) async fn strip_loop(
    shared: Arc<Shared>,
    settings: ReportSettings,
    mut stop: watch::Receiver<bool>,
) {
    let db = shared.db_path.clone();
    let dir = settings.strip_dir.clone().unwrap_or_else(|| {
        db.parent()
            .map_or_else(|| "strips".into(), |p| p.join("strips"))
    });
    let failed = (
        "alarm strips cannot be saved (database)",
        "alarm strip saver start failed",
    );
    let open_db = db.clone();
    let Some(conn) = blocking(move || crate::store::open(&open_db), Level::ERROR, failed).await
    else {
        return;
    };
    tracing::info!(target: "vigil::report", dir = %dir.display(), priorities = ?settings.auto_strip, "alarm strips saved automatically");
    let conn = Arc::new(Mutex::new(conn));
    let settings = Arc::new(settings);
    let mut timer = tokio::time::interval(EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = timer.tick() => {}
        }
        let now = shared.clock.now_ms();
        let (c, s, d) = (Arc::clone(&conn), Arc::clone(&settings), dir.clone());
        let failed = (
            "alarm strips not saved this pass; retrying",
            "alarm strip task failed",
        );
        blocking(
            move || auto::run(&lock(&c), &s, &d, now),
            Level::ERROR,
            failed,
        )
        .await;
    }
}
