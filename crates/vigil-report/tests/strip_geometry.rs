//! The strip's paper measured on the PNG: major grid lines 5 mm apart, the calibration pulse
//! 1 mV tall, the resolution stated in `pHYs`.

use vigil_report::{strip, strip_layout, Format, Paper};

use crate::bitmap::Bitmap;
use crate::fixtures;

/// Groups consecutive indices (a line more than one pixel wide) and returns each group's first.
fn line_starts(hits: &[i32]) -> Vec<i32> {
    let mut starts = Vec::new();
    for (i, &h) in hits.iter().enumerate() {
        if i == 0 || hits[i - 1] + 1 != h {
            starts.push(h);
        }
    }
    starts
}

fn grid_and_pulse(dpi: f64) {
    let paper = Paper {
        dpi,
        ..Paper::default()
    };
    let mut doc = fixtures::mitdb_strip(20.0, 30.0);
    // The onset's blue line off the major lines.
    doc.onset_ms = doc.from_ms + 1_234;
    let layout = strip_layout(&doc, &paper).unwrap();
    let png = strip(&doc, &paper, Format::Png).unwrap();
    let bmp = Bitmap::decode(&png.bytes);
    let mm = dpi / 25.4;
    assert!((layout.px_per_mm - mm).abs() < 1e-9);
    assert!(
        (bmp.dpi.expect("a pHYs chunk") - dpi).abs() < 0.02,
        "pHYs says {:?}",
        bmp.dpi
    );
    assert_eq!(bmp.width, (297.0 * mm).round() as u32);
    assert_eq!(bmp.height, (210.0 * mm).round() as u32 * png.pages as u32);

    let page = &layout.pages[0];
    let band = &page.bands[0];
    let top = page.top_px as i32 + band.top_px;
    let bottom = page.top_px as i32 + band.bottom_px;

    // Columns that are major-grid red over most of the band (where the trace's ink does not
    // cover the paper).
    let columns: Vec<i32> = (page.grid_left_px..=page.grid_right_px)
        .filter(|&x| {
            let paper: Vec<i32> = (top + 2..bottom - 2)
                .filter(|&y| !bmp.is_trace(x, y))
                .collect();
            let n = paper.iter().filter(|&&y| bmp.is_major(x, y)).count();
            n as f64 > 0.6 * paper.len() as f64
        })
        .collect();
    let xs = line_starts(&columns);
    let expected =
        ((page.grid_right_px - page.grid_left_px) as f64 / (5.0 * mm)).round() as usize + 1;
    assert_eq!(
        xs.len(),
        expected,
        "{} major columns, {expected} expected",
        xs.len()
    );
    assert!(xs.contains(&page.x0_px), "a major line at the page's x0");
    for w in xs.windows(2) {
        let d = f64::from(w[1] - w[0]);
        assert!(
            (d - 5.0 * mm).abs() <= 1.0,
            "major columns {} and {} are {d} px apart at {dpi} dpi",
            w[0],
            w[1]
        );
    }

    // Rows likewise, over the grid's width.
    let rows: Vec<i32> = (top..=bottom)
        .filter(|&y| {
            let n = (page.grid_left_px + 2..page.grid_right_px - 2)
                .filter(|&x| bmp.is_major(x, y))
                .count();
            n as f64 > 0.6 * f64::from(page.grid_right_px - page.grid_left_px - 4)
        })
        .collect();
    let ys = line_starts(&rows);
    assert!(ys.len() >= 6, "{} major rows in a 30 mm band", ys.len());
    assert!(
        ys.contains(&(page.top_px as i32 + band.baseline_px)),
        "a major line at 0 mV"
    );
    for w in ys.windows(2) {
        let d = f64::from(w[1] - w[0]);
        assert!(
            (d - 5.0 * mm).abs() <= 1.0,
            "major rows {} and {} are {d} px apart at {dpi} dpi",
            w[0],
            w[1]
        );
    }

    // The calibration pulse: the trace's ink on top of the pulse versus on the baseline
    // before it, each as the middle of its run of ink.
    let ink_rows =
        |x: i32| -> Vec<i32> { (top..=bottom).filter(|&y| bmp.is_trace(x, y)).collect() };
    let middle = |rows: &[i32]| f64::from(rows[0] + rows[rows.len() - 1]) / 2.0;
    let on_top = ink_rows(page.cal_x_px + layout.cal_width_px / 2);
    let before = ink_rows(page.cal_x_px - (2.0 * mm) as i32 / 2);
    assert!(
        !on_top.is_empty() && !before.is_empty(),
        "the pulse is drawn"
    );
    let height = middle(&before) - middle(&on_top);
    let expected = paper.gain_mm_mv * mm;
    assert!(
        (height - expected).abs() <= 1.0,
        "pulse {height} px tall, {expected} expected at {dpi} dpi"
    );
    let width = (page.cal_x_px..page.x0_px)
        .filter(|&x| bmp.is_trace(x, (middle(&on_top)) as i32))
        .count() as f64;
    let expected_w = 0.2 * paper.speed_mm_s * mm;
    assert!(
        (width - expected_w).abs() <= 3.0,
        "pulse {width} px wide, {expected_w} expected"
    );
}

#[test]
fn major_grid_is_5_mm_and_the_pulse_1_mv_at_254_dpi() {
    grid_and_pulse(254.0);
}

#[test]
fn major_grid_is_5_mm_and_the_pulse_1_mv_at_300_dpi() {
    grid_and_pulse(300.0);
}

#[test]
fn a_window_that_is_empty_or_too_long_is_refused() {
    let mut doc = fixtures::mitdb_strip(20.0, 30.0);
    doc.to_ms = doc.from_ms;
    let e = strip(&doc, &Paper::default(), Format::Png).unwrap_err();
    assert!(e.to_string().contains("empty window"), "{e}");
    doc.to_ms = doc.from_ms + vigil_report::MAX_STRIP_MS + 1;
    let e = strip_layout(&doc, &Paper::default()).unwrap_err();
    assert!(e.to_string().contains("too long"), "{e}");
    let bad = Paper {
        speed_mm_s: 0.0,
        ..Paper::default()
    };
    assert!(strip_layout(&fixtures::mitdb_strip(20.0, 30.0), &bad).is_err());
}

#[test]
fn pages_hold_ten_seconds_at_25_mm_s_and_five_at_50() {
    let doc = fixtures::mitdb_strip(0.0, 25.0);
    let layout = strip_layout(&doc, &Paper::default()).unwrap();
    assert_eq!(layout.page_ms, 10_000);
    let spans: Vec<i64> = layout.pages.iter().map(|p| p.to_ms - p.from_ms).collect();
    assert_eq!(spans, vec![10_000, 10_000, 5_000]);
    let fast = strip_layout(
        &doc,
        &Paper {
            speed_mm_s: 50.0,
            ..Paper::default()
        },
    )
    .unwrap();
    assert_eq!(fast.page_ms, 5_000);
    assert_eq!(fast.pages.len(), 5);
    // The page's 10 s fit in the grid right of x0.
    let p = &layout.pages[0];
    assert!(f64::from(p.grid_right_px - p.x0_px) >= 10.0 * 25.0 * layout.px_per_mm - 1.0);
}
