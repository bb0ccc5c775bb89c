//! Alarms in the real window, as the ward uses them: a nurse sees the deteriorating bed's alarm
//! in the alarm bar, can pause its audio but finds no acknowledge (and the backend refuses one
//! sent anyway); a charge nurse acknowledges it and every view shows the new state; left idle,
//! the station locks itself and the alarm stays on screen. Also the ward of 32 beds: every tile
//! on one screen, and paged at 16 per screen.
//!
//! The simulated bed 03 desaturates for ~23 s of every minute (SpO2 alarm after its 10 s
//! delay), so each wait for it is bounded by a little over one cycle.

use std::time::Duration;

use fantoccini::Client;
use serde_json::{json, Value};

use crate::support::{
    choose, click, create_user, fill, first_admin, invoke_with, js, login_as, open_admin,
    screenshot, start_app, strings, text, visible, wait_for, wait_js, wait_text, wait_true,
};

const ADMIN_PW: &str = "copper lantern 77 tide";
const NURSE_PW: &str = "thistle morning radio";
const CHARGE_PW: &str = "basalt orchard trumpet";

/// A bit more than one desaturation cycle of the simulated bed 03.
const CYCLE: Duration = Duration::from_secs(80);

const BED3_ALARM: &str = "#alarm-bar .alarm-item[data-bed='sim/03'][data-alarm$='SPO2_LOW']";

/// Like `wait_js`, but the (simulated) user stays active meanwhile, so the one-minute idle lock
/// of this test's station does not lock the session while a test step waits for the ward.
async fn wait_js_active(c: &Client, within: Duration, script: &str) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let v = js(
            c,
            &format!(
                "window.dispatchEvent(new KeyboardEvent('keydown'));
                 return (() => {{ {script} }})();"
            ),
        )
        .await;
        let truthy = !matches!(&v, Value::Null | Value::Bool(false))
            && v.as_str() != Some("")
            && v.as_f64() != Some(0.0);
        if truthy || std::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The bed-03 SpO2 alarm as the bar shows it: `{id, state, text, ack, pause}` or null.
fn bar_item_script() -> String {
    format!(
        "const e = document.querySelector({BED3_ALARM:?});
         if (!e) return null;
         const shown = (sel) => {{ const b = e.querySelector(sel); return !!b && b.offsetParent !== null; }};
         return {{ id: e.dataset.alarm, state: e.dataset.state, text: e.textContent,
                   ack: shown('.alarm-ack'), pause: shown('.alarm-pause') }};"
    )
}

/// The emergency-reason panel, asked right after a one-tap emergency access.
async fn wait_visible_reason(c: &Client) {
    wait_true(
        c,
        Duration::from_secs(10),
        "const e = document.querySelector('#emergency-reason'); return !!e && e.offsetParent !== null;",
        "emergency reason asked",
    )
    .await;
}

/// True while bed 03's SpO2 alarm was raised less than 6 s ago (station clock): its condition
/// then lasts long enough (the simulated desaturation) for a step that needs it present.
const FRESH: &str = "(window.__vigil.alarms() || []).some(a => a.id === 'sim/03/SPO2_LOW'
    && a.state !== 'unreviewed' && Date.now() - a.since < 6000)";

/// Waiting for a fresh raise can take up to two desaturation cycles on a loaded machine.
const TWO_CYCLES: Duration = Duration::from_secs(170);

/// Aim at a button of bed 03's entry in the alarm bar as a keyboard user does: focus on the
/// button holds the bar (no entry slides away, re-sorted or pushed out by another bed's alarm,
/// or leading with another alarm) for the click that follows. Focus and check run in one
/// script, so no render comes between them. The bar moves whenever the busy simulated ward's
/// alarms change: a click aimed at an entry that moved meanwhile missed it (the acknowledge
/// click's WebDriver error on a loaded machine).
async fn aim_at_bed3(c: &Client, button: &str) {
    let css = format!("{BED3_ALARM} {button}");
    let held = wait_js_active(
        c,
        Duration::from_secs(10),
        &format!(
            "const b = document.querySelector({css:?});
             if (!b || b.offsetParent === null) return false;
             b.focus();
             return document.querySelector('#alarm-bar').dataset.held === 'true'
               && document.activeElement === b;"
        ),
    )
    .await;
    assert_eq!(
        held,
        Value::Bool(true),
        "{button} of bed 03 focused, the bar held"
    );
}

