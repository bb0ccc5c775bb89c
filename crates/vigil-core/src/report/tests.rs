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
