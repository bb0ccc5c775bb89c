//! Trend report (to do).
use crate::{Document, Format, ReportError, TrendDoc};
/// Rows of the trend table on one page.
pub const TABLE_ROWS_PER_PAGE: usize = 30;
/// Renders a trend report.
pub fn trend(_doc: &TrendDoc, _format: Format, _dpi: f64) -> Result<Document, ReportError> {
    Err(ReportError::Layout("todo".into()))
}
