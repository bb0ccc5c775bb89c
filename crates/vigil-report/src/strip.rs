//! The alarm strip: the waveforms around an alarm on ECG paper (true-size grid, calibration
//! pulse, one band per trace, at most 10 s per page).

use plotters::prelude::*;

use crate::canvas::{Align, Canvas, Font, GREY, INK};
use crate::output::{self, page_px, Pages};
use crate::text;
use crate::{
    Document, Format, Paper, ReportError, StripDoc, Trace, TraceKind, A4_HEIGHT_MM, A4_WIDTH_MM,
    MARGIN_MM,
};

/// The longest window a strip may show, ms (two minutes).
pub const MAX_STRIP_MS: i64 = 120_000;
/// The most time on one page, ms.
const MAX_PAGE_MS: i64 = 10_000;
/// Width of the label column and the calibration area together, left of the page's x0, mm
/// (the label column narrows when a fast paper speed needs a wider pulse, down to
/// `MIN_LABEL_MM`).
const GUTTER_MM: f64 = 27.0;
const MIN_LABEL_MM: f64 = 12.0;
/// Height of an ECG band at the standard gain, mm (±1.5 mV at 10 mm/mV).
const ECG_BAND_MM: f64 = 30.0;
/// Height of a scaled band (pleth, resp), mm.
const SCALED_BAND_MM: f64 = 20.0;
/// Where the bands start on the first page (under the four-line header) and on later pages.
const BANDS_TOP_FIRST_MM: f64 = 31.0;
const BANDS_TOP_LATER_MM: f64 = 18.0;
/// Where the bands must end: above the time labels and the footer.
const BANDS_BOTTOM_MM: f64 = A4_HEIGHT_MM - MARGIN_MM - 9.0;
/// The paper's grid.
const MINOR: RGBColor = RGBColor(246, 190, 190);
const MAJOR: RGBColor = RGBColor(222, 95, 95);
/// Where there is no signal.
const NO_SIGNAL: RGBColor = RGBColor(238, 238, 238);
/// The onset marker.
const ONSET: RGBColor = RGBColor(0, 80, 220);
/// The pen of the traces, mm.
const TRACE_MM: f64 = 0.2;

/// The geometry of a strip as drawn in its PNG (at [`Paper::dpi`]): enough to predict the
/// pixel of any sample. Horizontal positions are pixels from the page's left edge; vertical
/// positions are pixels from the top of their page (add [`PageLayout::top_px`] for the row in
/// the stacked bitmap).
#[derive(Debug, Clone, PartialEq)]
pub struct StripLayout {
    /// Pixels per millimetre (`dpi / 25.4`).
    pub px_per_mm: f64,
    /// Paper speed, mm/s.
    pub speed_mm_s: f64,
    /// ECG gain, mm/mV.
    pub gain_mm_mv: f64,
    /// Size of one page, px.
    pub page_width_px: u32,
    /// Size of one page, px.
    pub page_height_px: u32,
    /// The most time one page holds, ms.
    pub page_ms: i64,
    /// Width of the calibration pulse (200 ms at the paper speed), px.
    pub cal_width_px: i32,
    /// Height of the calibration pulse (1 mV at the gain), px.
    pub cal_height_px: i32,
    /// The pages, in order: for each stretch of time, each group of traces that fits on a page
    /// (one group unless there are more bands than a page holds).
    pub pages: Vec<PageLayout>,
}

/// One page of a strip.
#[derive(Debug, Clone, PartialEq)]
pub struct PageLayout {
    /// The time drawn on this page, `[from_ms, to_ms)`.
    pub from_ms: i64,
    /// End of the time drawn on this page (exclusive).
    pub to_ms: i64,
    /// The page's top row in the stacked bitmap.
    pub top_px: u32,
    /// The column where `from_ms` is drawn: a sample at `t` is at
    /// `x0_px + (t − from_ms) / 1000 × speed × px_per_mm` (rounded).
    pub x0_px: i32,
    /// The grid's left edge (it starts before `x0_px`, under the calibration pulse).
    pub grid_left_px: i32,
    /// The grid's right edge.
    pub grid_right_px: i32,
    /// The column of the calibration pulse's rising edge (ECG bands).
    pub cal_x_px: i32,
    /// The bands, top to bottom.
    pub bands: Vec<BandLayout>,
}

