//! Pages to document bytes: the PNG (stacked pages, `pHYs`), the SVG (stacked pages, sizes in
//! mm) and the PDF (one page per page, through svg2pdf).

use std::collections::HashMap;

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref};
use plotters::prelude::*;
use svg2pdf::usvg;

use crate::canvas::Canvas;
use crate::error::Drawn;
use crate::{fonts, Format, ReportError};

/// Width of every page: A4 landscape, mm.
pub const A4_WIDTH_MM: f64 = 297.0;
/// Height of every page: A4 landscape, mm.
pub const A4_HEIGHT_MM: f64 = 210.0;
/// Margin on every side of a page, mm.
pub const MARGIN_MM: f64 = 10.0;
/// The resolution SVG and PDF pages are drawn at: one user unit is 0.1 mm, so that every
/// millimetre of the strip's grid is a whole number of units (the documents are true-size
/// whatever resolution a bitmap of the same document uses).
pub const VECTOR_DPI: f64 = 254.0;
/// The lowest and highest bitmap resolutions accepted.
const DPI_RANGE: (f64, f64) = (50.0, 600.0);
/// A PNG of more pages would need gigabytes of memory: ask for a PDF instead.
const MAX_PNG_PAGES: usize = 60;
/// A4 landscape in PDF points (1 pt = 1/72 in).
const A4_WIDTH_PT: f32 = (A4_WIDTH_MM / 25.4 * 72.0) as f32;
const A4_HEIGHT_PT: f32 = (A4_HEIGHT_MM / 25.4 * 72.0) as f32;

/// A finished document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// What `bytes` are.
    pub format: Format,
    /// The file's content.
    pub bytes: Vec<u8>,
    /// Number of A4 pages.
    pub pages: usize,
    /// PNG only (else 0): width of the bitmap, one page wide.
    pub width_px: u32,
    /// PNG only (else 0): height of the bitmap, all pages stacked.
    pub height_px: u32,
}

/// Pixels of one page at a resolution: `round(mm × dpi / 25.4)`.
pub(crate) fn page_px(dpi: f64) -> (u32, u32) {
    (
        (A4_WIDTH_MM * dpi / 25.4).round() as u32,
        (A4_HEIGHT_MM * dpi / 25.4).round() as u32,
    )
}

/// Checks a bitmap resolution.
pub(crate) fn check_dpi(dpi: f64) -> Result<(), ReportError> {
    if dpi.is_finite() && (DPI_RANGE.0..=DPI_RANGE.1).contains(&dpi) {
        Ok(())
    } else {
        Err(ReportError::InvalidPaper(format!(
            "resolution {dpi} dpi is outside {}–{} dpi",
            DPI_RANGE.0, DPI_RANGE.1
        )))
    }
}

/// A document's pages, drawn one at a time on any plotters backend.
pub(crate) trait Pages {
    /// How many pages there are.
    fn count(&self) -> usize;
    /// Draws page `index` (0-based) on a blank page.
    fn draw<DB: DrawingBackend>(
        &self,
        page: &Canvas<'_, DB>,
        index: usize,
    ) -> Result<(), ReportError>;
}

/// Renders the pages in a format; `dpi` is the bitmap resolution (PNG only).
pub(crate) fn render<P: Pages>(
    pages: &P,
    format: Format,
    dpi: f64,
) -> Result<Document, ReportError> {
    fonts::register()?;
    check_dpi(dpi)?;
    let count = pages.count().max(1);
    match format {
        Format::Png => png(pages, count, dpi),
        Format::Svg => {
            let svg = svg(pages, 0..count)?;
            Ok(Document {
                format,
                bytes: svg.into_bytes(),
                pages: count,
                width_px: 0,
                height_px: 0,
            })
        }
        Format::Pdf => {
            let svgs = (0..count)
                .map(|i| svg(pages, i..i + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Document {
                format,
                bytes: pdf(&svgs)?,
                pages: count,
                width_px: 0,
                height_px: 0,
            })
        }
    }
}

/// Draws the pages of `range` one under the other on a backend of `(w, h × n)` pixels.
fn draw_stacked<DB: DrawingBackend, P: Pages>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    pages: &P,
    range: std::ops::Range<usize>,
    dpi: f64,
    count: usize,
    vector: bool,
) -> Result<(), ReportError> {
    let (w, h) = page_px(dpi);
    root.fill(&WHITE).drawn()?;
    let areas = root.split_evenly((range.len(), 1));
    for (area, index) in areas.iter().zip(range) {
        if area.dim_in_pixel() != (w, h) {
            return Err(ReportError::Drawing(
                "a page is not the size of an A4 page".into(),
            ));
        }
        let canvas = Canvas::new(area, dpi / 25.4, index, count, vector);
        pages.draw(&canvas, index)?;
    }
    root.present().drawn()
}

