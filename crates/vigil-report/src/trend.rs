//! The trend report: charts of the vitals over a period on the first page (a shared time axis,
//! alarm onsets across all charts), then the trend table, paginated.

use chrono::{Datelike, TimeZone, Timelike};
use chrono_tz::Tz;
use plotters::prelude::*;

use crate::canvas::{Align, Canvas, Font, GREY, INK};
use crate::output::{self, Pages};
use crate::text;
use crate::{
    Cuff, Document, Format, ReportError, Series, TrendDoc, A4_HEIGHT_MM, A4_WIDTH_MM, MARGIN_MM,
};

/// Rows of the trend table on one page (the column header is repeated on every page).
pub const TABLE_ROWS_PER_PAGE: usize = 34;
/// Where the table's rows start and how tall they are, mm.
const TABLE_TOP_MM: f64 = 25.0;
const ROW_MM: f64 = 5.0;
/// The charts' plot area, mm.
const PLOT_LEFT_MM: f64 = MARGIN_MM + 26.0;
const PLOT_RIGHT_MM: f64 = A4_WIDTH_MM - MARGIN_MM - 2.0;
const CHARTS_TOP_MM: f64 = 24.0;
const CHARTS_BOTTOM_MM: f64 = A4_HEIGHT_MM - MARGIN_MM - 13.0;
const CHART_GAP_MM: f64 = 2.5;
/// Chart colours.
const HR: RGBColor = RGBColor(0, 135, 60);
const PR: RGBColor = RGBColor(150, 0, 170);
const SPO2: RGBColor = RGBColor(0, 90, 200);
const RR: RGBColor = RGBColor(150, 100, 0);
const NIBP: RGBColor = RGBColor(200, 0, 0);
const TEMP: RGBColor = RGBColor(215, 90, 0);
const NEWS2: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);

/// Renders a trend report: the charts page, then the table pages. PNG at `dpi`.
pub fn trend(doc: &TrendDoc, format: Format, dpi: f64) -> Result<Document, ReportError> {
    if doc.to_ms <= doc.from_ms {
        return Err(ReportError::EmptyPeriod {
            from_ms: doc.from_ms,
            to_ms: doc.to_ms,
        });
    }
    let table_pages = doc.table.rows.len().div_ceil(TABLE_ROWS_PER_PAGE).max(1);
    let pages = TrendPages {
        doc,
        count: 1 + table_pages,
    };
    output::render(&pages, format, dpi)
}

struct TrendPages<'a> {
    doc: &'a TrendDoc,
    count: usize,
}

impl Pages for TrendPages<'_> {
    fn count(&self) -> usize {
        self.count
    }

    fn draw<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        index: usize,
    ) -> Result<(), ReportError> {
        self.header(c, index)?;
        if index == 0 {
            self.charts(c)?;
        } else {
            self.table(c, index - 1)?;
        }
        c.footer(
            &self.doc.printed.by,
            &text::time(self.doc.printed.at_ms, self.doc.printed.tz),
        )
    }
}

