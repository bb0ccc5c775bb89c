//! MIT-BIH record 100 on paper: each annotated beat's R peak lands where 25 mm/s puts it, and a
//! gap leaves no ink.

use vigil_report::{strip, strip_layout, Format, Paper};

use crate::bitmap::Bitmap;
use crate::fixtures;

const FROM_S: f64 = 20.0;
const TO_S: f64 = 30.0;

#[test]
fn r_peaks_land_where_the_paper_speed_puts_them() {
    let paper = Paper::default();
    let doc = fixtures::mitdb_strip(FROM_S, TO_S);
    let layout = strip_layout(&doc, &paper).unwrap();
    assert_eq!(layout.pages.len(), 1, "10 s on one page");
    let png = strip(&doc, &paper, Format::Png).unwrap();
    let bmp = Bitmap::decode(&png.bytes);
    let page = &layout.pages[0];
    let band = &page.bands[0];
    assert_eq!(band.label, "MLII");
    let (mlii, _) = fixtures::mitdb100();
    let mm = paper.dpi / 25.4;
    // Where the paper puts time t (ms since the epoch): computed here from the paper's speed
    // and resolution, only x0 from the layout.
    let x_of = |t_ms: f64| {
        f64::from(page.x0_px) + (t_ms - doc.from_ms as f64) / 1000.0 * paper.speed_mm_s * mm
    };
    let y_of = |mv: f64| band.baseline_px as f64 - mv * paper.gain_mm_mv * mm;

    let beats: Vec<f64> = fixtures::mitdb100_beats()
        .into_iter()
        .filter(|(t, sym)| sym == "N" && *t > FROM_S + 0.1 && *t < TO_S - 0.1)
        .map(|(t, _)| t)
        .collect();
    assert!(beats.len() >= 10, "{} beats in 10 s", beats.len());
    let mut errors = Vec::new();
    for t_annot in beats {
        let x_annot = x_of(fixtures::T0 as f64 + t_annot * 1000.0);
        // The bitmap's R peak: the topmost ink in the band within ±40 ms of the annotation;
        // its columns' middle.
        let window = ((x_annot - 10.0) as i32)..=((x_annot + 10.0) as i32);
        let top = page.top_px as i32 + band.top_px;
        let bottom = page.top_px as i32 + band.bottom_px;
        let peak_row = window
            .clone()
            .filter_map(|x| (top..=bottom).find(|&y| bmp.is_trace(x, y)))
            .min()
            .expect("ink near the beat");
        let cols: Vec<i32> = window.filter(|&x| bmp.is_trace(x, peak_row)).collect();
        let x_bitmap = f64::from(cols[0] + cols[cols.len() - 1]) / 2.0;

        // The data's R peak: the highest samples within ±50 ms of the annotation (the
        // cardiologist's mark is up to 2 samples before it); the samples that round to its
        // pixel row, their middle column.
        let s_annot = (t_annot * 360.0).round() as usize;
        let samples = s_annot - 18..=s_annot + 18;
        let y_min = samples
            .clone()
            .map(|i| y_of(mlii[i]).round() as i32)
            .min()
            .unwrap();
        let xs: Vec<f64> = samples
            .filter(|&i| y_of(mlii[i]).round() as i32 == y_min)
            .map(|i| x_of(fixtures::T0 as f64 + i as f64 / 360.0 * 1000.0).round())
            .collect();
        let x_data = (xs[0] + xs[xs.len() - 1]) / 2.0;
        let error = x_bitmap - x_data;
        assert!(
            error.abs() <= 1.0,
            "beat at {t_annot} s: R peak at column {x_bitmap}, the paper puts it at {x_data}"
        );
        assert!(
            (x_bitmap - x_annot).abs() <= 3.0,
            "beat at {t_annot} s: {x_bitmap} vs annotation {x_annot}"
        );
        // The pen's peak is one pixel above the peak sample's row (its plus-shaped nib).
        assert!(
            (peak_row - page.top_px as i32 - y_min).abs() <= 1,
            "peak row {peak_row} vs {y_min}"
        );
        errors.push(error);
    }
    // A renderer one sample (0.69 px) off would move every beat the same way.
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(
        mean.abs() < 0.35,
        "mean error {mean} px over {} beats",
        errors.len()
    );
}

#[test]
fn a_gap_leaves_no_ink_in_its_span() {
    let paper = Paper::default();
    let mut doc = fixtures::mitdb_strip(FROM_S, TO_S);
    let (g0, g1) = (doc.from_ms + 3_000, doc.from_ms + 5_500);
    doc.traces[0].gaps.push([g0, g1]);
    // And the space between two stretches of V5 is a gap too.
    let v5 = &mut doc.traces[1];
    let mut second = v5.stretches[0].clone();
    let cut = ((doc.from_ms + 7_000 - fixtures::T0) as f64 * 0.36) as usize;
    let resume = ((doc.from_ms + 8_000 - fixtures::T0) as f64 * 0.36) as usize;
    v5.stretches[0].values.truncate(cut);
    second.values.drain(..resume);
    second.t0_ms += resume as f64 / 0.36;
    v5.stretches.push(second);

    let layout = strip_layout(&doc, &paper).unwrap();
    let bmp = Bitmap::decode(&strip(&doc, &paper, Format::Png).unwrap().bytes);
    let page = &layout.pages[0];
    let ink = |band: usize, from: f64, to: f64| -> usize {
        let b = &page.bands[band];
        let (x0, x1) = (
            layout.x_of(page, from).round() as i32,
            layout.x_of(page, to).round() as i32,
        );
        (x0..=x1)
            .map(|x| {
                (b.top_px..=b.bottom_px)
                    .filter(|&y| bmp.is_trace(x, y))
                    .count()
            })
            .sum()
    };
    let px = 1000.0 / (paper.speed_mm_s * layout.px_per_mm); // ms per pixel
    assert_eq!(
        ink(0, g0 as f64 + 3.0 * px, g1 as f64 - 3.0 * px),
        0,
        "no ink in MLII's gap"
    );
    assert!(
        ink(0, g0 as f64 - 1000.0, g0 as f64 - 3.0 * px) > 100,
        "ink before the gap"
    );
    let (s0, s1) = ((doc.from_ms + 7_000) as f64, (doc.from_ms + 8_000) as f64);
    assert_eq!(
        ink(1, s0 + 3.0 * px, s1 - 3.0 * px),
        0,
        "no ink between V5's stretches"
    );
    assert!(ink(1, s1 + 3.0 * px, s1 + 1000.0) > 100, "ink after it");
}
