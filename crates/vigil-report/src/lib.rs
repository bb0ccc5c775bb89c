//! Vigil's printed documents: what goes into the chart (alarm strips on ECG paper), to the
//! physician (trend reports) and to the next shift (handover reports), drawn with plotters.
//!
//! Data in ([`model`]), document bytes out; no I/O, no clock, no system fonts.
//!
//! Every document is made of A4 landscape pages (297 × 210 mm, 10 mm margins):
//! - PNG: the pages one under the other in one bitmap at the requested resolution, which the
//!   `pHYs` chunk states;
//! - SVG: the same stacked pages, `width`/`height` in mm so that it prints true-size (the user
//!   unit is one pixel at [`VECTOR_DPI`], i.e. 0.1 mm);
//! - PDF: one page per page, vector, the bundled fonts embedded.

mod canvas;
mod error;
mod fonts;
pub mod model;
mod output;
mod shift;
mod strip;
mod text;
mod trend;

pub use error::ReportError;
pub use model::*;
pub use output::{Document, A4_HEIGHT_MM, A4_WIDTH_MM, MARGIN_MM, VECTOR_DPI};
pub use shift::shift;
pub use strip::{strip, strip_layout, BandLayout, PageLayout, StripLayout, MAX_STRIP_MS};
pub use trend::{trend, TABLE_ROWS_PER_PAGE};