/// What a chart shows.
enum Plot<'a> {
    /// Lines, broken at holes; `step` draws a step line with points.
    Lines(Vec<(&'a Series, RGBColor)>, bool),
    /// NIBP cuffs.
    Cuffs(&'a [Cuff]),
}

/// A chart's place on the page and its vertical scale.
struct Frame {
    left: i32,
    right: i32,
    top: i32,
    bottom: i32,
    from: i64,
    to: i64,
    lo: f64,
    hi: f64,
}

impl Frame {
    fn x(&self, t: i64) -> i32 {
        let f = (t - self.from) as f64 / (self.to - self.from) as f64;
        self.left + (f * f64::from(self.right - self.left)).round() as i32
    }
    fn y(&self, v: f64) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        let y = f64::from(self.bottom) - f * f64::from(self.bottom - self.top);
        (y.round() as i32).clamp(self.top, self.bottom)
    }
}

impl TrendPages<'_> {
    fn header<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        index: usize,
    ) -> Result<(), ReportError> {
        let d = self.doc;
        let tz = d.printed.tz;
        let left = c.px(MARGIN_MM);
        let right = c.px(A4_WIDTH_MM - MARGIN_MM);
        let title = Font::new(3.6).bold();
        let body = Font::new(3.0);
        let period = format!(
            "{} to {} ({})",
            text::time(d.from_ms, tz),
            text::time(d.to_ms, tz),
            text::duration(d.to_ms - d.from_ms)
        );
        let period_w = c.text_width(&period, body.bold())?;
        c.text(&period, (right, c.px(MARGIN_MM)), body.bold(), Align::Right)?;
        let what = if index == 0 {
            "Trend report"
        } else {
            "Trend table"
        };
        let head = c.fit(
            &format!("{what} · {}", d.bed),
            title,
            right - left - period_w - c.px(5.0),
        )?;
        c.text(&head, (left, c.px(MARGIN_MM)), title, Align::Left)?;
        let y2 = c.px(MARGIN_MM + 5.0);
        let patient = text::patient(d.patient.as_ref());
        if index == 0 {
            let onsets = Font::new(2.8);
            let runs = [
                ("Alarm onsets: ", onsets.color(GREY)),
                (
                    "| high  ",
                    onsets.bold().color(text::priority_color("high")),
                ),
                (
                    "| medium  ",
                    onsets.bold().color(text::priority_color("medium")),
                ),
                ("| low", onsets.bold().color(text::priority_color("low"))),
            ];
            let mut w = 0;
            for (s, f) in &runs {
                w += c.text_width(s, *f)?;
            }
            c.runs(&runs, (right - w, y2))?;
            let patient = c.fit(&patient, body, right - left - w - c.px(5.0))?;
            c.text(&patient, (left, y2), body, Align::Left)
        } else {
            let every = format!("one row every {}", text::duration(d.table.interval_ms));
            let every_w = c.text_width(&every, body)?;
            c.text(&every, (right, y2), body, Align::Right)?;
            let patient = c.fit(&patient, body, right - left - every_w - c.px(5.0))?;
            c.text(&patient, (left, y2), body, Align::Left)
        }
    }

    fn charts<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ReportError> {
        let d = self.doc;
        let charts: [(&str, &str, (f64, f64), Plot<'_>); 6] = [
            (
                "HR / PR",
                "/min",
                (40.0, 160.0),
                Plot::Lines(vec![(&d.hr, HR), (&d.pr, PR)], false),
            ),
            (
                "SpO2",
                "%",
                (85.0, 100.0),
                Plot::Lines(vec![(&d.spo2, SPO2)], false),
            ),
            (
                "RR",
                "/min",
                (0.0, 40.0),
                Plot::Lines(vec![(&d.rr, RR)], false),
            ),
            ("NIBP", "mmHg", (40.0, 200.0), Plot::Cuffs(&d.cuffs)),
            (
                "Temp",
                "°C",
                (35.0, 40.0),
                Plot::Lines(vec![(&d.temp, TEMP)], false),
            ),
            (
                "NEWS2",
                "score",
                (0.0, 20.0),
                Plot::Lines(vec![(&d.news2, NEWS2)], true),
            ),
        ];
        let n = charts.len() as f64;
        let h = (CHARTS_BOTTOM_MM - CHARTS_TOP_MM - (n - 1.0) * CHART_GAP_MM) / n;
        let ticks = time_ticks(d.from_ms, d.to_ms, d.printed.tz);
        let mut last_bottom = 0;
        for (i, (name, unit, default, plot)) in charts.iter().enumerate() {
            let top_mm = CHARTS_TOP_MM + i as f64 * (h + CHART_GAP_MM);
            let values: Vec<f64> = match plot {
                Plot::Lines(series, _) => series
                    .iter()
                    .flat_map(|(s, _)| s.points.iter().map(|p| p.1))
                    .collect(),
                Plot::Cuffs(cuffs) => cuffs
                    .iter()
                    .flat_map(|k| [k.sys, k.dia, k.mean])
                    .flatten()
                    .collect(),
            };
            let fixed = *name == "NEWS2";
            let (lo, hi, step) = y_scale(*default, &values, fixed);
            let frame = Frame {
                left: c.px(PLOT_LEFT_MM),
                right: c.px(PLOT_RIGHT_MM),
                top: c.px(top_mm),
                bottom: c.px(top_mm + h),
                from: d.from_ms,
                to: d.to_ms,
                lo,
                hi,
            };
            last_bottom = frame.bottom;
            self.chart(c, &frame, name, unit, step, &ticks, plot, values.is_empty())?;
        }
        // Time labels under the last chart.
        let font = Font::new(2.6);
        let frame_x = |t: i64| {
            let f = (t - d.from_ms) as f64 / (d.to_ms - d.from_ms) as f64;
            c.px(PLOT_LEFT_MM)
                + (f * f64::from(c.px(PLOT_RIGHT_MM) - c.px(PLOT_LEFT_MM))).round() as i32
        };
        for (t, label, date) in &ticks {
            let x = frame_x(*t);
            c.line(vec![(x, last_bottom), (x, last_bottom + c.px(1.0))], INK, 1)?;
            c.text(label, (x, last_bottom + c.px(1.4)), font, Align::Center)?;
            if let Some(date) = date {
                c.text(
                    date,
                    (x, last_bottom + c.px(4.6)),
                    font.color(GREY),
                    Align::Center,
                )?;
            }
        }
        let zone = text::format_ms(d.to_ms, d.printed.tz, "%Z");
        c.text(
            &format!("time ({zone})"),
            (c.px(MARGIN_MM), last_bottom + c.px(1.4)),
            font.color(GREY),
            Align::Left,
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn chart<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        f: &Frame,
        name: &str,
        unit: &str,
        step: f64,
        ticks: &[(i64, String, Option<String>)],
        plot: &Plot<'_>,
        empty: bool,
    ) -> Result<(), ReportError> {
        // Grid: value ticks and time ticks.
        let decimals = if step < 1.0 { 1 } else { 0 };
        let mut v = f.lo;
        while v <= f.hi + step * 1e-6 {
            let y = f.y(v);
            c.line(vec![(f.left, y), (f.right, y)], GRID, 1)?;
            c.text(
                &format!("{v:.decimals$}"),
                (f.left - c.px(1.0), y - c.px(1.2)),
                Font::new(2.4).color(GREY),
                Align::Right,
            )?;
            v += step;
        }
        for (t, _, _) in ticks {
            let x = f.x(*t);
            c.line(vec![(x, f.top), (x, f.bottom)], GRID, 1)?;
        }
        // Name and unit on the left.
        let left = c.px(MARGIN_MM);
        match plot {
            Plot::Lines(series, _) if series.len() > 1 => {
                let font = Font::new(3.0).bold();
                let x = c.runs(
                    &[(&series[0].0.label, font.color(series[0].1))],
                    (left, f.top),
                )?;
                let x = c.runs(&[(" / ", font)], (x, f.top))?;
                c.runs(&[(&series[1].0.label, font.color(series[1].1))], (x, f.top))?;
            }
            _ => {
                c.text(name, (left, f.top), Font::new(3.0).bold(), Align::Left)?;
            }
        }
        c.text(
            unit,
            (left, f.top + c.px(4.0)),
            Font::new(2.6).color(GREY),
            Align::Left,
        )?;

        // Alarm onsets across the chart, under the data.
        for onset in &self.doc.onsets {
            if onset.t_ms >= f.from && onset.t_ms <= f.to {
                let x = f.x(onset.t_ms);
                c.line(
                    vec![(x, f.top), (x, f.bottom)],
                    text::priority_color(&onset.priority),
                    c.width(0.25),
                )?;
            }
        }

        if empty {
            c.text(
                "no data",
                ((f.left + f.right) / 2, (f.top + f.bottom) / 2 - c.px(1.5)),
                Font::new(3.0).color(GREY),
                Align::Center,
            )?;
        }
        match plot {
            Plot::Lines(series, step_line) => {
                // The first series (HR) drawn last, on top.
                for (s, color) in series.iter().rev() {
                    for run in runs(&s.points, f.from, f.to) {
                        let mut pts: Vec<(i32, i32)> = Vec::with_capacity(run.len() * 2);
                        for &(t, v) in &run {
                            let p = (f.x(t), f.y(v));
                            if *step_line {
                                if let Some(&(_, y)) = pts.last() {
                                    pts.push((p.0, y));
                                }
                            }
                            pts.push(p);
                        }
                        if pts.len() == 1 || *step_line {
                            let r = c.px(0.5);
                            for &(x, y) in &pts {
                                c.rect((x - r, y - r), (x + r, y + r), *color, true)?;
                            }
                        }
                        c.line(pts, *color, c.width(0.25))?;
                    }
                }
            }
            Plot::Cuffs(cuffs) => {
                let w = c.width(0.5);
                let tick = c.px(1.0);
                for k in cuffs.iter().filter(|k| k.t_ms >= f.from && k.t_ms <= f.to) {
                    let x = f.x(k.t_ms);
                    if let (Some(sys), Some(dia)) = (k.sys, k.dia) {
                        c.line(vec![(x, f.y(dia)), (x, f.y(sys))], NIBP, w)?;
                    }
                    for v in [k.sys, k.dia].into_iter().flatten() {
                        c.line(
                            vec![(x - tick, f.y(v)), (x + tick, f.y(v))],
                            NIBP,
                            c.width(0.2),
                        )?;
                    }
                    if let Some(mean) = k.mean {
                        let y = f.y(mean);
                        c.line(vec![(x - tick, y), (x + tick, y)], INK, c.width(0.3))?;
                    }
                }
            }
        }
        c.rect((f.left, f.top), (f.right, f.bottom), GREY, false)
    }

    fn table<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        page: usize,
    ) -> Result<(), ReportError> {
        let t = &self.doc.table;
        let tz = self.doc.printed.tz;
        let left = c.px(MARGIN_MM);
        let right = c.px(A4_WIDTH_MM - MARGIN_MM);
        let time_w = c.px(44.0);
        let n = t.columns.len().max(1) as i32;
        let col_w = ((right - left - time_w) / n).min(c.px(32.0));
        let head = Font::new(3.0).bold();
        let body = Font::new(2.9);
        let y_head = c.px(TABLE_TOP_MM - ROW_MM - 0.5);
        c.text("Time", (left + c.px(1.0), y_head), head, Align::Left)?;
        for (i, name) in t.columns.iter().enumerate() {
            let x = left + time_w + i as i32 * col_w;
            let name = c.fit(name, head, col_w - c.px(2.0))?;
            c.text(&name, (x + col_w - c.px(1.0), y_head), head, Align::Right)?;
        }
        let line_y = c.px(TABLE_TOP_MM - 0.5);
        let table_right = left + time_w + n * col_w;
        c.line(
            vec![(left, line_y), (table_right, line_y)],
            INK,
            c.width(0.25),
        )?;
        let rows = t
            .rows
            .iter()
            .skip(page * TABLE_ROWS_PER_PAGE)
            .take(TABLE_ROWS_PER_PAGE);
        if t.rows.is_empty() {
            c.text(
                "no data",
                (left + c.px(1.0), c.px(TABLE_TOP_MM + 1.0)),
                body.color(GREY),
                Align::Left,
            )?;
        }
        for (r, (time, cells)) in rows.enumerate() {
            let top = c.px(TABLE_TOP_MM + r as f64 * ROW_MM);
            if r % 2 == 1 {
                c.rect(
                    (left, top),
                    (table_right, top + c.px(ROW_MM) - 1),
                    RGBColor(243, 243, 243),
                    true,
                )?;
            }
            let y = top + c.px(1.0);
            let when = text::format_ms(*time, tz, "%Y-%m-%d %H:%M %Z");
            c.text(&when, (left + c.px(1.0), y), body, Align::Left)?;
            for (i, cell) in cells.iter().take(t.columns.len()).enumerate() {
                let x = left + time_w + i as i32 * col_w;
                let cell = c.fit(cell, body, col_w - c.px(2.0))?;
                c.text(&cell, (x + col_w - c.px(1.0), y), body, Align::Right)?;
            }
        }
        Ok(())
    }
}

