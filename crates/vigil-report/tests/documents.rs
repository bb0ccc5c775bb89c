//! The three formats, the trend and shift reports, and documents with no data.

use vigil_report::*;

use crate::bitmap::Bitmap;
use crate::fixtures;

/// The pages of a PDF and each page's MediaBox, read from its bytes.
fn pdf_pages(bytes: &[u8]) -> Vec<[f64; 4]> {
    let text = String::from_utf8_lossy(bytes);
    let mut boxes = Vec::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("/MediaBox [") {
        rest = &rest[at + "/MediaBox [".len()..];
        let end = rest.find(']').unwrap();
        let nums: Vec<f64> = rest[..end]
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        boxes.push([nums[0], nums[1], nums[2], nums[3]]);
    }
    let pages = text
        .match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + 11..].starts_with('s'))
        .count();
    assert_eq!(pages, boxes.len(), "one MediaBox per page");
    boxes
}

fn check_pdf(doc: &Document, pages: usize) {
    assert_eq!(doc.format, Format::Pdf);
    assert!(doc.bytes.starts_with(b"%PDF"), "a PDF");
    let boxes = pdf_pages(&doc.bytes);
    assert_eq!(boxes.len(), pages);
    assert_eq!(doc.pages, pages);
    for b in boxes {
        assert!(b[0].abs() < 1e-3 && b[1].abs() < 1e-3, "{b:?}");
        assert!(
            (b[2] - 841.89).abs() < 0.01 && (b[3] - 595.28).abs() < 0.01,
            "A4 landscape: {b:?}"
        );
    }
    let text = String::from_utf8_lossy(&doc.bytes);
    assert!(
        text.contains("/FontFile2") || text.contains("/FontFile3"),
        "an embedded font"
    );
    assert!(text.contains("DejaVuSans"), "the bundled font");
}