/// One trace's band on a page.
#[derive(Debug, Clone, PartialEq)]
pub struct BandLayout {
    /// Index of the trace in [`StripDoc::traces`].
    pub trace: usize,
    /// The trace's label.
    pub label: String,
    /// ECG (at the gain) or scaled to the band.
    pub kind: TraceKind,
    /// Row of 0 mV (ECG) or the band's middle (scaled); the grid's rows are whole
    /// millimetres from it.
    pub baseline_px: i32,
    /// The band's top row: values above are clipped to it.
    pub top_px: i32,
    /// The band's bottom row: values below are clipped to it.
    pub bottom_px: i32,
}

impl StripLayout {
    /// The exact (unrounded) column of time `t_ms` on page `page`.
    pub fn x_of(&self, page: &PageLayout, t_ms: f64) -> f64 {
        f64::from(page.x0_px)
            + (t_ms - page.from_ms as f64) / 1000.0 * self.speed_mm_s * self.px_per_mm
    }

    /// The exact (unrounded) row of `mv` on an ECG band, from the page's top.
    pub fn y_of_mv(&self, band: &BandLayout, mv: f64) -> f64 {
        f64::from(band.baseline_px) - mv * self.gain_mm_mv * self.px_per_mm
    }

    /// The first page showing time `t_ms` (and the trace `trace`, when given).
    pub fn page_at(&self, t_ms: i64, trace: Option<usize>) -> Option<&PageLayout> {
        self.pages.iter().find(|p| {
            p.from_ms <= t_ms
                && t_ms < p.to_ms
                && trace.is_none_or(|i| p.bands.iter().any(|b| b.trace == i))
        })
    }
}

/// Checks the window and the paper.
fn check(doc: &StripDoc, paper: &Paper) -> Result<(), ReportError> {
    if doc.to_ms <= doc.from_ms {
        return Err(ReportError::EmptyWindow {
            from_ms: doc.from_ms,
            to_ms: doc.to_ms,
        });
    }
    let ms = doc.to_ms - doc.from_ms;
    if ms > MAX_STRIP_MS {
        return Err(ReportError::WindowTooLong {
            ms,
            max_ms: MAX_STRIP_MS,
        });
    }
    output::check_dpi(paper.dpi)?;
    if !(paper.speed_mm_s.is_finite() && (5.0..=100.0).contains(&paper.speed_mm_s)) {
        return Err(ReportError::InvalidPaper(format!(
            "speed {} mm/s is outside 5–100 mm/s",
            paper.speed_mm_s
        )));
    }
    if !(paper.gain_mm_mv.is_finite() && (2.5..=40.0).contains(&paper.gain_mm_mv)) {
        return Err(ReportError::InvalidPaper(format!(
            "gain {} mm/mV is outside 2.5–40 mm/mV",
            paper.gain_mm_mv
        )));
    }
    Ok(())
}

/// Height of a band, mm: an ECG band shows ±1.5 mV at 10 mm/mV and always has room for the
/// calibration pulse; whole multiples of 5 mm so that bands stack on one continuous grid.
fn band_mm(kind: TraceKind, gain_mm_mv: f64) -> f64 {
    match kind {
        TraceKind::Ecg => ECG_BAND_MM.max((2.0 * (gain_mm_mv + 5.0) / 5.0).ceil() * 5.0),
        TraceKind::Scaled => SCALED_BAND_MM,
    }
}

