//! What can go wrong while making a document.

/// Why a document could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The strip's window `[from_ms, to_ms)` holds no time.
    #[error("empty window: the strip ends at {to_ms} ms, not after its start {from_ms} ms")]
    EmptyWindow {
        /// Start of the window, ms since the epoch.
        from_ms: i64,
        /// End of the window, ms since the epoch.
        to_ms: i64,
    },
    /// The strip's window is longer than [`crate::MAX_STRIP_MS`].
    #[error("window too long: {ms} ms asked, a strip holds at most {max_ms} ms")]
    WindowTooLong {
        /// Length asked for.
        ms: i64,
        /// The longest strip.
        max_ms: i64,
    },
    /// A trend or shift report whose period ends before it starts.
    #[error("empty period: the report ends at {to_ms} ms, not after its start {from_ms} ms")]
    EmptyPeriod {
        /// Start of the period, ms since the epoch.
        from_ms: i64,
        /// End of the period, ms since the epoch.
        to_ms: i64,
    },
    /// Paper settings (resolution, speed, gain) that cannot be drawn.
    #[error("invalid paper settings: {0}")]
    InvalidPaper(String),
    /// The strip's traces cannot be laid out on a page.
    #[error("layout failed: {0}")]
    Layout(String),
    /// plotters failed to draw (its message).
    #[error("drawing failed: {0}")]
    Drawing(String),
    /// The bitmap could not be encoded as PNG.
    #[error("PNG encoding failed: {0}")]
    Png(String),
    /// The bundled fonts could not be registered.
    #[error("font registration failed: {0}")]
    Font(String),
    /// The SVG of a page could not be converted to PDF.
    #[error("PDF conversion failed: {0}")]
    Pdf(String),
}

/// Turns any displayable drawing error into [`ReportError::Drawing`].
pub(crate) trait Drawn<T> {
    fn drawn(self) -> Result<T, ReportError>;
}

impl<T, E: std::fmt::Display> Drawn<T> for Result<T, E> {
    fn drawn(self) -> Result<T, ReportError> {
        self.map_err(|e| ReportError::Drawing(e.to_string()))
    }
}
