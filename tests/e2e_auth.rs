//! Users, roles and the locked screen in the real window: first-run admin creation (with a
//! password the policy refuses, then a good one), a nurse and a charge nurse created in the admin
//! panel, the audit trail verified there, the nurse's controls (no admin, refused by the backend
//! too), and the locked screen keeping every bed tile live.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    choose, click, create_user, fill, invoke, invoke_with, js, log_in, log_out, open_admin,
    overview, screenshot, start_app, strings, submit_first_run, text, tiles_live, visible,
    wait_for, wait_js, wait_text, wait_true, wait_visible,
};

const ADMIN_PW: &str = "lantern orchard 42 quietly";
const NURSE_PW: &str = "saffron meadow bicycle";
const CHARGE_PW: &str = "granite harbour violin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_admin_users_nurse_and_locked_screen() {
    // No usable audio output on this station: the sound failure is a technical alarm.
    let app = start_app("[sound]\ndevice = \"alsa:vigil-test-no-such-device\"").await;
    let c = &app.c;

    // First run: the ward is live beside the "first administrator" panel.
    wait_visible(c, "#first-run", "first-run dialog").await;
    assert_eq!(text(c, "#auth-user").await, "Not logged in");
    assert!(
        !visible(c, "#btn-login").await,
        "no log-in before an admin exists"
    );
    tiles_live(c, Duration::from_secs(15)).await;
    let no_sound = wait_js(
        c,
        Duration::from_secs(20),
        "const s = document.querySelector('#sound-state');
         const a = document.querySelector(\"#alarm-bar .alarm-item[data-bed='*/station']\");
         return s.dataset.state === 'failed' && a ? [s.textContent, a.textContent] : null;",
    )
    .await;
    assert!(
        no_sound[0]
            .as_str()
            .unwrap_or_default()
            .contains("NO ALARM SOUND")
            && no_sound[1]
                .as_str()
                .unwrap_or_default()
                .contains("NO ALARM SOUND"),
        "no audio device: header and technical alarm: {no_sound}"
    );

    // A common password is refused by the backend's policy, and the message is shown.
    submit_first_run(c, "admin1", "Password2024!").await;
    wait_text(c, "#first-run .panel-error", "password refused").await;
    screenshot(c, "first-run.png").await;

    submit_first_run(c, "admin1", ADMIN_PW).await;
    wait_text(c, "#auth-user", "admin1 · Admin").await;
    assert!(!visible(c, "#first-run").await);

    // The admin panel: create a nurse and a charge nurse.
    open_admin(c).await;
    create_user(c, "nurse1", "nurse", NURSE_PW).await;
    create_user(c, "charge1", "charge-nurse", CHARGE_PW).await;
    let users = js(
        c,
        "return [...document.querySelectorAll('#users-table tbody tr')].map(r =>
           [r.dataset.user, r.querySelector('select').value]);",
    )
    .await;
    assert_eq!(
        users,
        serde_json::json!([
            ["admin1", "admin"],
            ["charge1", "charge-nurse"],
            ["nurse1", "nurse"]
        ]),
        "users table"
    );
    assert_eq!(
        js(
            c,
            "return document.querySelector('#side-panel').getBoundingClientRect().left > \
             document.querySelector('#ward-grid').getBoundingClientRect().left + 300;"
        )
        .await,
        Value::Bool(true),
        "the admin panel sits beside the ward grid"
    );
    screenshot(c, "admin.png").await;

    // The audit trail: entries for what just happened, and an intact chain.
    click(c, "#tab-audit").await;
    wait_visible(c, "#audit-table", "audit table").await;
    let actions = js(
        c,
        "return [...document.querySelectorAll('#audit-table tbody tr')].map(r => r.dataset.action);",
    )
    .await;
    let actions = strings(&actions);
    assert_eq!(
        actions.iter().filter(|a| *a == "user_create").count(),
        3,
        "{actions:?}"
    );
    assert!(actions.contains(&"login".to_string()), "{actions:?}");
    // Filter by action.
    js(
        c,
        "document.querySelector('#af-action').value = 'user_create'; return true;",
    )
    .await;
    click(c, "#af-apply").await;
    wait_true(
        c,
        Duration::from_secs(10),
        "const rows = [...document.querySelectorAll('#audit-table tbody tr')];
         return rows.length === 3 && rows.every(r => r.dataset.action === 'user_create');",
        "filtered by action",
    )
    .await;
    click(c, "#af-verify").await;
    wait_text(c, "#audit-verify", "audit trail intact").await;
    click(c, "#af-export").await;
    wait_visible(c, "#audit-csv-link", "CSV download link").await;
    screenshot(c, "admin-audit.png").await;

    // Devices: the simulated monitors are heard (not registered: embedded mode accepts them);
    // IT maps one to its bed, and the registry lists it with its live state.
    click(c, "#tab-devices").await;
    wait_visible(c, "#devices-table", "devices table").await;
    let heard = wait_js(
        c,
        Duration::from_secs(10),
        "return document.querySelectorAll('#devices-table tr.unregistered').length;",
    )
    .await;
    assert_eq!(heard, 8, "eight simulated monitors heard");
    let device = js(
        c,
        "return document.querySelector(\"#devices-table tr.unregistered[data-device]\").dataset.device;",
    )
    .await;
    let device = device.as_str().expect("a device id").to_string();
    click(
        c,
        &format!("#devices-table tr[data-device={device:?}] .act-register"),
    )
    .await;
    // Picked from lists, and confirmed against the device's live values before saving.
    let live = wait_text(c, "#dv-live", "live now from").await;
    assert!(live.contains("HR "), "{live}");
    click(c, "#dv-submit").await;
    wait_text(c, "#device-form .panel-error", "bedside monitor").await;
    click(c, "#dv-confirm").await;
    fill(c, "#dv-label", "bedside monitor, bay 1").await;
    click(c, "#dv-submit").await;
    wait_text(c, "#admin-msg", &format!("Device {device} registered")).await;
    let row = wait_js(
        c,
        Duration::from_secs(10),
        &format!(
            "const r = document.querySelector('#devices-table tr[data-device={device:?}]');
             return r && !r.classList.contains('unregistered') ? r.textContent : '';"
        ),
    )
    .await;
    assert!(
        row.as_str().unwrap_or_default().contains("online"),
        "registered and online: {row}"
    );
    screenshot(c, "admin-devices.png").await;

    // Ward profile and latching: saved, and read back from the database.
    click(c, "#tab-ward").await;
    wait_visible(c, "#latching-list", "latching list").await;
    // Issue 12 defaults: high-priority alarms latch, nurses acknowledge.
    let defaults = js(
        c,
        "return [document.querySelector('#ward-latch-high').checked,
                 document.querySelector('#ward-nurses-ack').checked];",
    )
    .await;
    assert_eq!(defaults, serde_json::json!([true, true]), "ward defaults");
    click(c, "#latching-list input[data-code='SPO2_LOW']").await;
    wait_text(c, "#admin-msg", "SPO2 LOW now latches").await;
    choose(c, "#ward-profile", "paediatric").await;
    wait_text(c, "#admin-msg", "Ward profile set to paediatric").await;
    click(c, "#tab-users").await;
    wait_visible(c, "#users-table", "users table").await;
    click(c, "#tab-ward").await;
    wait_true(
        c,
        Duration::from_secs(10),
        "const b = document.querySelector(\"#latching-list input[data-code='SPO2_LOW']\");
         return !!b && b.checked && document.querySelector('#ward-profile').value === 'paediatric';",
        "ward settings kept",
    )
    .await;

    // Broker: the embedded broker in use; a connection test against it succeeds, one against a
    // closed port reports why.
    click(c, "#tab-broker").await;
    wait_visible(c, "#broker-now", "broker facts").await;
    let facts = text(c, "#broker-now").await;
    assert!(
        facts.contains("embedded broker") && facts.contains("connected"),
        "{facts}"
    );
    let url = js(
        c,
        "return document.querySelector('#broker-now dd').textContent.split(' ')[0];",
    )
    .await;
    fill(c, "#br-url", url.as_str().unwrap_or_default()).await;
    click(c, "#br-test").await;
    wait_text(c, "#admin-msg", "connected to mqtt://").await;
    fill(c, "#br-url", "mqtt://127.0.0.1:9").await;
    click(c, "#br-test").await;
    let why = wait_js(
        c,
        Duration::from_secs(15),
        "return document.querySelector('#broker-form .panel-error').textContent;",
    )
    .await;
    assert!(
        !why.as_str().unwrap_or_default().is_empty(),
        "a reason is shown"
    );
    screenshot(c, "admin-broker.png").await;
    // Each change is in the audit trail.
    let trail = invoke_with(c, "audit_list", serde_json::json!({ "filter": {} })).await;
    for action in [
        "device_register",
        "alarm_latching_change",
        "ward_profile_change",
    ] {
        assert!(
            trail["ok"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["action"] == action)),
            "{action} audited: {trail}"
        );
    }

    // Log out, log in as the nurse: no admin controls, and the backend refuses anyway.
    log_out(c).await;
    assert!(!visible(c, "#side-panel").await, "admin panel closed");
    log_in(c, "nurse1", NURSE_PW, "nurse1 · Nurse").await;
    assert!(
        !visible(c, "#btn-admin").await,
        "no Admin button for a nurse"
    );
    assert!(!visible(c, "#users-table").await);
    assert!(!visible(c, "#audit-table").await);
    assert!(visible(c, "#btn-breakglass").await, "break-glass offered");
    assert!(visible(c, "#btn-lock").await);
    let refused = invoke(c, "list_users").await;
    assert_eq!(refused["err"]["code"], "forbidden", "{refused}");
    let refused = invoke(c, "audit_verify").await;
    assert_eq!(refused["err"]["code"], "forbidden", "{refused}");

    // Lock: the banner names the user, and every tile keeps showing live numbers.
    click(c, "#btn-lock").await;
    wait_visible(c, "#lock-banner", "lock banner").await;
    assert_eq!(text(c, "#lock-user").await, "Locked — nurse1");
    assert!(!visible(c, "#btn-lock").await);
    let (_, live) = tiles_live(c, Duration::from_secs(15)).await;
    assert_eq!(live["tiles"], 8, "{live}");
    let refused = invoke(c, "touch").await;
    assert_eq!(refused["err"]["code"], "locked", "{refused}");
    // The deteriorating bed's alarm shows on the locked screen.
    let alarmed = wait_for(c, Duration::from_secs(30), |v| {
        strings(&v["alarm"]).iter().any(|a| a == "high")
    })
    .await;
    assert!(
        strings(&alarmed["alarm"]).iter().any(|a| a == "high"),
        "a high-priority alarm is shown while locked: {alarmed}"
    );
    let state = wait_js(c, Duration::from_secs(1), "return document.body.className;").await;
    assert!(
        state
            .as_str()
            .unwrap_or_default()
            .contains("session-locked"),
        "{state}"
    );
    screenshot(c, "locked.png").await;

    // A wrong password is refused; the right one unlocks.
    fill(c, "#unlock-pw", "not my password").await;
    click(c, "#unlock-submit").await;
    wait_text(c, "#unlock-error", "wrong user name or password").await;
    fill(c, "#unlock-pw", NURSE_PW).await;
    click(c, "#unlock-submit").await;
    wait_js(
        c,
        Duration::from_secs(10),
        "return document.querySelector('#lock-banner').hidden;",
    )
    .await;
    assert!(!visible(c, "#lock-banner").await, "unlocked");
    assert_eq!(text(c, "#auth-user").await, "nurse1 · Nurse");
    let ov = overview(c).await;
    assert_eq!(ov["tiles"], 8);

    app.close().await;
}