/// The runs of a series on `[from, to]`: a hole longer than three times the median spacing
/// (or a value that is not a number) breaks the line.
fn runs(points: &[(i64, f64)], from: i64, to: i64) -> Vec<Vec<(i64, f64)>> {
    let pts: Vec<(i64, f64)> = points
        .iter()
        .copied()
        .filter(|&(t, v)| t >= from && t <= to && v.is_finite())
        .collect();
    let mut gaps: Vec<i64> = pts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort_unstable();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut prev: Option<i64> = None;
    for p in pts {
        let broken = prev.is_none_or(|t| p.0 - t > 3 * median);
        if broken {
            out.push(Vec::new());
        }
        if let Some(run) = out.last_mut() {
            run.push(p);
        }
        prev = Some(p.0);
    }
    out
}

/// A chart's vertical scale: the default range widened to the data, rounded to a nice step
/// (about four to six grid lines). `fixed` keeps the default (NEWS2 is 0–20).
fn y_scale(default: (f64, f64), values: &[f64], fixed: bool) -> (f64, f64, f64) {
    let (mut lo, mut hi) = default;
    if !fixed {
        for &v in values.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// The time axis: ticks at round local times (every 5 min to 7 days, about 12 at most), each
/// with its label and, at local midnight or on the first tick, the date under it.
fn time_ticks(from: i64, to: i64, tz: Tz) -> Vec<(i64, String, Option<String>)> {
    const MIN: i64 = 60_000;
    let span_min = (to - from) / MIN;
    let step = [
        5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 4320, 10_080,
    ]
    .into_iter()
    .find(|s| span_min / s <= 12)
    .unwrap_or(10_080);
    let mut out = Vec::new();
    let mut t = from.div_euclid(5 * MIN) * 5 * MIN;
    if t < from {
        t += 5 * MIN;
    }
    while t <= to {
        if let Some(local) = tz.timestamp_millis_opt(t).single() {
            let minute_of_day = i64::from(local.hour() * 60 + local.minute());
            let keep = if step < 1440 {
                minute_of_day % step == 0
            } else {
                minute_of_day == 0
                    && i64::from(local.date_naive().num_days_from_ce()) % (step / 1440) == 0
            };
            if keep {
                let (label, date) = if step < 1440 {
                    let date = (out.is_empty() || minute_of_day == 0)
                        .then(|| local.format("%a %d %b").to_string());
                    (local.format("%H:%M").to_string(), date)
                } else {
                    (local.format("%d %b").to_string(), None)
                };
                out.push((t, label, date));
            }
        }
        t += 5 * MIN;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_longer_than_three_median_spacings_breaks_the_line() {
        let pts: Vec<(i64, f64)> = [0, 60, 120, 180, 400, 460]
            .iter()
            .map(|&s| (s * 1000, 1.0))
            .collect();
        let r = runs(&pts, 0, 1_000_000);
        assert_eq!(r.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 2]);
    }

    #[test]
    fn time_ticks_adapt_to_the_period() {
        let tz = chrono_tz::Europe::Berlin;
        let from = 1_796_648_400_000; // 14:00 CET
        let hour = time_ticks(from, from + 3_600_000, tz);
        assert_eq!(hour.first().map(|t| t.1.as_str()), Some("14:00"));
        assert!(hour.len() >= 4 && hour.len() <= 13);
        let month = time_ticks(from, from + 30 * 86_400_000, tz);
        assert!(month.len() >= 4 && month.len() <= 13, "{}", month.len());
        assert!(
            month.iter().all(|t| !t.1.contains(':')),
            "dates for a month"
        );
    }

    #[test]
    fn y_scale_widens_to_the_data() {
        let (lo, hi, step) = y_scale((40.0, 160.0), &[30.0, 190.0], false);
        assert!(lo <= 30.0 && hi >= 190.0 && step > 0.0);
        assert_eq!(y_scale((0.0, 20.0), &[25.0], true), (0.0, 20.0, 5.0));
    }
}
