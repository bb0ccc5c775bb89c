//! The shift handover report: per bed a block (patient, alarm counts, alarms, limit changes,
//! NEWS2 trajectory, remote monitoring), flowing over as many pages as needed.

use plotters::prelude::*;

use crate::canvas::{Align, Canvas, Font, GREY, INK};
use crate::output::{self, Pages};
use crate::text;
use crate::{
    Document, Format, ReportError, ShiftBed, ShiftDoc, A4_HEIGHT_MM, A4_WIDTH_MM, MARGIN_MM,
};

/// Where the blocks start and must end, mm.
const TOP_MM: f64 = MARGIN_MM + 9.0;
const BOTTOM_MM: f64 = A4_HEIGHT_MM - MARGIN_MM - 6.0;
/// Height of one line, mm.
const LINE_MM: f64 = 4.5;

/// One line of a bed's block.
#[derive(Debug, Clone, Copy)]
enum Row {
    /// The bed and its patient; `true` when continued from the previous page.
    Bed(usize, bool),
    Counts(usize),
    Alarm(usize, usize),
    Limits,
    Limit(usize, usize),
    News2(usize),
    Remote(usize, usize),
    Quiet,
    /// Space after a block.
    Space,
}

impl Row {
    fn height_mm(self) -> f64 {
        match self {
            Row::Bed(..) => 6.5,
            Row::News2(_) => 7.0,
            Row::Space => 3.0,
            _ => LINE_MM,
        }
    }
}

/// A bed's block, line by line.
fn block(i: usize, bed: &ShiftBed) -> Vec<Row> {
    let mut rows = vec![Row::Bed(i, false), Row::Counts(i)];
    rows.extend((0..bed.alarms.len()).map(|a| Row::Alarm(i, a)));
    if !bed.limit_changes.is_empty() {
        rows.push(Row::Limits);
        rows.extend((0..bed.limit_changes.len()).map(|l| Row::Limit(i, l)));
    }
    if !bed.news2.is_empty() {
        rows.push(Row::News2(i));
    }
    rows.extend((0..bed.remote.len()).map(|r| Row::Remote(i, r)));
    if bed.alarms.is_empty() && bed.limit_changes.is_empty() && bed.counts == [0, 0, 0] {
        rows.push(Row::Quiet);
    }
    rows.push(Row::Space);
    rows
}

/// The pages: a block goes whole to the next page when it does not fit in what is left but
/// fits on a page; a longer one is split, its bed line repeated ("continued").
fn paginate(doc: &ShiftDoc) -> Vec<Vec<Row>> {
    let room = BOTTOM_MM - TOP_MM;
    let mut pages: Vec<Vec<Row>> = vec![Vec::new()];
    let mut used = 0.0;
    for (i, bed) in doc.beds.iter().enumerate() {
        let rows = block(i, bed);
        let total: f64 = rows.iter().map(|r| r.height_mm()).sum();
        if used > 0.0 && used + total > room && total <= room {
            pages.push(Vec::new());
            used = 0.0;
        }
        for row in rows {
            if used + row.height_mm() > room && !matches!(row, Row::Space) {
                pages.push(vec![Row::Bed(i, true)]);
                used = Row::Bed(i, true).height_mm();
            }
            used += row.height_mm();
            if let Some(page) = pages.last_mut() {
                page.push(row);
            }
        }
    }
    pages
}

/// Renders a shift handover report. PNG at `dpi`.
pub fn shift(doc: &ShiftDoc, format: Format, dpi: f64) -> Result<Document, ReportError> {
    if doc.to_ms <= doc.from_ms {
        return Err(ReportError::EmptyPeriod {
            from_ms: doc.from_ms,
            to_ms: doc.to_ms,
        });
    }
    let pages = ShiftPages {
        doc,
        pages: paginate(doc),
    };
    output::render(&pages, format, dpi)
}

struct ShiftPages<'a> {
    doc: &'a ShiftDoc,
    pages: Vec<Vec<Row>>,
}

