//! Shift report (to do).
use crate::{Document, Format, ReportError, ShiftDoc};
/// Renders a shift report.
pub fn shift(_doc: &ShiftDoc, _format: Format, _dpi: f64) -> Result<Document, ReportError> {
    Err(ReportError::Layout("todo".into()))
}