fn png<P: Pages>(pages: &P, count: usize, dpi: f64) -> Result<Document, ReportError> {
    if count > MAX_PNG_PAGES {
        return Err(ReportError::Layout(format!(
            "{count} pages are too many for one bitmap (at most {MAX_PNG_PAGES}): ask for a PDF"
        )));
    }
    let (w, h) = page_px(dpi);
    let total_h = h * count as u32;
    let mut buffer = vec![255u8; w as usize * total_h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, total_h)).into_drawing_area();
        draw_stacked(&root, pages, 0..count, dpi, count, false)?;
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = ::png::Encoder::new(&mut bytes, w, total_h);
        encoder.set_color(::png::ColorType::Rgb);
        encoder.set_depth(::png::BitDepth::Eight);
        encoder.set_pixel_dims(Some(::png::PixelDimensions {
            xppu: (dpi / 0.0254).round() as u32,
            yppu: (dpi / 0.0254).round() as u32,
            unit: ::png::Unit::Meter,
        }));
        let mut writer = encoder
            .write_header()
            .map_err(|e| ReportError::Png(e.to_string()))?;
        writer
            .write_image_data(&buffer)
            .map_err(|e| ReportError::Png(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| ReportError::Png(e.to_string()))?;
    }
    Ok(Document {
        format: Format::Png,
        bytes,
        pages: count,
        width_px: w,
        height_px: total_h,
    })
}

/// An SVG of the pages in `range`, stacked, its root sized in mm.
fn svg<P: Pages>(pages: &P, range: std::ops::Range<usize>) -> Result<String, ReportError> {
    let (w, h) = page_px(VECTOR_DPI);
    let n = range.len() as u32;
    let count = pages.count().max(1);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h * n)).into_drawing_area();
        draw_stacked(&root, pages, range, VECTOR_DPI, count, true)?;
    }
    let px_size = format!("width=\"{w}\" height=\"{}\"", h * n);
    let mm_size = format!(
        "width=\"{A4_WIDTH_MM}mm\" height=\"{}mm\"",
        A4_HEIGHT_MM * f64::from(n)
    );
    match out.find(&px_size) {
        Some(at) if out[..at].rfind('<') == out.find("<svg") => {
            out.replace_range(at..at + px_size.len(), &mm_size);
            Ok(out)
        }
        _ => Err(ReportError::Drawing(
            "the SVG backend wrote an unexpected root element".into(),
        )),
    }
}

/// One PDF page per SVG page, each the page's SVG converted by svg2pdf and placed to fill an
/// A4 landscape page exactly.
fn pdf(pages: &[String]) -> Result<Vec<u8>, ReportError> {
    let options = usvg::Options {
        font_family: fonts::FAMILY.to_string(),
        fontdb: fonts::database(),
        ..usvg::Options::default()
    };
    let mut alloc = Ref::new(1);
    let catalog_id = alloc.bump();
    let tree_id = alloc.bump();
    let mut pdf = Pdf::new();
    let mut page_ids = Vec::with_capacity(pages.len());
    let svg_name = Name(b"S1");
    for svg in pages {
        let tree = usvg::Tree::from_str(svg, &options)
            .map_err(|e| ReportError::Pdf(format!("the page's SVG does not parse: {e}")))?;
        let (chunk, svg_ref) = svg2pdf::to_chunk(&tree, svg2pdf::ConversionOptions::default())
            .map_err(|e| ReportError::Pdf(e.to_string()))?;
        let mut renumbered = HashMap::new();
        let chunk = chunk.renumber(|old| *renumbered.entry(old).or_insert_with(|| alloc.bump()));
        let svg_ref = *renumbered
            .get(&svg_ref)
            .ok_or_else(|| ReportError::Pdf("the page's graphic went missing".into()))?;
        let page_id = alloc.bump();
        let content_id = alloc.bump();
        page_ids.push(page_id);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, A4_WIDTH_PT, A4_HEIGHT_PT));
        page.parent(tree_id);
        page.contents(content_id);
        page.resources().x_objects().pair(svg_name, svg_ref);
        page.finish();
        let mut content = Content::new();
        content
            .save_state()
            .transform([A4_WIDTH_PT, 0.0, 0.0, A4_HEIGHT_PT, 0.0, 0.0])
            .x_object(svg_name)
            .restore_state();
        pdf.stream(content_id, &content.finish());
        pdf.extend(&chunk);
    }
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    Ok(pdf.finish())
}