impl Pages for ShiftPages<'_> {
    fn count(&self) -> usize {
        self.pages.len()
    }

    fn draw<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        index: usize,
    ) -> Result<(), ReportError> {
        let d = self.doc;
        let tz = d.printed.tz;
        let left = c.px(MARGIN_MM);
        let right = c.px(A4_WIDTH_MM - MARGIN_MM);
        let period = format!(
            "Shift {} to {} ({})",
            text::time(d.from_ms, tz),
            text::time(d.to_ms, tz),
            text::duration(d.to_ms - d.from_ms)
        );
        let bold = Font::new(3.0).bold();
        let period_w = c.text_width(&period, bold)?;
        c.text(&period, (right, c.px(MARGIN_MM + 0.5)), bold, Align::Right)?;
        let title = c.fit(
            &format!("Shift handover · {}", d.ward),
            Font::new(3.8).bold(),
            right - left - period_w - c.px(5.0),
        )?;
        c.text(
            &title,
            (left, c.px(MARGIN_MM)),
            Font::new(3.8).bold(),
            Align::Left,
        )?;
        c.line(
            vec![
                (left, c.px(MARGIN_MM + 6.0)),
                (right, c.px(MARGIN_MM + 6.0)),
            ],
            INK,
            c.width(0.25),
        )?;
        if d.beds.is_empty() {
            c.text(
                "No beds in this report",
                (left, c.px(TOP_MM)),
                Font::new(3.2).color(GREY),
                Align::Left,
            )?;
        }
        let mut y_mm = TOP_MM;
        for row in self.pages.get(index).map(Vec::as_slice).unwrap_or_default() {
            self.row(c, *row, c.px(y_mm))?;
            y_mm += row.height_mm();
        }
        c.footer(&d.printed.by, &text::time(d.printed.at_ms, tz))
    }
}

impl ShiftPages<'_> {
    fn row<DB: DrawingBackend>(
        &self,
        c: &Canvas<'_, DB>,
        row: Row,
        y: i32,
    ) -> Result<(), ReportError> {
        let tz = self.doc.printed.tz;
        let left = c.px(MARGIN_MM);
        let right = c.px(A4_WIDTH_MM - MARGIN_MM);
        let indent = left + c.px(4.0);
        let body = Font::new(2.9);
        let hm = |t: i64| text::format_ms(t, tz, "%H:%M");
        match row {
            Row::Bed(i, continued) => {
                let bed = &self.doc.beds[i];
                c.rect(
                    (left, y),
                    (right, y + c.px(5.5)),
                    RGBColor(235, 238, 242),
                    true,
                )?;
                let head = Font::new(3.4).bold();
                let name = if continued {
                    format!("{} (continued)", bed.bed)
                } else {
                    bed.bed.clone()
                };
                let x = c.runs(&[(&name, head)], (left + c.px(1.0), y + c.px(1.0)))?;
                let patient = c.fit(
                    &text::patient(bed.patient.as_ref()),
                    Font::new(3.0),
                    right - x - c.px(6.0),
                )?;
                c.text(
                    &patient,
                    (x + c.px(4.0), y + c.px(1.3)),
                    Font::new(3.0),
                    Align::Left,
                )?;
            }
            Row::Counts(i) => {
                let [h, m, l] = self.doc.beds[i].counts;
                let (hs, ms, ls) = (
                    format!("{h} high"),
                    format!("{m} medium"),
                    format!("{l} low"),
                );
                let runs = [
                    ("Physiological alarms: ", body.color(GREY)),
                    (hs.as_str(), body.bold().color(text::priority_color("high"))),
                    (" · ", body),
                    (
                        ms.as_str(),
                        body.bold().color(text::priority_color("medium")),
                    ),
                    (" · ", body),
                    (ls.as_str(), body.bold().color(text::priority_color("low"))),
                ];
                c.runs(&runs, (indent, y))?;
            }
            Row::Alarm(i, a) => {
                let alarm = &self.doc.beds[i].alarms[a];
                c.text(&hm(alarm.t_ms), (indent, y), body, Align::Left)?;
                let prio = body.bold().color(text::priority_color(&alarm.priority));
                c.text(
                    &alarm.priority.to_uppercase(),
                    (indent + c.px(14.0), y),
                    prio,
                    Align::Left,
                )?;
                let mut x = indent + c.px(34.0);
                if alarm.technical {
                    x = c.runs(&[("technical ", body.color(GREY))], (x, y))?;
                }
                let outcome_x = indent + c.px(170.0);
                let msg = c.fit(&alarm.message, body, outcome_x - x - c.px(3.0))?;
                c.text(&msg, (x, y), body, Align::Left)?;
                let outcome = c.fit(&alarm.outcome, body.color(GREY), right - outcome_x)?;
                c.text(&outcome, (outcome_x, y), body.color(GREY), Align::Left)?;
            }
            Row::Limits => {
                c.text("Limit changes:", (indent, y), body.color(GREY), Align::Left)?;
            }
            Row::Limit(i, l) => {
                let s = c.fit(
                    &self.doc.beds[i].limit_changes[l],
                    body,
                    right - indent - c.px(8.0),
                )?;
                c.text(&s, (indent + c.px(4.0), y), body, Align::Left)?;
            }
            Row::News2(i) => {
                let news = &self.doc.beds[i].news2;
                let (first, last) = (news.first().map(|p| p.1), news.last().map(|p| p.1));
                let max = news.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
                let (Some(first), Some(last)) = (first, last) else {
                    return Ok(());
                };
                let s = format!("NEWS2 {first:.0} → {last:.0}, max {max:.0}");
                let x = c.runs(&[(&s, body)], (indent, y + c.px(1.0)))?;
                sparkline(
                    c,
                    news,
                    (x + c.px(5.0), y),
                    (c.px(40.0), c.px(5.5)),
                    self.doc.from_ms,
                    self.doc.to_ms,
                )?;
            }
            Row::Remote(i, r) => {
                let s = c.fit(
                    &format!("Remote: {}", self.doc.beds[i].remote[r]),
                    body,
                    right - indent,
                )?;
                c.text(&s, (indent, y), body, Align::Left)?;
            }
            Row::Quiet => {
                c.text(
                    "no alarms, no changes",
                    (indent, y),
                    body.color(GREY),
                    Align::Left,
                )?;
            }
            Row::Space => {}
        }
        Ok(())
    }
}