/// Width of the calibration area before the page's `from_ms` (whole mm): the pulse and some
/// room on both sides.
fn cal_area_mm(speed_mm_s: f64) -> f64 {
    (0.2 * speed_mm_s + 5.0).ceil().max(10.0)
}

/// The geometry of a strip's PNG: pages, bands, where each sample lands. See [`StripLayout`].
pub fn strip_layout(doc: &StripDoc, paper: &Paper) -> Result<StripLayout, ReportError> {
    check(doc, paper)?;
    layout_at(doc, paper, paper.dpi)
}

fn layout_at(doc: &StripDoc, paper: &Paper, dpi: f64) -> Result<StripLayout, ReportError> {
    let ppm = dpi / 25.4;
    let px = |mm: f64| (mm * ppm).round() as i32;
    let (page_w, page_h) = page_px(dpi);
    let cal_mm = cal_area_mm(paper.speed_mm_s);
    let x0_mm = MARGIN_MM + GUTTER_MM.max(MIN_LABEL_MM + cal_mm);
    let usable_mm = A4_WIDTH_MM - MARGIN_MM - x0_mm;
    let page_ms = ((usable_mm / paper.speed_mm_s * 1000.0).floor() as i64).min(MAX_PAGE_MS);
    if page_ms <= 0 {
        return Err(ReportError::Layout("no room for any time on a page".into()));
    }

    // Groups of traces that fit on one page (the first page's room, the smallest).
    let room = BANDS_BOTTOM_MM - BANDS_TOP_FIRST_MM;
    let mut groups: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = 0.0;
    for (i, trace) in doc.traces.iter().enumerate() {
        let h = band_mm(trace.kind, paper.gain_mm_mv);
        if h > room {
            return Err(ReportError::Layout(format!(
                "a {h} mm band does not fit on a page"
            )));
        }
        if used + h > room {
            groups.push(Vec::new());
            used = 0.0;
        }
        used += h;
        if let Some(g) = groups.last_mut() {
            g.push(i);
        }
    }

    let x0 = px(x0_mm);
    let mut pages = Vec::new();
    let mut from = doc.from_ms;
    while from < doc.to_ms {
        let to = (from + page_ms).min(doc.to_ms);
        for group in &groups {
            let first = pages.is_empty();
            let mut top_mm = if first {
                BANDS_TOP_FIRST_MM
            } else {
                BANDS_TOP_LATER_MM
            };
            let mut bands = Vec::new();
            for &i in group {
                let trace = &doc.traces[i];
                let h = band_mm(trace.kind, paper.gain_mm_mv);
                bands.push(BandLayout {
                    trace: i,
                    label: trace.label.clone(),
                    kind: trace.kind,
                    baseline_px: px(top_mm + h / 2.0),
                    top_px: px(top_mm),
                    bottom_px: px(top_mm + h),
                });
                top_mm += h;
            }
            pages.push(PageLayout {
                from_ms: from,
                to_ms: to,
                top_px: page_h * pages.len() as u32,
                x0_px: x0,
                grid_left_px: x0 - px(cal_mm),
                grid_right_px: x0 + px(usable_mm),
                cal_x_px: x0 - px(cal_mm - 2.5),
                bands,
            });
        }
        from = to;
    }
    Ok(StripLayout {
        px_per_mm: ppm,
        speed_mm_s: paper.speed_mm_s,
        gain_mm_mv: paper.gain_mm_mv,
        page_width_px: page_w,
        page_height_px: page_h,
        page_ms,
        cal_width_px: px(0.2 * paper.speed_mm_s),
        cal_height_px: px(paper.gain_mm_mv),
        pages,
    })
}

/// Renders an alarm strip. PNG at [`Paper::dpi`]; SVG and PDF true-size.
pub fn strip(doc: &StripDoc, paper: &Paper, format: Format) -> Result<Document, ReportError> {
    check(doc, paper)?;
    let pages = StripPages {
        doc,
        paper,
        count: layout_at(doc, paper, paper.dpi)?.pages.len(),
    };
    output::render(&pages, format, paper.dpi)
}

