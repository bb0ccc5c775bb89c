//! The bed detail screen in the real window: a charge nurse (created through the admin panel)
//! opens bed 03 by clicking its tile and sees every channel drawing with numerics and limits;
//! changes a limit (a bad value refused, a good one saved and read back from the backend); views
//! trends with data; scrolls back through the full disclosure with the time cursor; finds the
//! simulated desaturation in the alarm history with the seconds before it; admits a patient
//! (masked while locked); prints the alarm's strip and a trend report and exports the trend
//! range (issue 16); Escape returns to the ward; after a restart the limits are in force.
//! Prints the ward's shift handover from the header.
//! Screenshots: target/e2e/bed-detail*.png; the printouts: target/e2e/report-*.png.

use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use crate::support::{
    click, create_user, fill, first_admin, js, login_as, open_admin, screenshot, start_app,
    strings, text, visible, wait_for, wait_js, wait_text, wait_true, wait_visible,
};

const ADMIN_PW: &str = "lantern orchard 42 quietly";
const CHARGE_PW: &str = "granite harbour violin";

/// Call a command from the page; `{ok}` or `{err}`.
async fn invoke(c: &Client, command: &str, args: &str) -> Value {
    c.execute_async(
        &format!(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke({command:?}, {args})
               .then((ok) => done({{ ok }}), (err) => done({{ err }}));"
        ),
        vec![],
    )
    .await
    .expect("invoke from the page")
}

/// `ink(canvas)`: pixels that are drawn and bright (a trace, or text); `trace(canvas)`: pixels of
/// a green, cyan or yellow trace only (not the grey grid, labels or the white cursor).
const INK: &str = "const px = (cv, f) => {
  if (!cv || !cv.width || !cv.height) return 0;
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && f(d[i], d[i + 1], d[i + 2])) n++;
  return n;
};
const ink = (cv) => px(cv, (r, g, b) => r + g + b > 150);
const trace = (cv) => px(cv, (r, g, b) => g > 150 && g - r > 60 || r > 150 && g > 150 && b < 120);";

/// Set an input's value as typing would (WebKitWebDriver refuses to clear these inputs).
async fn set_value(c: &Client, css: &str, value: &str) {
    let done = js(
        c,
        &format!(
            "const e = document.querySelector({css:?});
             if (!e) return false;
             e.focus();
             e.value = {value:?};
             e.dispatchEvent(new Event('input', {{ bubbles: true }}));
             e.dispatchEvent(new Event('change', {{ bubbles: true }}));
             return true;"
        ),
    )
    .await;
    assert_eq!(done, Value::Bool(true), "{css} to fill");
}

/// Keep the printout's preview (a PNG data URL) as `target/e2e/<name>`.
async fn save_preview(c: &Client, name: &str) {
    use base64::Engine as _;
    let url = js(c, "return document.querySelector('#printout-preview').src;").await;
    let url = url.as_str().unwrap_or_default();
    let b64 = url
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("a PNG data URL: {}", &url[..40.min(url.len())]));
    let png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let path = crate::support::shots_dir().join(name);
    std::fs::write(&path, png).expect("save the preview");
    eprintln!("printout saved to {}", path.display());
}

async fn num(c: &Client, script: &str) -> f64 {
    js(c, script).await.as_f64().unwrap_or(0.0)
}