/// Move the (WebDriver) mouse pointer onto the centre of `css`, as a user's hand does.
async fn pointer_to(c: &Client, css: &str) {
    use fantoccini::actions::{InputSource, MouseActions, PointerAction};
    let element = c
        .find(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element,
        duration: Some(Duration::from_millis(150)),
        x: 0.0,
        y: 0.0,
    });
    c.perform_actions(mouse)
        .await
        .unwrap_or_else(|e| panic!("pointer to {css}: {e}"));
}

/// The pointer onto `css` in the alarm bar: the bar holds its entries in place.
async fn aim_pointer(c: &Client, css: &str) {
    pointer_to(c, css).await;
    let held = wait_js(
        c,
        Duration::from_secs(2),
        "return document.querySelector('#alarm-bar').dataset.held === 'true';",
    )
    .await;
    assert_eq!(held, Value::Bool(true), "pointer on {css}: the bar held");
}

/// Aim at `button` of bed 03's entry in the alarm bar (see [`aim_at_bed3`]) and press it.
async fn press_bed3(c: &Client, button: &str) {
    aim_at_bed3(c, button).await;
    click(c, &format!("{BED3_ALARM} {button}")).await;
}

/// Wait (10 s at most, the user active) until bed 03's entry in the alarm bar is in `state`;
/// returns its text then ("" if it never was).
async fn bar_text_in(c: &Client, state: &str) -> String {
    let v = wait_js_active(
        c,
        Duration::from_secs(10),
        &format!(
            "const e = document.querySelector({BED3_ALARM:?});
             return e && e.dataset.state === {state:?} ? e.textContent : '';"
        ),
    )
    .await;
    v.as_str().unwrap_or_default().to_string()
}

/// The HR LOW limit of `beds` (sim/NN) set to `threshold`, as a tampered page may ask: each
/// must be taken.
async fn set_hr_low(c: &Client, beds: impl IntoIterator<Item = String>, threshold: f64) {
    for bed in beds {
        let r = invoke_with(
            c,
            "set_bed_limits",
            json!({ "bed": bed, "changes": [{ "code": "HR_LOW", "threshold": threshold }] }),
        )
        .await;
        assert!(r.get("ok").is_some(), "HR LOW {threshold} on {bed}: {r}");
    }
}

/// Aim the pointer at `css` in the alarm bar (see [`aim_pointer`]), then click it.
async fn press_pointer(c: &Client, css: &str) {
    aim_pointer(c, css).await;
    click(c, css).await;
}