struct StripPages<'a> {
    doc: &'a StripDoc,
    paper: &'a Paper,
    count: usize,
}

impl Pages for StripPages<'_> {
    fn count(&self) -> usize {
        self.count
    }

    fn draw<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        index: usize,
    ) -> Result<(), ReportError> {
        let layout = layout_at(self.doc, self.paper, c.ppm * 25.4)?;
        let Some(page) = layout.pages.get(index) else {
            return Err(ReportError::Layout(format!("no page {index}")));
        };
        if index == 0 {
            self.header(c)?;
        } else {
            self.short_header(c)?;
        }
        let bands_top = page.bands.first().map_or(
            c.px(if index == 0 {
                BANDS_TOP_FIRST_MM
            } else {
                BANDS_TOP_LATER_MM
            }),
            |b| b.top_px,
        );
        let bands_bottom = page
            .bands
            .last()
            .map_or(bands_top + c.px(30.0), |b| b.bottom_px);
        for band in &page.bands {
            grid(c, page, band.baseline_px, band.top_px, band.bottom_px)?;
        }
        if page.bands.is_empty() {
            grid(c, page, bands_top + c.px(15.0), bands_top, bands_bottom)?;
            let msg = "No waveform data in this window";
            let mid = (page.x0_px + page.grid_right_px) / 2;
            c.text(
                msg,
                (mid, bands_top + c.px(12.0)),
                Font::new(4.0).color(GREY),
                Align::Center,
            )?;
        }
        for band in &page.bands {
            let trace = &self.doc.traces[band.trace];
            self.band(c, &layout, page, band, trace)?;
        }
        self.onset(c, &layout, page, bands_top, bands_bottom)?;
        self.time_labels(c, &layout, page, bands_bottom)?;
        c.footer(
            &self.doc.printed.by,
            &text::time(self.doc.printed.at_ms, self.doc.printed.tz),
        )
    }
}

/// The paper's grid under one band: lines every mm from the page's x0 and from the band's
/// baseline, every fifth one major (thicker, darker).
fn grid<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    page: &PageLayout,
    baseline: i32,
    top: i32,
    bottom: i32,
) -> Result<(), ReportError> {
    let ppm = c.ppm;
    let column = |k: i64| page.x0_px + (k as f64 * ppm).round() as i32;
    let row = |k: i64| baseline + (k as f64 * ppm).round() as i32;
    let k_left = -(((page.x0_px - page.grid_left_px) as f64 / ppm).round() as i64);
    let k_right = ((page.grid_right_px - page.x0_px) as f64 / ppm).round() as i64;
    let k_up = -(((baseline - top) as f64 / ppm).round() as i64);
    let k_down = ((bottom - baseline) as f64 / ppm).round() as i64;
    let (left, right) = (column(k_left), column(k_right));
    let major_w = c.width(0.2) as i32;
    for major in [false, true] {
        for k in k_left..=k_right {
            if (k % 5 == 0) == major {
                let x = column(k);
                if major {
                    c.rect((x, top), (x + major_w - 1, bottom), MAJOR, true)?;
                } else {
                    c.line(vec![(x, top), (x, bottom)], MINOR, 1)?;
                }
            }
        }
        for k in k_up..=k_down {
            if (k % 5 == 0) == major {
                let y = row(k);
                if major {
                    c.rect(
                        (left, y),
                        (right + major_w - 1, y + major_w - 1),
                        MAJOR,
                        true,
                    )?;
                } else {
                    c.line(vec![(left, y), (right, y)], MINOR, 1)?;
                }
            }
        }
    }
    Ok(())
}

/// A run of samples drawn without lifting the pen: `(t_ms, value)`.
type Run = Vec<(f64, f64)>;