/// A small NEWS2 line over the shift (0–20 scaled to the box), with a light frame.
fn sparkline<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    points: &[(i64, f64)],
    (x, y): (i32, i32),
    (w, h): (i32, i32),
    from: i64,
    to: i64,
) -> Result<(), ReportError> {
    c.rect((x, y), (x + w, y + h), RGBColor(200, 200, 200), false)?;
    let span = (to - from).max(1) as f64;
    let pts: Vec<(i32, i32)> = points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(t, v)| {
            let fx = ((t - from) as f64 / span).clamp(0.0, 1.0);
            let fy = (v / 20.0).clamp(0.0, 1.0);
            (
                x + (fx * f64::from(w)).round() as i32,
                y + h - (fy * f64::from(h)).round() as i32,
            )
        })
        .collect();
    if pts.len() == 1 {
        let p = pts[0];
        return c.rect((p.0 - 1, p.1 - 1), (p.0 + 1, p.1 + 1), INK, true);
    }
    c.line(pts, INK, c.width(0.2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PatientLine, Printed, ShiftAlarm};

    fn bed(alarms: usize) -> ShiftBed {
        ShiftBed {
            bed: "b".into(),
            patient: Some(PatientLine::default()),
            counts: [alarms as u32, 0, 0],
            alarms: (0..alarms)
                .map(|i| ShiftAlarm {
                    t_ms: i as i64,
                    priority: "high".into(),
                    technical: false,
                    message: "m".into(),
                    outcome: "o".into(),
                })
                .collect(),
            limit_changes: vec![],
            news2: vec![],
            remote: vec![],
        }
    }

    fn doc(beds: Vec<ShiftBed>) -> ShiftDoc {
        ShiftDoc {
            printed: Printed {
                by: "t".into(),
                at_ms: 0,
                tz: chrono_tz::UTC,
            },
            ward: "w".into(),
            from_ms: 0,
            to_ms: 1,
            beds,
        }
    }

    #[test]
    fn a_long_block_is_split_and_its_bed_repeated() {
        let pages = paginate(&doc(vec![bed(80)]));
        assert!(pages.len() >= 3, "{}", pages.len());
        assert!(matches!(pages[1][0], Row::Bed(0, true)));
        let alarms: usize = pages
            .iter()
            .flatten()
            .filter(|r| matches!(r, Row::Alarm(..)))
            .count();
        assert_eq!(alarms, 80, "every alarm printed once");
    }

    #[test]
    fn a_block_that_fits_on_a_page_is_not_split() {
        let pages = paginate(&doc((0..9).map(|_| bed(3)).collect()));
        for page in &pages {
            assert!(matches!(page[0], Row::Bed(_, false)));
        }
    }
}