fn check_svg(doc: &Document, pages: usize) -> String {
    let svg = String::from_utf8(doc.bytes.clone()).unwrap();
    let root = &svg[svg.find("<svg").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    assert!(root.contains("width=\"297mm\""), "{root}");
    assert!(
        root.contains(&format!("height=\"{}mm\"", 210 * pages)),
        "{root}"
    );
    let tree = svg2pdf::usvg::Tree::from_str(&svg, &svg2pdf::usvg::Options::default())
        .expect("the SVG parses");
    // usvg sizes in CSS px (96 per inch).
    let mm = 96.0 / 25.4;
    assert!((f64::from(tree.size().width()) - 297.0 * mm).abs() < 0.5);
    assert!((f64::from(tree.size().height()) - 210.0 * pages as f64 * mm).abs() < 0.5);
    svg
}

fn check_png(doc: &Document, pages: usize, dpi: f64) -> Bitmap {
    let bmp = Bitmap::decode(&doc.bytes);
    let (w, h) = (
        (297.0 * dpi / 25.4).round() as u32,
        (210.0 * dpi / 25.4).round() as u32,
    );
    assert_eq!(
        (bmp.width, bmp.height),
        (w, h * pages as u32),
        "{pages} A4 pages at {dpi} dpi"
    );
    assert_eq!((doc.width_px, doc.height_px), (bmp.width, bmp.height));
    // pHYs holds whole pixels per metre.
    assert!((bmp.dpi.unwrap() - dpi).abs() < 0.02);
    assert_eq!(doc.pages, pages);
    bmp
}

#[test]
fn a_strip_in_every_format() {
    let mut doc = fixtures::mitdb_strip(2.0, 22.0);
    doc.traces
        .push(fixtures::pleth(doc.from_ms, doc.to_ms, "Pleth"));
    let paper = Paper::default();
    let pages = strip_layout(&doc, &paper).unwrap().pages.len();
    assert_eq!(pages, 2);
    check_png(&strip(&doc, &paper, Format::Png).unwrap(), pages, 254.0);
    check_pdf(&strip(&doc, &paper, Format::Pdf).unwrap(), pages);
    let svg = check_svg(&strip(&doc, &paper, Format::Svg).unwrap(), pages);
    for text in [
        "25 mm/s · 10 mm/mV",
        "254 dpi, print at 100 %",
        "onset",
        "scaled",
        "Jane Doe",
        "HIGH priority",
        "page 2 of 2",
        "Printed by nina (RN) at 2026-12-07 15:00:00 CET",
    ] {
        assert!(svg.contains(text), "the strip says {text:?}");
    }
}

#[test]
fn six_traces_fit_and_more_go_to_further_pages() {
    let mut doc = fixtures::mitdb_strip(2.0, 12.0);
    let ecg = doc.traces[0].clone();
    doc.traces = vec![ecg.clone(), ecg.clone(), ecg.clone(), ecg.clone()];
    doc.traces
        .push(fixtures::pleth(doc.from_ms, doc.to_ms, "Pleth"));
    doc.traces
        .push(fixtures::pleth(doc.from_ms, doc.to_ms, "Resp"));
    let layout = strip_layout(&doc, &Paper::default()).unwrap();
    assert_eq!(
        layout.pages.len(),
        1,
        "4 ECG leads, pleth and resp on one page"
    );
    doc.traces.push(ecg);
    let layout = strip_layout(&doc, &Paper::default()).unwrap();
    assert_eq!(layout.pages.len(), 2);
    assert!(layout.pages.iter().all(|p| p.from_ms == doc.from_ms));
    assert_eq!(
        layout.pages.iter().map(|p| p.bands.len()).sum::<usize>(),
        7,
        "every trace once"
    );
    let png = strip(&doc, &Paper::default(), Format::Png).unwrap();
    assert_eq!(png.pages, 2);
}

#[test]
fn a_24_hour_trend_report_in_every_format() {
    let doc = fixtures::trend_doc();
    let pages = 1 + doc.table.rows.len().div_ceil(TABLE_ROWS_PER_PAGE);
    const { assert!(TABLE_ROWS_PER_PAGE >= 25, "a page holds a useful table") };
    assert_eq!(pages, 4, "96 rows of 15 min");
    check_png(&trend(&doc, Format::Png, 150.0).unwrap(), pages, 150.0);
    check_pdf(&trend(&doc, Format::Pdf, 150.0).unwrap(), pages);
    let svg = check_svg(&trend(&doc, Format::Svg, 150.0).unwrap(), pages);
    for text in [
        "HR",
        "SpO2",
        "NIBP",
        "NEWS2",
        "Temp",
        "Trend table",
        "page 4 of 4",
        "Mon 07 Dec",
    ] {
        assert!(svg.contains(text), "the trend report says {text:?}");
    }
    // The column header on every table page.
    assert_eq!(
        svg.matches(">\nTime\n<").count() + svg.matches(">Time<").count(),
        3,
        "the header on each table page"
    );
    // A shorter table: one table page.
    let mut short = doc.clone();
    short.table.rows.truncate(10);
    assert_eq!(trend(&short, Format::Pdf, 150.0).unwrap().pages, 2);
}

#[test]
fn a_shift_report_grows_with_its_beds() {
    let few = fixtures::shift_doc(2);
    check_png(&shift(&few, Format::Png, 100.0).unwrap(), 1, 100.0);
    check_pdf(&shift(&few, Format::Pdf, 100.0).unwrap(), 1);
    check_svg(&shift(&few, Format::Svg, 100.0).unwrap(), 1);
    let many = fixtures::shift_doc(30);
    let pdf = shift(&many, Format::Pdf, 100.0).unwrap();
    // 30 beds of 3 to 11 lines: more than 4 pages, each bed printed once.
    assert!(pdf.pages >= 5, "{} pages", pdf.pages);
    check_pdf(&pdf, pdf.pages);
    check_png(&shift(&many, Format::Png, 100.0).unwrap(), pdf.pages, 100.0);
    let svg = check_svg(&shift(&many, Format::Svg, 100.0).unwrap(), pdf.pages);
    for b in 1..=30 {
        assert_eq!(
            svg.matches(&format!(">\nICU-A/bed-{b:02}\n<")).count(),
            1,
            "bed {b} once"
        );
    }
    for text in [
        "no alarms, no changes",
        "No patient admitted",
        "technical",
        "Remote: adherence",
        "NEWS2 1 → 4, max 4",
        "14:10 HR high 120 → 130 by carl",
    ] {
        assert!(svg.contains(text), "the shift report says {text:?}");
    }
}

#[test]
fn documents_with_no_data_render_and_say_so() {
    let paper = Paper::default();
    // Traces without a sample.
    let mut doc = fixtures::mitdb_strip(2.0, 12.0);
    for t in &mut doc.traces {
        t.stretches.clear();
    }
    doc.patient = None;
    doc.numerics.clear();
    let svg = String::from_utf8(strip(&doc, &paper, Format::Svg).unwrap().bytes).unwrap();
    assert!(svg.contains("no signal") && svg.contains("No patient admitted"));
    let layout = strip_layout(&doc, &paper).unwrap();
    let bmp = Bitmap::decode(&strip(&doc, &paper, Format::Png).unwrap().bytes);
    let (p, b) = (&layout.pages[0], &layout.pages[0].bands[0]);
    let ink = (p.x0_px + 5..p.grid_right_px - 5)
        .flat_map(|x| (b.top_px..=b.bottom_px).map(move |y| (x, y)))
        .filter(|&(x, y)| bmp.is_trace(x, y))
        .count();
    assert_eq!(ink, 0, "no trace drawn");
    strip(&doc, &paper, Format::Pdf).unwrap();
    // No trace at all.
    doc.traces.clear();
    let svg = String::from_utf8(strip(&doc, &paper, Format::Svg).unwrap().bytes).unwrap();
    assert!(svg.contains("No waveform data in this window"));
    strip(&doc, &paper, Format::Png).unwrap();

    let empty = fixtures::empty_trend();
    let svg = String::from_utf8(trend(&empty, Format::Svg, 100.0).unwrap().bytes).unwrap();
    assert_eq!(
        svg.matches("no data").count(),
        7,
        "six charts and the table say so"
    );
    assert_eq!(trend(&empty, Format::Png, 100.0).unwrap().pages, 2);
    trend(&empty, Format::Pdf, 100.0).unwrap();

    let mut nobody = fixtures::shift_doc(0);
    let svg = String::from_utf8(shift(&nobody, Format::Svg, 100.0).unwrap().bytes).unwrap();
    assert!(svg.contains("No beds in this report"));
    nobody.beds = fixtures::shift_doc(3).beds.into_iter().skip(2).collect();
    let pdf = shift(&nobody, Format::Pdf, 100.0).unwrap();
    assert_eq!(pdf.pages, 1);
}