/// The runs of a trace on `[from, to)`: stretches cut at gaps, at values that are not numbers
/// and at the page's edges. With each run, the stretch's (min, max) for scaled traces.
fn runs(trace: &Trace, from: i64, to: i64) -> Vec<(Run, (f64, f64))> {
    let in_gap = |t: f64| {
        trace
            .gaps
            .iter()
            .any(|g| t >= g[0] as f64 && t <= g[1] as f64)
    };
    let mut out = Vec::new();
    for stretch in &trace.stretches {
        if !(stretch.rate.is_finite() && stretch.rate > 0.0) {
            continue;
        }
        let finite = stretch.values.iter().copied().filter(|v| v.is_finite());
        let range = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let period = 1000.0 / stretch.rate;
        let mut run: Run = Vec::new();
        for (i, &v) in stretch.values.iter().enumerate() {
            let t = stretch.t0_ms + i as f64 * period;
            let keep = v.is_finite() && t >= from as f64 && t < to as f64 && !in_gap(t);
            if keep {
                run.push((t, v));
            } else if !run.is_empty() {
                out.push((std::mem::take(&mut run), range));
            }
        }
        if !run.is_empty() {
            out.push((run, range));
        }
    }
    out
}

impl StripDoc {
    fn speed_gain(&self, paper: &Paper) -> String {
        let _ = self;
        format!(
            "{} mm/s · {} mm/mV",
            trim_num(paper.speed_mm_s),
            trim_num(paper.gain_mm_mv)
        )
    }
}

/// A number without a useless ".0".
fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

