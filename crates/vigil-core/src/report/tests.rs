use super::*;
use crate::config::ReportsSection;

#[test]
fn reasons_are_checked() {
    assert!(Reason::parse("  chart copy ").is_ok_and(|r| r.as_str() == "chart copy"));
    assert!(Reason::parse("ab").is_err());
    assert!(Reason::parse(&"x".repeat(201)).is_err());
    assert!(Reason::parse("line\nbreak").is_err());
}

#[test]
fn settings_are_validated_in_one_place() {
    let s = ReportSettings::from_section(&ReportsSection {
        time_zone: Some("Europe/Paris".into()),
        strip_before_s: Some(5),
        strip_after_s: Some(20),
        auto_strip: Some(vec!["high".into(), "medium".into()]),
        gain_mm_mv: Some(20.0),
        dpi: Some(300.0),
        strip_dir: None,
    })
    .expect("valid");
    assert_eq!(s.tz, chrono_tz::Europe::Paris);
    assert_eq!(s.strip_before_ms, 5_000);
    assert_eq!(s.strip_end, StripEnd::After(20_000));
    assert_eq!(s.auto_strip, vec![Priority::High, Priority::Medium]);
    assert_eq!(s.paper.gain_mm_mv, 20.0);
    for bad in [
        ReportsSection {
            time_zone: Some("Mars/Olympus".into()),
            ..Default::default()
        },
        ReportsSection {
            strip_before_s: Some(31),
            ..Default::default()
        },
        ReportsSection {
            strip_before_s: Some(30),
            strip_after_s: Some(40),
            ..Default::default()
        },
        ReportsSection {
            auto_strip: Some(vec!["urgent".into()]),
            ..Default::default()
        },
        ReportsSection {
            gain_mm_mv: Some(7.0),
            ..Default::default()
        },
    ] {
        assert!(ReportSettings::from_section(&bad).is_err(), "{bad:?}");
    }
    let none = ReportSettings::from_section(&ReportsSection {
        auto_strip: Some(vec![]),
        time_zone: Some("UTC".into()),
        ..Default::default()
    })
    .expect("valid");
    assert!(none.auto_strip.is_empty());
}

#[test]
fn file_names_carry_no_identity_and_no_separator() {
    assert_eq!(file_part("ICU-A/bed 03"), "ICU-A_bed_03");
    assert_eq!(stamp(0), "19700101T000000Z");
    assert_eq!(iso(1_250), "1970-01-01T00:00:01.250Z");
}

/// A station database with `rows` of (t_ms, code, value) for bed 4W/01.
fn db_with(rows: &[(i64, &str, f64)]) -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().expect("tmp");
    let conn = crate::store::open(&dir.path().join("t.db")).expect("db");
    for (t, code, v) in rows {
        conn.execute(
            "INSERT INTO numerics (ward, bed, device, t_ms, mdc, code, value, unit, status)
             VALUES ('4W', '01', 'mon-1', ?1, 0, ?2, ?3, '', 'final')",
            rusqlite::params![t, code, v],
        )
        .expect("insert");
    }
    (dir, conn)
}

#[test]
fn trend_rows_start_at_the_report_and_hold_the_newest_readings() {
    // A report of [T, T + 1 h) whose start is not on a 15-minute boundary, readings only in
    // its last minute (a bed that has just started sending): they are in the last row and on
    // the chart, not in a bucket whose middle is in the future.
    const T: i64 = 1_765_000_000_000 + 86_000;
    let rows: Vec<(i64, &str, f64)> = (0..6)
        .map(|i| (T + 3_540_000 + i * 10_000, "HR", 80.0 + 2.0 * i as f64))
        .collect();
    let (_dir, conn) = db_with(&rows);
    let req = TrendRequest {
        bed: BedId::new("4W", "01"),
        from_ms: T,
        to_ms: T + 3_600_000,
        interval_ms: 900_000,
        format: Format::Pdf,
        reason: Reason::parse("test").expect("reason"),
        preview: false,
    };
    let doc = gather::trend(
        &conn,
        "nina",
        &req,
        &ReportSettings::default(),
        T + 3_600_000,
    )
    .expect("trend");
    assert_eq!(doc.table.rows.len(), 4);
    assert_eq!(doc.table.rows[0].0, T);
    assert_eq!(doc.table.rows[3].0, T + 2_700_000);
    assert_eq!(
        doc.table.rows[3].1[0], "85",
        "the mean of 80..90 in the last row"
    );
    assert!(doc.table.rows[..3].iter().all(|r| r.1[0] == "—"));
    assert!(!doc.hr.points.is_empty());
    assert!(doc
        .hr
        .points
        .iter()
        .all(|p| p.0 >= T + 3_540_000 && p.0 < T + 3_600_000));
    assert_eq!(doc.hr.unit, "/min");
    assert_eq!(doc.temp.unit, "°C");
}

#[test]
fn strip_windows_follow_the_settings() {
    let ep = crate::query::AlarmEpisode {
        t_ms: 100_000,
        alarm_id: "4W/01/SPO2_LOW".into(),
        code: "SPO2_LOW".into(),
        priority: Priority::High,
        technical: false,
        message: "SpO2 LOW".into(),
        value: None,
        limit: None,
        acknowledged_by: None,
        acknowledged_ms: None,
        resolved_ms: Some(103_000),
    };
    let s = ReportSettings::default();
    // To its end, at least 6 s after the onset; never past now.
    assert_eq!(gather::strip_window(&ep, &s, 200_000), (90_000, 106_000));
    assert_eq!(gather::strip_window(&ep, &s, 104_000), (90_000, 104_000));
    assert!(!gather::strip_complete(&ep, &s, 105_999));
    assert!(gather::strip_complete(&ep, &s, 106_000));
    // Still active: 60 s in all at most.
    let open = crate::query::AlarmEpisode {
        resolved_ms: None,
        ..ep.clone()
    };
    assert_eq!(gather::strip_window(&open, &s, 500_000), (90_000, 150_000));
    // A fixed length after the onset.
    let fixed = ReportSettings {
        strip_end: StripEnd::After(20_000),
        ..s
    };
    assert_eq!(
        gather::strip_window(&ep, &fixed, 500_000),
        (90_000, 120_000)
    );
}