/// The bed-03 tile's alarm state and text.
async fn tile_state(c: &Client) -> Value {
    js(
        c,
        "const t = document.querySelector(\".bed-tile[data-bed='sim/03']\");
         return { alarm: t.dataset.alarm || '', state: t.dataset.state || '',
                  text: t.querySelector('.alarm-text').textContent };",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nurse_pauses_charge_nurse_acknowledges_idle_lock_keeps_the_alarm() {
    let app = start_app("[auth]\nidle_lock_minutes = 1").await;
    let c = &app.c;

    first_admin(c, "admin1", ADMIN_PW).await;
    open_admin(c).await;
    create_user(c, "nurse1", "nurse", NURSE_PW).await;
    create_user(c, "charge1", "charge-nurse", CHARGE_PW).await;
    // The administrator has no alarm actions at all.
    assert!(!visible(c, "#btn-pause-all").await, "no audio pause for IT");

    // ---- IT takes nurse acknowledgement away (a ward setting; default yes).
    let off = invoke_with(c, "set_nurses_acknowledge", json!({ "on": false })).await;
    assert!(off.get("ok").is_some(), "{off}");
    // High-priority alarms do not latch on this ward (a desaturation that ends by itself leaves
    // an "unreviewed" mark instead), so each desaturation is raised afresh.
    let off = invoke_with(c, "set_latch_high", json!({ "on": false })).await;
    assert!(off.get("ok").is_some(), "{off}");

    // ---- The nurse: audio pause yes, acknowledge no (on this ward).
    login_as(c, "nurse1", NURSE_PW, "nurse1 · Nurse").await;
    // High-priority alarms latch: wait for the condition itself (not the latched mark of the
    // previous desaturation), so that the pause below applies to a sounding alarm.
    let item = wait_js_active(
        c,
        TWO_CYCLES,
        &format!(
            "const r = (() => {{ {} }})(); return r && r.state === 'active' && {FRESH} ? r : null;",
            bar_item_script()
        ),
    )
    .await;
    assert!(item.is_object(), "bed 03's SpO2 alarm in the alarm bar");
    assert_eq!(item["ack"], false, "no Acknowledge for a nurse: {item}");
    assert_eq!(item["pause"], true, "Pause audio for a nurse: {item}");
    assert!(visible(c, "#btn-pause-all").await, "station audio pause");
    assert!(
        item["text"]
            .as_str()
            .unwrap_or_default()
            .contains("*** SpO2 LOW"),
        "{item}"
    );
    // Highest priority first: the SpO2 alarm (high) leads the bar.
    let first = js(
        c,
        "return document.querySelector('#alarm-bar .alarm-item').className;",
    )
    .await;
    assert!(
        first.as_str().unwrap_or_default().contains("alarm-high"),
        "{first}"
    );
    // A tampered page asking anyway is refused by the backend.
    let id = item["id"].as_str().expect("alarm id").to_string();
    let refused = invoke_with(c, "acknowledge_alarm", json!({ "id": id })).await;
    assert_eq!(refused["err"]["code"], "forbidden", "{refused}");

    press_bed3(c, ".alarm-pause").await;
    let paused = bar_text_in(c, "audio-paused").await;
    assert!(
        paused.contains("AUDIO PAUSED 1:") || paused.contains("AUDIO PAUSED 2:00"),
        "{paused:?}"
    );
    let tile = tile_state(c).await;
    assert_eq!(tile["state"], "audio-paused", "{tile}");
    assert!(
        tile["text"]
            .as_str()
            .unwrap_or_default()
            .contains("AUDIO PAUSED"),
        "{tile}"
    );
    screenshot(c, "alarm-audio-paused.png").await;

    // The desaturation ends by itself while nobody acknowledged it: without latching, the
    // alarm stays in the bar and on the tile as "RESOLVED · NOT REVIEWED" (silent).
    let mark = wait_js_active(
        c,
        CYCLE,
        &format!(
            "const e = document.querySelector({BED3_ALARM:?});
             const t = document.querySelector(\".bed-tile[data-bed='sim/03']\");
             return e && e.dataset.state === 'unreviewed' && t.dataset.state === 'unreviewed'
               ? e.textContent : '';"
        ),
    )
    .await;
    assert!(
        mark.as_str().unwrap_or_default().contains("NOT REVIEWED"),
        "a self-clearing *** alarm leaves its mark: {mark}"
    );
    screenshot(c, "alarm-unreviewed.png").await;

    // ---- The charge nurse acknowledges; bar and tile show who did.
    login_as(c, "charge1", CHARGE_PW, "charge1 · Charge nurse").await;
    let item = wait_js_active(
        c,
        TWO_CYCLES,
        &format!(
            "const e = document.querySelector({BED3_ALARM:?});
             const b = e && e.querySelector('.alarm-ack');
             return !!b && b.offsetParent !== null && {FRESH};"
        ),
    )
    .await;
    assert_eq!(
        item,
        Value::Bool(true),
        "Acknowledge offered to the charge nurse"
    );
    press_bed3(c, ".alarm-ack").await;
    let acked = bar_text_in(c, "acknowledged").await;
    assert!(acked.contains("ACK charge1"), "{acked:?}");
    let tile = tile_state(c).await;
    assert_eq!(tile["state"], "acknowledged", "{tile}");
    assert_eq!(tile["alarm"], "high", "still shown in its colour: {tile}");
    let ack_gone = js(
        c,
        &format!(
            "const b = document.querySelector({BED3_ALARM:?} + ' .alarm-ack');
             return !b || b.offsetParent === null;"
        ),
    )
    .await;
    assert_eq!(ack_gone, Value::Bool(true), "no second acknowledge");
    screenshot(c, "alarm-acknowledged.png").await;

    // ---- Eight beds alarming at once: every bed shows in the bar, or "+N more" says so.
    let others = || ["01", "02", "04", "05", "06", "07", "08"].map(|b| format!("sim/{b}"));
    set_hr_low(c, others(), 105.0).await;
    let bar = wait_js_active(
        c,
        Duration::from_secs(20),
        "const bar = document.querySelector('#alarm-bar');
         const items = [...bar.querySelectorAll('.alarm-item')].filter(e => e.offsetParent !== null);
         const fits = items.every(e => e.getBoundingClientRect().bottom <= bar.getBoundingClientRect().bottom + 1);
         const more = bar.querySelector('.alarm-more');
         const moreN = more && more.offsetParent !== null ? Number(more.dataset.more) : 0;
         return Number(bar.dataset.beds) >= 8 ? { shown: items.length, beds: Number(bar.dataset.beds), moreN, fits,
           more: more ? more.textContent : '' } : null;",
    )
    .await;
    let shown = bar["shown"].as_u64().unwrap_or(0);
    let beds = bar["beds"].as_u64().unwrap_or(0);
    let more = bar["moreN"].as_u64().unwrap_or(0);
    assert!(beds >= 8, "{bar}");
    assert_eq!(
        shown + more,
        beds,
        "every bed shown or counted in +N more: {bar}"
    );
    assert_eq!(bar["fits"], true, "no entry cut off: {bar}");
    if more > 0 {
        assert!(
            bar["more"].as_str().unwrap_or_default().starts_with('+'),
            "{bar}"
        );
    }
    screenshot(c, "alarm-bar-many.png").await;
    // Back to the ward defaults for the rest of the test.
    set_hr_low(c, others(), 50.0).await;

    // ---- Idle: the station locks itself; the alarm stays visible on the locked screen.
    wait_true(
        c,
        Duration::from_secs(100),
        "return !document.querySelector('#lock-banner').hidden;",
        "idle lock after one minute",
    )
    .await;
    assert_eq!(text(c, "#lock-user").await, "Locked — charge1");
    let alarmed = wait_for(c, CYCLE, |v| {
        let beds = strings(&v["beds"]);
        let alarm = strings(&v["alarm"]);
        beds.iter()
            .zip(&alarm)
            .any(|(b, a)| b == "sim/03" && a == "high")
    })
    .await;
    assert_eq!(alarmed["tiles"], 8, "{alarmed}");
    let bar = js(c, &bar_item_script()).await;
    assert!(bar.is_object(), "the alarm bar still lists it while locked");
    // On the locked screen anyone may pause audio (no log-in; audited), and emergency access
    // is one tap away.
    assert!(
        visible(c, "#btn-pause-all").await,
        "pause-all on the locked screen"
    );
    assert!(
        visible(c, "#lock-emergency").await,
        "emergency access on the locked screen"
    );
    let paused = invoke_with(c, "audio_pause", json!({ "bed": "sim/03" })).await;
    assert!(
        paused.get("ok").is_some(),
        "audio pause on a locked screen: {paused}"
    );
    // Acknowledging still needs someone who may act.
    let refused = invoke_with(c, "acknowledge_alarm", json!({ "id": "sim/03/SPO2_LOW" })).await;
    assert_eq!(refused["err"]["code"], "locked", "{refused}");
    screenshot(c, "lock.png").await;
    // Emergency access asks for the password only (typed in the unlock field): with none it
    // says so and does nothing.
    click(c, "#lock-emergency").await;
    wait_text(
        c,
        "#unlock-error",
        "Type your password, then Emergency access",
    )
    .await;
    assert!(
        visible(c, "#lock-banner").await,
        "still locked without a password"
    );
    fill(c, "#unlock-pw", CHARGE_PW).await;
    click(c, "#lock-emergency").await;
    wait_visible_reason(c).await;
    screenshot(c, "emergency-reason.png").await;
    js(
        c,
        "const t = document.querySelector('#er-reason'); t.value = 'bed 3 desaturating, charge nurse away';
         document.querySelector('#er-submit').click(); return true;",
    )
    .await;
    wait_true(
        c,
        Duration::from_secs(10),
        "return !document.querySelector('#emergency-reason');",
        "reason recorded",
    )
    .await;

    // ---- The audit trail holds the pause and the acknowledgement, with their users.
    login_as(c, "admin1", ADMIN_PW, "admin1 · Admin").await;
    let trail = invoke_with(c, "audit_list", json!({ "filter": {} })).await;
    let entries = trail["ok"].as_array().cloned().unwrap_or_default();
    let has = |action: &str, actor: &str| {
        entries
            .iter()
            .any(|e| e["action"] == action && e["actor"] == actor)
    };
    assert!(has("audio_pause", "nurse1"), "{trail}");
    assert!(has("alarm_acknowledge", "charge1"), "{trail}");
    assert!(has("audio_pause", "charge1 (locked screen)"), "{trail}");
    assert!(has("break_glass_reason", "charge1"), "{trail}");
    assert!(has("station_setting", "admin1"), "{trail}");

    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_beds_on_one_screen_and_paged() {
    let app = start_app("[simulator]\nbeds = 32").await;
    let c = &app.c;
    // Set up the station so the first-run panel gives the ward the whole window.
    first_admin(c, "admin1", ADMIN_PW).await;

    // Auto layout: all 32 beds on one screen, every one with a heart rate and drawn traces.
    let all = wait_for(c, Duration::from_secs(40), |v| {
        v["tiles"] == 32
            && strings(&v["hr"]).iter().all(|h| h.parse::<f64>().is_ok())
            && v["ecgInk"]
                .as_array()
                .is_some_and(|a| a.iter().all(|n| n.as_u64().unwrap_or(0) > 30))
    })
    .await;
    assert_eq!(all["tiles"], 32, "{all}");
    assert!(
        strings(&all["hr"]).iter().all(|h| h.parse::<f64>().is_ok()),
        "{all}"
    );
    assert!(!visible(c, "#pager").await, "one page");
    // Compact tiles: the large numbers fit their boxes rather than being clipped.
    let clipped = js(
        c,
        "return [...document.querySelectorAll('.bed-tile .num-hr .value, .bed-tile .num-spo2 .value, .bed-tile .num-nibp .value')]
           .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1).length;",
    )
    .await;
    assert_eq!(clipped, 0, "HR/SpO2/NIBP values clipped on 32 tiles");
    // The window fills the screen (1920×1080 under the test's X server).
    let size = js(c, "return [window.innerWidth, window.innerHeight];").await;
    assert!(
        size[0].as_u64().unwrap_or(0) >= 1900,
        "window fills the screen: {size}"
    );
    // Status and alarm text at least 16 px; numbers never cut ("…").
    let small = js(
        c,
        "return [...document.querySelectorAll('.bed-tile .alarm-text, .bed-tile .tile-status')]
           .filter(e => parseFloat(getComputedStyle(e).fontSize) < 16).length;",
    )
    .await;
    assert_eq!(small, 0, "alarm and status text below 16 px");
    let cut = js(
        c,
        "return [...document.querySelectorAll('.bed-tile .value')].filter(e => e.textContent.includes('…')).length;",
    )
    .await;
    assert_eq!(cut, 0);
    screenshot(c, "overview-32.png").await;

    // 16 per screen: two pages; the second holds beds 17–32.
    choose(c, "#layout-select", "16").await;
    let paged = wait_for(c, Duration::from_secs(10), |v| v["tiles"] == 16).await;
    assert_eq!(strings(&paged["beds"])[0], "sim/01", "{paged}");
    assert_eq!(text(c, "#page-info").await, "1 / 2");
    click(c, "#page-next").await;
    let second = wait_for(c, Duration::from_secs(10), |v| {
        strings(&v["beds"]).first().is_some_and(|b| b == "sim/17")
    })
    .await;
    assert_eq!(second["tiles"], 16, "{second}");
    assert_eq!(strings(&second["beds"])[15], "sim/32", "{second}");
    assert_eq!(text(c, "#page-info").await, "2 / 2");
    // Bed 03 (page 1) alarms within a cycle: the pager says so from page 2.
    wait_true(
        c,
        CYCLE,
        "return document.querySelector('#page-prev').classList.contains('alarm-high');",
        "off-page alarm shown on the pager",
    )
    .await;
    screenshot(c, "overview-32-paged.png").await;

    // Back to the automatic layout (the choice is kept per workstation).
    choose(c, "#layout-select", "auto").await;
    let back = wait_for(c, Duration::from_secs(10), |v| v["tiles"] == 32).await;
    assert_eq!(back["tiles"], 32);

    // ---- Alarm actions are clinical: a charge nurse of this ward (IT has none).
    open_admin(c).await;
    create_user(c, "charge1", "charge-nurse", CHARGE_PW).await;
    login_as(c, "charge1", CHARGE_PW, "charge1 · Charge nurse").await;

    // ---- Pausing every bed's audio takes two deliberate clicks; one resumes it.
    wait_text(c, "#sound-state", "Sound").await;
    click(c, "#btn-pause-all").await;
    wait_text(c, "#btn-pause-all", "Confirm: pause ALL alarm audio").await;
    assert!(
        text(c, "#sound-state").await.contains("Sound"),
        "one click pauses nothing"
    );
    click(c, "#btn-pause-all").await;
    wait_text(c, "#sound-state", "Paused").await;
    wait_text(c, "#btn-pause-all", "Resume").await;
    screenshot(c, "pause-all.png").await;
    click(c, "#btn-pause-all").await;
    wait_text(c, "#sound-state", "Sound").await;
    wait_text(c, "#btn-pause-all", "Pause all audio").await;

    // ---- The alarm volume never goes below its minimum, whatever the page asks.
    let low = invoke_with(c, "set_alarm_volume", json!({ "percent": 5 })).await;
    let min = js(c, "return window.__vigil.sound().min_volume;").await;
    assert!(min.as_u64().unwrap_or(0) >= 30, "minimum volume: {min}");
    assert_eq!(low["ok"], min, "volume held at its minimum: {low}");
    wait_text(c, "#sound-state", &format!("Sound {min} %")).await;
    let back = invoke_with(c, "set_alarm_volume", json!({ "percent": 70 })).await;
    assert_eq!(back["ok"], 70, "{back}");

    // ---- A bed in standby (no patient) says so and has no physiological alarm.
    let standby = invoke_with(c, "set_standby", json!({ "bed": "sim/03", "on": true })).await;
    assert!(standby.get("err").is_none(), "{standby}");
    wait_text(c, ".bed-tile[data-bed='sim/03'] .tile-status", "STANDBY").await;
    wait_true(
        c,
        Duration::from_secs(10),
        "return !(window.__vigil.alarms() || []).some(a => a.bed === 'sim/03' && !a.technical);",
        "no physiological alarm in standby",
    )
    .await;
    screenshot(c, "standby.png").await;
    let resume = invoke_with(c, "set_standby", json!({ "bed": "sim/03", "on": false })).await;
    assert!(resume.get("err").is_none(), "{resume}");
    wait_true(
        c,
        Duration::from_secs(10),
        "return !document.querySelector(\".bed-tile[data-bed='sim/03'] .tile-status\").textContent.includes('STANDBY');",
        "monitoring resumed",
    )
    .await;

    // ---- More beds alarming than the bar holds: "+N more" says how many, and shows them all.
    set_hr_low(c, (1..=32).map(|n| format!("sim/{n:02}")), 105.0).await;
    let bar_script = "const bar = document.querySelector('#alarm-bar');
         const items = [...bar.querySelectorAll('.alarm-item')].filter(e => e.offsetParent !== null);
         const list = bar.querySelector('.alarm-list').getBoundingClientRect();
         const more = bar.querySelector('.alarm-more');
         const fits = [...items, more].filter(e => e && e.offsetParent !== null)
           .every(e => e.getBoundingClientRect().bottom <= list.bottom + 1);
         const moreN = more && more.offsetParent !== null ? Number(more.dataset.more) : 0;
         return { shown: items.length, beds: Number(bar.dataset.beds), moreN, fits,
           more: more && more.offsetParent !== null ? more.textContent : '',
           expanded: bar.classList.contains('expanded') };";
    let bar = wait_js(
        c,
        Duration::from_secs(20),
        &format!("const r = (() => {{ {bar_script} }})(); return r.beds >= 20 ? r : null;"),
    )
    .await;
    assert!(bar["beds"].as_u64().unwrap_or(0) >= 20, "{bar}");
    let more = bar["moreN"].as_u64().unwrap_or(0);
    assert!(
        more > 0,
        "32 beds do not fit two rows: +N more expected: {bar}"
    );
    assert_eq!(
        bar["shown"].as_u64().unwrap_or(0) + more,
        bar["beds"].as_u64().unwrap_or(0),
        "every bed shown or counted: {bar}"
    );
    assert_eq!(
        bar["fits"], true,
        "no entry and not the count cut off: {bar}"
    );
    let label = bar["more"].as_str().unwrap_or_default();
    assert!(
        label.starts_with(&format!("+{more} more beds")),
        "the count said plainly: {bar}"
    );
    screenshot(c, "alarm-bar-more.png").await;
    // ---- The pointer on the bar holds its entries in place (a click lands where it was
    // aimed); off the bar, they move again.
    aim_pointer(c, "#alarm-bar .alarm-item .alarm-item-text").await;
    pointer_to(c, "#ward-grid").await;
    wait_true(
        c,
        Duration::from_secs(5),
        "return document.querySelector('#alarm-bar').dataset.held === undefined;",
        "pointer off the bar: released",
    )
    .await;
    // The station-wide pause resumed above left no bed paused (its own state, back from the
    // broker, once paused every bed again for two minutes).
    let paused = js(
        c,
        "return { pauses: window.__vigil.pauses(),
                  resume: [...document.querySelectorAll('#alarm-bar .alarm-pause')]
                    .filter(e => e.textContent.includes('Resume')).length };",
    )
    .await;
    assert_eq!(paused["pauses"], json!([]), "{paused}");
    assert_eq!(paused["resume"], 0, "{paused}");
    // Aimed as a hand does: the pointer reaches the button (the bar holds still), then clicks.
    press_pointer(c, "#alarm-bar .alarm-more").await;
    let all = wait_js(
        c,
        Duration::from_secs(5),
        &format!(
            "const r = (() => {{ {bar_script} }})(); return r.expanded && r.moreN === 0 ? r : null;"
        ),
    )
    .await;
    if all.is_null() {
        screenshot(c, "alarm-bar-all-failed.png").await;
        let now = js(c, &format!("return (() => {{ {bar_script} }})();")).await;
        let detail = visible(c, "#bed-detail").await;
        panic!("not all shown after show all: {now}, bed detail open: {detail}");
    }
    assert_eq!(all["expanded"], true, "{all}");
    assert_eq!(
        all["shown"], all["beds"],
        "every alarming bed listed: {all}"
    );
    screenshot(c, "alarm-bar-all.png").await;
    press_pointer(c, "#alarm-bar .alarm-more").await;
    wait_js(
        c,
        Duration::from_secs(5),
        "return !document.querySelector('#alarm-bar').classList.contains('expanded');",
    )
    .await;

    app.close().await;
}
