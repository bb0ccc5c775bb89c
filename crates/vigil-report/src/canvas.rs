//! One page to draw on: a plotters drawing area and its scale (pixels per mm), with the few
//! primitives the documents use. Coordinates are pixels from the page's top left corner.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::error::Drawn;
use crate::ReportError;

/// Black: text and traces.
pub(crate) const INK: RGBColor = RGBColor(0, 0, 0);
/// Grey for secondary text and axes.
pub(crate) const GREY: RGBColor = RGBColor(110, 110, 110);

/// How text is set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Font {
    /// Height of the font (ascender to descender), mm.
    pub size_mm: f64,
    pub bold: bool,
    pub color: RGBColor,
}

impl Font {
    pub(crate) const fn new(size_mm: f64) -> Font {
        Font {
            size_mm,
            bold: false,
            color: INK,
        }
    }
    pub(crate) const fn bold(self) -> Font {
        Font { bold: true, ..self }
    }
    pub(crate) const fn color(self, color: RGBColor) -> Font {
        Font { color, ..self }
    }
}

/// Horizontal anchor of a text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

/// A page being drawn.
pub(crate) struct Canvas<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    /// Pixels per millimetre.
    pub ppm: f64,
    /// This page's index and the document's page count.
    pub index: usize,
    pub count: usize,
    /// Drawn on a vector backend (SVG, PDF): line widths are exact there, while a bitmap's
    /// thick lines are drawn as several one-pixel passes.
    pub vector: bool,
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    pub(crate) fn new(
        area: &'a DrawingArea<DB, Shift>,
        ppm: f64,
        index: usize,
        count: usize,
        vector: bool,
    ) -> Self {
        Canvas {
            area,
            ppm,
            index,
            count,
            vector,
        }
    }

    /// Millimetres to whole pixels.
    pub(crate) fn px(&self, mm: f64) -> i32 {
        (mm * self.ppm).round() as i32
    }

    /// A line width in pixels, at least one.
    pub(crate) fn width(&self, mm: f64) -> u32 {
        (mm * self.ppm).round().max(1.0) as u32
    }

    /// A polyline.
    pub(crate) fn line(
        &self,
        points: Vec<(i32, i32)>,
        color: RGBColor,
        width: u32,
    ) -> Result<(), ReportError> {
        if points.len() < 2 {
            return Ok(());
        }
        self.area
            .draw(&PathElement::new(points, color.stroke_width(width)))
            .drawn()
    }

    /// A polyline drawn with a pen about `width_mm` wide. On a bitmap the pen is a plus sign
    /// of one-pixel passes (the centre and one pixel on each side), so that the line is thick
    /// without plotters' mitred polygons (which spike at sharp peaks) and without moving any
    /// point: a peak's topmost pixel stays in the peak's own column.
    pub(crate) fn pen(
        &self,
        points: &[(i32, i32)],
        color: RGBColor,
        width_mm: f64,
    ) -> Result<(), ReportError> {
        if points.len() < 2 {
            return Ok(());
        }
        if self.vector || width_mm * self.ppm < 2.0 {
            return self.line(points.to_vec(), color, self.width(width_mm));
        }
        for (dx, dy) in [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)] {
            let moved = points.iter().map(|&(x, y)| (x + dx, y + dy)).collect();
            self.line(moved, color, 1)?;
        }
        Ok(())
    }

    /// A rectangle, filled or outlined.
    pub(crate) fn rect(
        &self,
        from: (i32, i32),
        to: (i32, i32),
        color: RGBColor,
        filled: bool,
    ) -> Result<(), ReportError> {
        let style = if filled {
            color.filled()
        } else {
            color.stroke_width(1)
        };
        self.area.draw(&Rectangle::new([from, to], style)).drawn()
    }

    fn style(&self, font: Font, align: Align, v: VPos) -> TextStyle<'static> {
        let weight = if font.bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        let h = match align {
            Align::Left => HPos::Left,
            Align::Center => HPos::Center,
            Align::Right => HPos::Right,
        };
        FontDesc::new(FontFamily::SansSerif, font.size_mm * self.ppm, weight)
            .color(&font.color)
            .pos(Pos::new(h, v))
    }

    /// A line of text whose top is at `y`.
    pub(crate) fn text(
        &self,
        s: &str,
        (x, y): (i32, i32),
        font: Font,
        align: Align,
    ) -> Result<(), ReportError> {
        if s.is_empty() {
            return Ok(());
        }
        let style = self.style(font, align, VPos::Top);
        self.area
            .draw(&Text::new(s.to_string(), (x, y), style))
            .drawn()
    }

    /// Width of a text in pixels.
    pub(crate) fn text_width(&self, s: &str, font: Font) -> Result<i32, ReportError> {
        if s.is_empty() {
            return Ok(0);
        }
        let style = self.style(font, Align::Left, VPos::Top);
        let (w, _) = self.area.estimate_text_size(s, &style).drawn()?;
        Ok(w as i32)
    }

    /// The text, cut with "…" so that it fits in `max_px`.
    pub(crate) fn fit(&self, s: &str, font: Font, max_px: i32) -> Result<String, ReportError> {
        if self.text_width(s, font)? <= max_px {
            return Ok(s.to_string());
        }
        let mut chars: Vec<char> = s.chars().collect();
        while !chars.is_empty() {
            chars.pop();
            let cut: String = chars.iter().collect::<String>() + "…";
            if self.text_width(&cut, font)? <= max_px {
                return Ok(cut);
            }
        }
        Ok(String::new())
    }

    /// Text pieces of several colours on one line, from `x`; returns the x after the last.
    pub(crate) fn runs(
        &self,
        runs: &[(&str, Font)],
        (x, y): (i32, i32),
    ) -> Result<i32, ReportError> {
        let mut x = x;
        for (s, font) in runs {
            self.text(s, (x, y), *font, Align::Left)?;
            x += self.text_width(s, *font)?;
        }
        Ok(x)
    }

    /// The standard footer: "Printed by … at … · page i of n · Vigil".
    pub(crate) fn footer(&self, printed_by: &str, printed_at: &str) -> Result<(), ReportError> {
        let font = Font::new(2.6).color(GREY);
        let y = self.px(crate::A4_HEIGHT_MM - crate::MARGIN_MM - 3.0);
        let text = format!(
            "Printed by {printed_by} at {printed_at} · page {} of {} · Vigil",
            self.index + 1,
            self.count
        );
        let left = self.px(crate::MARGIN_MM);
        let room = self.px(crate::A4_WIDTH_MM - 2.0 * crate::MARGIN_MM);
        let text = self.fit(&text, font, room)?;
        self.text(&text, (left, y), font, Align::Left)
    }
}