/// First run: the admin, then a charge nurse created in the admin panel, who logs in.
async fn log_in_charge_nurse(c: &Client) {
    first_admin(c, "admin1", ADMIN_PW).await;
    open_admin(c).await;
    create_user(c, "charge1", "charge-nurse", CHARGE_PW).await;
    login_as(c, "charge1", CHARGE_PW, "charge1 · Charge nurse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bed_detail_live_limits_trends_review_alarms_patient() {
    let app = start_app("").await;
    let c = &app.c;

    log_in_charge_nurse(c).await;
    let ward = wait_for(c, Duration::from_secs(30), |v| {
        v["tiles"] == 8 && strings(&v["hr"]).iter().all(|h| h.parse::<f64>().is_ok())
    })
    .await;
    let beds = strings(&ward["beds"]);
    let bed = beds
        .iter()
        .find(|b| b.ends_with("/03"))
        .unwrap_or_else(|| panic!("bed 03 on the ward: {ward}"))
        .clone();

    // ---- Open the bed by clicking its tile.
    click(c, &format!(".bed-tile[data-bed={bed:?}]")).await;
    wait_visible(c, "#bed-detail", "bed detail").await;
    assert_eq!(text(c, "#detail-title").await, "Bed 03");
    assert!(
        visible(c, "#ward-grid").await,
        "the ward stays in view beside the detail (issue 12)"
    );
    // Every channel draws, at its own rate.
    let drawing = wait_js(
        c,
        Duration::from_secs(20),
        &format!(
            "{INK}
             const rows = [...document.querySelectorAll('#bed-detail .dwave')];
             const r = rows.map(e => [e.dataset.channel, e.dataset.live === '1',
                                      ink(e.querySelector('canvas'))]);
             return r.length === 4 && r.every(([, live, n]) => live && n > 800) ? r : null;"
        ),
    )
    .await;
    let channels: Vec<&str> = drawing
        .as_array()
        .unwrap_or_else(|| panic!("all four channels drawing"))
        .iter()
        .filter_map(|r| r[0].as_str())
        .collect();
    assert_eq!(channels, ["ECG_II", "ECG_V5", "PLETH", "RESP"]);
    // Numerics with their limits.
    wait_js(
        c,
        Duration::from_secs(10),
        "const v = document.querySelector('.dnum[data-vital=\"HR\"] .dnum-value').textContent;
         return /^\\d+$/.test(v);",
    )
    .await;
    wait_text(c, ".dnum[data-vital=\"HR\"] .dnum-limits", "50 – 120").await;
    wait_text(c, ".dnum[data-vital=\"SPO2\"] .dnum-limits", "> 90").await;
    screenshot(c, "bed-detail.png").await;

    // ---- Limits: a crossed limit is refused in the form; a good one is saved by the backend.
    wait_visible(
        c,
        "#limits-edit",
        "limits editor button for the charge nurse",
    )
    .await;
    click(c, "#limits-edit").await;
    wait_visible(c, "#limits-form", "limits form").await;
    set_value(c, "input[data-code=\"HR_LOW\"]", "130").await;
    click(c, "#limits-save").await;
    wait_text(c, "#limits-msg", "Please correct").await;
    set_value(c, "input[data-code=\"HR_LOW\"]", "50").await;
    set_value(c, "input[data-code=\"SPO2_LOW\"]", "88").await;
    screenshot(c, "bed-detail-limits.png").await;
    click(c, "#limits-save").await;
    wait_text(c, ".dnum[data-vital=\"SPO2\"] .dnum-limits", "> 88").await;
    let limits = invoke(c, "bed_limits", &format!("{{ bed: {bed:?} }}")).await;
    let spo2 = limits["ok"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["code"] == "SPO2_LOW"))
        .unwrap_or_else(|| panic!("SPO2_LOW in {limits}"));
    assert_eq!(spo2["threshold"], 88.0, "{limits}");
    // The backend refuses what the form would have refused.
    let refused = invoke(
        c,
        "set_bed_limits",
        &format!("{{ bed: {bed:?}, changes: [{{ code: 'HR_LOW', threshold: 500 }}] }}"),
    )
    .await;
    assert_eq!(refused["err"]["code"], "bad_request", "{refused}");

    // ---- Trends: charts with data for the last hour.
    click(c, "#dtab-trends").await;
    let points = wait_js(
        c,
        Duration::from_secs(20),
        &format!(
            "{INK}
             const hr = document.querySelector('.trend-chart[data-trend=\"hr\"]');
             const n = hr ? Number(hr.dataset.points) : 0;
             return n > 0 && hr.querySelector('canvas') ? n : 0;"
        ),
    )
    .await;
    // The station has run for less than a minute of this hour: a few points at the right edge
    // (the drawing itself is checked on the custom range below).
    assert!(
        points.as_f64().unwrap_or(0.0) > 0.0,
        "the HR trend has points: {points}"
    );
    let charts = num(
        c,
        "return document.querySelectorAll('.trend-chart canvas').length;",
    )
    .await;
    assert!(charts >= 5.0, "five trend charts: {charts}");
    // Fixed axes per vital (RR 0–40 whatever the values), the alarm limits as a band.
    let scale = js(
        c,
        "const q = (k) => document.querySelector(`.trend-chart[data-trend=\"${k}\"]`);
         return [q('rr').dataset.axis, q('spo2').dataset.axis, q('hr').dataset.limits];",
    )
    .await;
    assert_eq!(scale[0], "0,40", "{scale}");
    assert_eq!(scale[1], "70,100", "{scale}");
    assert!(
        scale[2]
            .as_str()
            .is_some_and(|l| l.contains(',') && l != ","),
        "HR limits drawn: {scale}"
    );
    wait_text(c, "#trend-status", "per point").await;
    // A custom range around the few minutes the station has run, for a readable picture.
    js(
        c,
        "const p = (n) => String(n).padStart(2, '0');
         const f = (ms) => { const d = new Date(ms); return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; };
         document.querySelector('#trend-from').value = f(Date.now() - 3 * 60000);
         document.querySelector('#trend-to').value = f(Date.now() + 2 * 60000);
         return true;",
    )
    .await;
    click(c, "#trend-apply").await;
    wait_js(
        c,
        Duration::from_secs(10),
        &format!(
            "{INK} const s = document.querySelector('#trend-status').textContent;
             const hr = document.querySelector('.trend-chart[data-trend=\"hr\"] canvas');
             return s.includes('1 s per point') && trace(hr) > 100;"
        ),
    )
    .await;
    screenshot(c, "bed-detail-trends.png").await;
    click(c, "button[data-range=\"8h\"]").await;
    wait_js(
        c,
        Duration::from_secs(10),
        "const b = document.querySelector('button[data-range=\"8h\"]');
         return b.classList.contains('active') && document.querySelector('#trend-status').textContent.includes('1 min per point');",
    )
    .await;

    // ---- Full disclosure: stored samples, the cursor moved with the keyboard and by paging.
    click(c, "#dtab-review").await;
    let n = wait_js(
        c,
        Duration::from_secs(15),
        "return Number(document.querySelector('#review-strip').dataset.samples || 0);",
    )
    .await;
    assert!(
        n.as_f64().unwrap_or(0.0) > 500.0,
        "stored ECG at 500 Hz in the last 10 s: {n}"
    );
    wait_js(
        c,
        Duration::from_secs(10),
        &format!("{INK} return trace(document.querySelector('#review-strip')) > 300;"),
    )
    .await;
    // The other leads of the same window under the chosen one. They load with it, so they are
    // checked on this window, the latest seconds, which the chosen lead shows is recorded (a
    // window paged back may lie before the station started).
    let leads = wait_js(
        c,
        Duration::from_secs(10),
        "const l = [...document.querySelectorAll('#review-leads canvas.review-lead')];
         return l.length === 3 && l.every(c => Number(c.dataset.samples) > 0 && !c.dataset.error)
           ? l.map(c => c.dataset.channel) : null;",
    )
    .await;
    if leads.is_null() {
        let why = js(
            c,
            "const l = [...document.querySelectorAll('#review-leads canvas.review-lead')];
             return JSON.stringify({status: document.querySelector('#review-status').textContent,
               strip: {...document.querySelector('#review-strip').dataset},
               leads: l.map(c => ({...c.dataset}))});",
        )
        .await;
        panic!("ECG V5, pleth and resp under the chosen lead: {why}");
    }
    assert_eq!(leads, json!(["ECG_V5", "PLETH", "RESP"]));
    screenshot(c, "bed-detail-review.png").await;
    let cursor0 = num(
        c,
        "return Number(document.querySelector('#review-strip').dataset.cursor);",
    )
    .await;
    let start0 = num(
        c,
        "return Number(document.querySelector('#review-strip').dataset.start);",
    )
    .await;
    let strip = c
        .find(Locator::Css("#review-strip"))
        .await
        .expect("review strip");
    strip.click().await.expect("click the strip");
    let clicked = num(
        c,
        "return Number(document.querySelector('#review-strip').dataset.cursor);",
    )
    .await;
    assert!(
        clicked >= start0 && clicked <= start0 + 10_000.0,
        "a click puts the cursor in the window"
    );
    let left: String = std::iter::repeat_n(char::from(Key::Left), 5).collect();
    strip.send_keys(&left).await.expect("arrow keys");
    let moved = wait_js(
        c,
        Duration::from_secs(5),
        &format!(
            "const c = Number(document.querySelector('#review-strip').dataset.cursor);
             return Math.abs(c - ({clicked} - 1000)) < 2 ? c : 0;"
        ),
    )
    .await;
    assert!(
        moved.as_f64().unwrap_or(0.0) > 0.0,
        "five ← moved the cursor back 1 s from {clicked} (was {cursor0})"
    );
    strip
        .send_keys(&char::from(Key::PageUp).to_string())
        .await
        .expect("page up");
    let start1 = wait_js(
        c,
        Duration::from_secs(5),
        &format!(
            "const s = Number(document.querySelector('#review-strip').dataset.start);
             return s === {start0} - 10000 ? s : 0;"
        ),
    )
    .await;
    assert!(
        start1.as_f64().unwrap_or(0.0) > 0.0,
        "Page Up went back 10 s"
    );
    let readout = wait_text(c, "#review-readout", "Cursor").await;
    assert!(readout.contains("ECG II"), "{readout}");
    // The date is part of the cursor's time.
    let year = js(c, "return String(new Date().getFullYear());").await;
    assert!(
        readout.contains(year.as_str().unwrap_or("20")),
        "date shown: {readout}"
    );
    // Two-cursor calipers.
    click(c, "#review-calipers").await;
    let cal = wait_text(c, "#review-readout", "calipers Δ 1.000 s · 60 /min").await;
    assert!(cal.contains("calipers"), "{cal}");
    screenshot(c, "bed-detail-review-calipers.png").await;
    // The slider to an hour ago, before the station started: the whole window is one gap.
    js(
        c,
        "const s = document.querySelector('#review-slider');
         s.value = s.min;
         s.dispatchEvent(new Event('input'));
         return true;",
    )
    .await;
    let gap = wait_js(
        c,
        Duration::from_secs(10),
        "const s = document.querySelector('#review-strip');
         return s.dataset.samples === '0' && document.querySelector('#review-status').textContent.includes('1 gap')
           ? Number(s.dataset.gaps) : 0;",
    )
    .await;
    assert_eq!(gap, 1, "an hour ago: no samples, one gap");
    screenshot(c, "bed-detail-review-gap.png").await;

    // ---- Alarm history: the simulated desaturation of bed 03, with the seconds before it.
    click(c, "#dtab-alarms").await;
    wait_true(
        c,
        Duration::from_secs(90),
        "const row = document.querySelector('tr.alarm-row[data-code=\"SPO2_LOW\"]');
         if (row) return true;
         if (!window.__lastReload || Date.now() - window.__lastReload > 3000) {
           window.__lastReload = Date.now();
           document.querySelector('#alarm-reload').click();
         }
         return false;",
        "SpO2 alarm in the history",
    )
    .await;
    let row = text(c, "tr.alarm-row[data-code=\"SPO2_LOW\"]").await;
    assert!(row.contains("*** high"), "priority marker: {row}");
    assert!(row.contains("SpO2 LOW"), "{row}");
    wait_text(c, "#alarm-status", "click one").await;
    click(c, "tr.alarm-row[data-code=\"SPO2_LOW\"] td.time").await;
    wait_true(
        c,
        Duration::from_secs(10),
        &format!(
            "{INK} const s = [...document.querySelectorAll('tr.alarm-snippet:not([hidden]) canvas')];
             return s.length === 2 && s.every(cv => Number(cv.dataset.samples) > 0 && trace(cv) > 100);"
        ),
        "ECG and pleth before the alarm",
    )
    .await;
    screenshot(c, "bed-detail-alarms.png").await;

    // ---- Print the alarm's strip (issue 16): the reason asked, the PDF saved by the station,
    // the preview shown; the strip itself kept beside the screenshots.
    click(c, "tr.alarm-row[data-code=\"SPO2_LOW\"] button.print-strip").await;
    wait_visible(c, "#print-reason", "the reason for the printout").await;
    assert!(text(c, "#printout h2").await.contains("Alarm strip"));
    click(c, "#print-go").await;
    wait_true(
        c,
        Duration::from_secs(30),
        "const i = document.querySelector('#printout-preview');
         return !!i && i.complete && i.naturalWidth === 1485;",
        "the strip's preview, one A4 page wide at 127 dpi",
    )
    .await;
    let saved = wait_text(c, "#printout .printout-saved", "Saved as").await;
    assert!(
        saved.contains("/reports/strip_") && saved.contains("SPO2_LOW.pdf"),
        "{saved}"
    );
    save_preview(c, "report-strip.png").await;
    screenshot(c, "bed-detail-print-strip.png").await;
    click(c, "#printout-close").await;

    // ---- A trend report of the trend range, and a de-identified export of it.
    click(c, "#dtab-trends").await;
    click(c, "#trend-print").await;
    wait_visible(c, "#print-reason", "the reason for the trend report").await;
    click(c, "#print-go").await;
    wait_true(
        c,
        Duration::from_secs(30),
        "const i = document.querySelector('#printout-preview');
         return !!i && i.complete && i.naturalWidth === 1485 && i.naturalHeight >= 2 * 1050;",
        "the trend report's preview: charts and the table, A4 pages",
    )
    .await;
    wait_text(c, "#printout .printout-saved", "/reports/trend_").await;
    save_preview(c, "report-trend.png").await;
    screenshot(c, "bed-detail-print-trend.png").await;
    click(c, "#printout-close").await;
    click(c, "#trend-export").await;
    wait_visible(c, "#export-reason", "the export form").await;
    assert!(
        visible(c, "#export-identified").await,
        "a charge nurse may export with identity"
    );
    fill(c, "#export-reason", "quality audit 2026").await;
    click(c, "#export-go").await;
    let done = wait_text(c, "#export-result", "Saved as").await;
    assert!(
        done.contains("/exports/export_deid_") && done.contains("readings"),
        "{done}"
    );
    click(c, "#printout-close").await;

    // ---- The ward's shift handover from the header: bed 03 and its desaturation on it.
    assert!(
        visible(c, "#btn-handover").await,
        "a charge nurse prints handovers"
    );
    click(c, "#btn-handover").await;
    wait_visible(c, "#print-reason", "the reason for the handover").await;
    click(c, "#print-go").await;
    wait_true(
        c,
        Duration::from_secs(30),
        "const i = document.querySelector('#printout-preview');
         return !!i && i.complete && i.naturalWidth === 1485;",
        "the handover's preview",
    )
    .await;
    wait_text(c, "#printout .printout-saved", "/reports/shift_").await;
    save_preview(c, "report-shift.png").await;
    click(c, "#printout-close").await;
    click(c, "#dtab-alarms").await;

    // ---- Admit a patient; the backend lists the name for this session.
    click(c, "#dtab-patient").await;
    wait_visible(c, "#adt-mrn", "admit form for the charge nurse").await;
    fill(c, "#adt-mrn", "MRN-4711").await;
    fill(c, "#adt-name", "Ada Lovelace").await;
    // Two identifiers: without a date of birth the admission is refused by the backend.
    let refused = invoke(
        c,
        "admit_patient",
        &format!(
            "{{ bed: {bed:?}, patient: {{ mrn: 'MRN-9', name: 'No Dob', dob: '', sex: 'U', pacemaker: false }} }}"
        ),
    )
    .await;
    assert_eq!(refused["err"]["code"], "bad_request", "{refused}");
    set_value(c, "#adt-dob", "1948-12-10").await;
    js(
        c,
        "document.querySelector('#adt-sex').value = 'F';
         document.querySelector('#adt-pacer').checked = true; return true;",
    )
    .await;
    click(c, "#adt-admit").await;
    // The patient header: name, age, sex, pacemaker, MRN.
    let header = wait_text(c, "#detail-patient", " y · F · PACER · MRN MRN-4711").await;
    assert!(header.starts_with("Ada Lovelace · "), "{header}");
    let patients = invoke(c, "list_patients", "{}").await;
    assert_eq!(patients["ok"][0]["name"], "Ada Lovelace", "{patients}");
    assert_eq!(patients["ok"][0]["dob"], "1948-12-10", "{patients}");
    assert_eq!(patients["ok"][0]["pacemaker"], true, "{patients}");
    // ... and on the bed's tile in the ward strip.
    wait_text(
        c,
        &format!(".bed-tile[data-bed={bed:?}] .patient-name"),
        "F · PACER",
    )
    .await;
    assert_eq!(patients["ok"][0]["bed"], Value::String(bed.clone()));

    // ---- Locked: the backend masks the patient's identity (initials only), the bed stays open.
    click(c, "#btn-lock").await;
    wait_visible(c, "#lock-banner", "lock banner").await;
    wait_js(
        c,
        Duration::from_secs(15),
        "return document.querySelector('#detail-patient').textContent === 'A. L. · F · PACER';",
    )
    .await;
    assert_eq!(
        text(c, "#detail-patient").await,
        "A. L. · F · PACER",
        "masked while locked (sex and pacemaker are not identity)"
    );
    let masked = invoke(c, "list_patients", "{}").await;
    assert_eq!(masked["ok"][0]["mrn"], "", "{masked}");
    fill(c, "#unlock-pw", CHARGE_PW).await;
    click(c, "#unlock-submit").await;
    wait_text(c, "#detail-patient", "Ada Lovelace").await;

    // ---- Escape: back to the ward.
    c.active_element()
        .await
        .expect("focused element")
        .send_keys(&char::from(Key::Escape).to_string())
        .await
        .expect("escape");
    wait_js(
        c,
        Duration::from_secs(5),
        "return document.querySelector('#bed-detail').hidden;",
    )
    .await;
    assert!(!visible(c, "#bed-detail").await, "Escape closes the detail");
    wait_visible(c, "#ward-grid", "ward grid back").await;

    // ---- Restart on the same database: the limits set above are in force again.
    let app = app.restart().await;
    let c = &app.c;
    wait_for(c, Duration::from_secs(30), |v| v["tiles"] == 8).await;
    let limits = invoke(c, "bed_limits", &format!("{{ bed: {bed:?} }}")).await;
    let spo2 = limits["ok"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["code"] == "SPO2_LOW"))
        .unwrap_or_else(|| panic!("SPO2_LOW in {limits}"));
    assert_eq!(
        spo2["threshold"], 88.0,
        "saved limits after a restart: {limits}"
    );
    app.close().await;
}
