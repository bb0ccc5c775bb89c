//! Vigil's care-plan schedule engine for remote patients: when a reading or a dose is due, which
//! concrete windows that gives in the patient's own time zone, what state each slot is in at a
//! given instant, and the adherence figures — as pure functions.
//!
//! Invariant (see Cargo.toml): pure. No clock, no I/O: every function that depends on the time
//! takes `now` as an argument; the tz database is compiled in. The engine feeds it and acts on
//! what it returns (alerts, reminders, the worklist).
//!
//! # Pieces
//! - [`item`]: a [`Plan`] (the patient's IANA zone and [`Item`]s); an item's schedule, [`Times`],
//!   has one parser (`"07:00-10:00, 18:00-21:00"`, `"08:00 ± 1h"`, `"3/day 08:00-20:00"`,
//!   `"06:00 for 24h"`, `"06:00-10:00 on mon,thu"`) and one validator ([`Times::new`]: 1 to
//!   24 windows, none empty, none overlapping on the clock, the last of a day included against
//!   the first of the next); typed errors ([`ScheduleError`]); serde goes through the same
//!   validator.
//! - [`window`]: an item's concrete UTC windows over an instant range ([`Item::slots`]), each
//!   with a stable key ([`SlotKey`]: the local date it opens on and the window's index).
//! - [`eval`]: each slot's [`SlotState`] at `now` from the [`Event`]s received by then
//!   ([`evaluate`], [`Item::evaluate`]).
//! - [`mod@adherence`]: [`Adherence`] over the last 7 or 30 days, [`days_with_data`].
//! - [`rules`]: a plan's change rules ([`Rule`], validated from a [`RuleSpec`] by [`Rule::new`]:
//!   a rise or fall by at least so much within a look-back, [`parse_within`]; or `n` of the
//!   last `m` readings above or below a threshold) and their [`Hit`]s over a measure's
//!   [`Sample`]s ([`Rule::evaluate`]).
//!
//! # Rules
//! - **Windows are wall-clock times in the patient's zone**, start inclusive, end exclusive:
//!   a reading taken exactly at the start meets the slot, one taken exactly at the end does not.
//!   A window whose end is at or before its start crosses midnight (`22:00-02:00`) and belongs to
//!   the local date it opens on; `24:00` is midnight as an end; `08:00 ± 1h` is `07:00-09:00`.
//! - **One mapping from local time to an instant** ([`instant_of`]), for every start and end:
//!   a time that happens twice (fall-back) is its *earlier* occurrence; a time that does not
//!   happen (spring-forward gap) is the *first instant after the gap* (the transition). It never
//!   goes backwards, so windows that do not overlap on the clock never overlap in UTC, and every
//!   instant belongs to at most one slot of an item. Consequences: a window spanning the
//!   spring-forward change is shorter in UTC by the shift (by the part of the gap it covers when
//!   it starts or ends in the gap); one spanning fall-back is longer by the shift (the repeated
//!   hour belongs to the window the first occurrence's clock time falls in, and where two
//!   windows meet inside the repeated hour the later window takes the rest of it); a window that
//!   lies wholly in a gap has no slot that day (it is neither due nor missed).
//! - **A reading is credited by its device timestamp** (`taken`) to the slot whose window
//!   contains it; it counts from when it was received (`received <= now`), so evaluation at a
//!   past `now` gives what the station knew then, and the order events arrive in never matters.
//! - **Slot states** ([`SlotState`]): pending is `Upcoming` before the window, `Open` during it;
//!   `MetOnTime` once a reading taken in the window is received by its end (inclusive);
//!   after the end with nothing known, `Missed` — a *warning* from the end of the window,
//!   *urgent* after the item's further `urgent_after` delay. A reading taken in the window but
//!   received after its end (a buffered upload) resolves the slot as `ReceivedLate`, not a new
//!   breach; one taken after the end but before `late_until` (the end plus the item's late
//!   grace, never past the item's next window) resolves it as `TakenLate`. Both record the level
//!   the slot had reached when the first resolving event arrived. Which events count for which
//!   item is the caller's choice.
//! - **Adherence** over N days: the N local dates ending today; slots counted by the date they
//!   open on, once due; "taken on time" is `MetOnTime` + `ReceivedLate` (taken in the window,
//!   however late it arrived). Days with data: local dates with at least one event taken on them.
//! - **Change rules** ([`Rule`]) test a measure's readings, not a schedule. The samples may come
//!   in any order: they are sorted by the time they were taken (same instant: lower value
//!   first), the same reading twice counts once, non-finite values are ignored. A *rise* (*fall*)
//!   holds at a sample when some sample taken strictly before it, at most `within` before
//!   (exactly `within` counts), is lower (higher) by at least `by` (exactly `by` counts, with a
//!   tolerance of a billionth for decimal figures); the lowest (highest) value of that look-back
//!   is the reference. *n of the last m above (below)* holds at a sample when at least `n` of
//!   the last `m` samples up to and including it (all of them while fewer than `m`) are strictly
//!   above (below) the threshold. A [`Hit`] is emitted where a rule *turns* true (false, or
//!   nothing, at the previous sample): none while it stays true, a new one after it was false.
//!   A plan's item and rule ids are one set ([`Plan::with_rules`]); a plan stored before rules
//!   existed reads as a plan without rules.

pub mod adherence;
pub mod eval;
pub mod item;
pub mod rules;
pub mod window;

pub use adherence::{adherence, days_with_data, period, plan_adherence, Adherence};
pub use eval::{evaluate, Event, Level, SlotState, SlotStatus};
pub use item::{
    zone, Item, ItemId, ItemSpec, Kind, LocalWindow, Plan, PlanSpec, ScheduleError, Times, Weekdays,
};
pub use rules::{parse_within, Hit, Rule, RuleSpec, Sample, Test};
pub use window::{instant_of, slots, Slot, SlotKey};