impl StripPages<'_> {
    fn header<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ReportError> {
        let d = self.doc;
        let tz = d.printed.tz;
        let left = c.px(MARGIN_MM);
        let right = c.px(A4_WIDTH_MM - MARGIN_MM);
        let line = |i: f64| c.px(MARGIN_MM + i * 4.5);
        let title = Font::new(3.4).bold();
        let body = Font::new(3.0);
        let prio = Font::new(3.4)
            .bold()
            .color(text::priority_color(&d.priority));

        // 1: bed, alarm, priority; speed and gain on the right.
        let sg = d.speed_gain(self.paper);
        let sg_w = c.text_width(&sg, title)?;
        c.text(&sg, (right, line(0.0)), title, Align::Right)?;
        let prio_text = format!(" · {} priority", d.priority.to_uppercase());
        let room = right - left - sg_w - c.px(5.0) - c.text_width(&prio_text, prio)?;
        let head = c.fit(
            &format!("Alarm strip · {} · {}", d.bed, d.alarm),
            title,
            room,
        )?;
        c.runs(&[(&head, title), (&prio_text, prio)], (left, line(0.0)))?;

        // 2: patient; onset on the right.
        let onset = format!("Onset {}", text::time(d.onset_ms, tz));
        let onset_w = c.text_width(&onset, body.bold())?;
        c.text(&onset, (right, line(1.0)), body.bold(), Align::Right)?;
        let patient = c.fit(
            &text::patient(d.patient.as_ref()),
            body,
            right - left - onset_w - c.px(5.0),
        )?;
        c.text(&patient, (left, line(1.0)), body, Align::Left)?;

        // 3: outcome; the window on the right.
        // The resolution it was drawn at: what makes 25 mm/s true on paper (print at 100 %).
        let window = format!(
            "Strip {} to {} ({}) · {} dpi, print at 100 %",
            text::time(d.from_ms, tz),
            text::format_ms(d.to_ms, tz, "%H:%M:%S"),
            text::duration(d.to_ms - d.from_ms),
            trim_num((c.ppm * 25.4 * 100.0).round() / 100.0)
        );
        let window_w = c.text_width(&window, body)?;
        c.text(&window, (right, line(2.0)), body, Align::Right)?;
        let outcome = c.fit(
            &format!("Outcome: {}", d.outcome),
            body,
            right - left - window_w - c.px(5.0),
        )?;
        c.text(&outcome, (left, line(2.0)), body, Align::Left)?;

        // 4: numerics at onset, then the reason.
        let numerics = if d.numerics.is_empty() {
            "none".to_string()
        } else {
            d.numerics
                .iter()
                .map(|n| format!("{} {}", n.label, n.value))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        let line4 = format!("At onset: {numerics}   Reason: {}", d.reason);
        let line4 = c.fit(&line4, body, right - left)?;
        c.text(&line4, (left, line(3.0)), body, Align::Left)
    }

    fn short_header<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ReportError> {
        let d = self.doc;
        let left = c.px(MARGIN_MM);
        let right = c.px(A4_WIDTH_MM - MARGIN_MM);
        let font = Font::new(3.2).bold();
        let y = c.px(MARGIN_MM);
        let tail = format!(
            "{} · page {} of {}",
            d.speed_gain(self.paper),
            c.index + 1,
            c.count
        );
        let tail_w = c.text_width(&tail, font)?;
        c.text(&tail, (right, y), font, Align::Right)?;
        let head = format!(
            "{} · {} · onset {}",
            d.bed,
            d.alarm,
            text::time(d.onset_ms, d.printed.tz)
        );
        let head = c.fit(&head, font, right - left - tail_w - c.px(5.0))?;
        c.text(&head, (left, y), font, Align::Left)
    }

    /// One trace: its label, its calibration pulse (ECG), its runs, its gaps marked.
    fn band<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        layout: &StripLayout,
        page: &PageLayout,
        band: &BandLayout,
        trace: &Trace,
    ) -> Result<(), ReportError> {
        let left = c.px(MARGIN_MM);
        let label_room = page.grid_left_px - left - c.px(1.0);
        let label = c.fit(&trace.label, Font::new(3.6).bold(), label_room)?;
        c.text(
            &label,
            (left, band.top_px + c.px(2.0)),
            Font::new(3.6).bold(),
            Align::Left,
        )?;
        let note = match trace.kind {
            TraceKind::Ecg => trace.unit.clone(),
            TraceKind::Scaled => "scaled".to_string(),
        };
        let note = c.fit(&note, Font::new(2.6).color(GREY), label_room)?;
        c.text(
            &note,
            (left, band.top_px + c.px(7.0)),
            Font::new(2.6).color(GREY),
            Align::Left,
        )?;

        let clamp = |y: f64| (y.round() as i32).clamp(band.top_px, band.bottom_px);
        let runs = runs(trace, page.from_ms, page.to_ms);
        if trace.kind == TraceKind::Ecg {
            let base = band.baseline_px;
            let x = page.cal_x_px;
            let (w, h) = (layout.cal_width_px, layout.cal_height_px);
            let pulse = [
                (page.grid_left_px + c.px(1.0), base),
                (x, base),
                (x, base - h),
                (x + w, base - h),
                (x + w, base),
                (page.x0_px - c.px(1.5), base),
            ];
            c.pen(&pulse, INK, TRACE_MM)?;
        }

        // Where there is signal, to mark the rest.
        let mut covered: Vec<(f64, f64)> = Vec::new();
        for (run, (lo, hi)) in &runs {
            let points: Vec<(i32, i32)> = run
                .iter()
                .map(|&(t, v)| {
                    let x = layout.x_of(page, t).round() as i32;
                    let y = match band.kind {
                        TraceKind::Ecg => layout.y_of_mv(band, v),
                        TraceKind::Scaled => scaled_y(band, c.px(1.5), v, *lo, *hi),
                    };
                    (x, clamp(y))
                })
                .collect();
            if points.len() == 1 {
                let p = points[0];
                c.pen(&[p, (p.0 + 1, p.1)], INK, TRACE_MM)?;
            } else {
                c.pen(&points, INK, TRACE_MM)?;
            }
            if let (Some(first), Some(last)) = (run.first(), run.last()) {
                let step = if run.len() > 1 {
                    (last.0 - first.0) / (run.len() - 1) as f64
                } else {
                    1.0
                };
                covered.push((first.0, last.0 + step));
            }
        }
        covered.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut holes = Vec::new();
        let mut at = page.from_ms as f64;
        for (a, b) in covered {
            if a > at {
                holes.push((at, a));
            }
            at = at.max(b);
        }
        if at < page.to_ms as f64 {
            holes.push((at, page.to_ms as f64));
        }
        for (a, b) in holes {
            let xa = layout.x_of(page, a).round() as i32;
            let xb = layout.x_of(page, b).round() as i32;
            if xb - xa < c.px(1.0) {
                continue;
            }
            // A light fill over the band (under nothing: no pen passed there).
            c.rect(
                (xa + 1, band.top_px + 1),
                (xb - 1, band.bottom_px - 1),
                NO_SIGNAL,
                true,
            )?;
            let font = Font::new(2.6).color(GREY);
            if xb - xa > c.text_width("no signal", font)? + c.px(2.0) {
                c.text(
                    "no signal",
                    ((xa + xb) / 2, band.baseline_px - c.px(1.3)),
                    font,
                    Align::Center,
                )?;
            }
        }
        Ok(())
    }

    /// The onset line across the bands, labelled.
    fn onset<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        layout: &StripLayout,
        page: &PageLayout,
        top: i32,
        bottom: i32,
    ) -> Result<(), ReportError> {
        let t = self.doc.onset_ms;
        if t < page.from_ms || t >= page.to_ms {
            return Ok(());
        }
        let x = layout.x_of(page, t as f64).round() as i32;
        c.line(
            vec![(x, top - c.px(3.0)), (x, bottom)],
            ONSET,
            c.width(0.15),
        )?;
        c.text(
            "onset",
            (x + c.px(0.8), top - c.px(3.0)),
            Font::new(2.6).bold().color(ONSET),
            Align::Left,
        )
    }

    /// Seconds from onset under the bands.
    fn time_labels<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        layout: &StripLayout,
        page: &PageLayout,
        bottom: i32,
    ) -> Result<(), ReportError> {
        let onset = self.doc.onset_ms;
        // The smallest step that leaves 12 mm between labels.
        let step_s = [1, 2, 5, 10, 20]
            .into_iter()
            .find(|s| f64::from(*s) * layout.speed_mm_s >= 12.0)
            .unwrap_or(30);
        let step = i64::from(step_s) * 1000;
        let first = onset + (page.from_ms - onset).div_euclid(step) * step;
        let font = Font::new(2.6);
        let mut t = first;
        while t < page.to_ms {
            if t >= page.from_ms {
                let x = layout.x_of(page, t as f64).round() as i32;
                let s = (t - onset) / 1000;
                let label = match s {
                    0 => "0".to_string(),
                    s if s > 0 => format!("+{s} s"),
                    s => format!("{s} s"),
                };
                let font = if s == 0 {
                    font.bold().color(ONSET)
                } else {
                    font
                };
                c.line(vec![(x, bottom), (x, bottom + c.px(1.0))], INK, 1)?;
                c.text(&label, (x, bottom + c.px(1.3)), font, Align::Center)?;
            }
            t += step;
        }
        Ok(())
    }
}

/// The row of a scaled value: the stretch's min at the band's bottom, its max at the top
/// (`inset` pixels inside the band); a flat stretch in the middle.
fn scaled_y(band: &BandLayout, inset: i32, v: f64, lo: f64, hi: f64) -> f64 {
    let top = f64::from(band.top_px + inset);
    let bottom = f64::from(band.bottom_px - inset);
    if hi > lo {
        bottom - (v - lo) / (hi - lo) * (bottom - top)
    } else {
        f64::from(band.baseline_px)
    }
}
