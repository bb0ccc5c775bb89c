//! The bundled fonts (DejaVu Sans and DejaVu Sans Bold, see `fonts/LICENSE`), registered with
//! plotters once and given to usvg as its only font database: no system font is ever read.

use std::sync::{Arc, Once, OnceLock};

use plotters::style::{register_font, FontStyle};
use svg2pdf::usvg::fontdb;

use crate::ReportError;

/// DejaVu Sans (regular).
pub(crate) const SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold.
pub(crate) const SANS_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
/// The family name of both fonts, as usvg sees it.
pub(crate) const FAMILY: &str = "DejaVu Sans";

static REGISTER: Once = Once::new();
static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers the bundled fonts as plotters' "sans-serif" family (normal and bold), once per
/// process; every later call returns the first call's outcome.
pub(crate) fn register() -> Result<(), ReportError> {
    REGISTER.call_once(|| {
        let outcome = register_font("sans-serif", FontStyle::Normal, SANS)
            .and_then(|()| register_font("sans-serif", FontStyle::Bold, SANS_BOLD))
            .map_err(|_| "the bundled DejaVu Sans is not a valid font".to_string());
        let _ = REGISTERED.set(outcome);
    });
    match REGISTERED.get() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(ReportError::Font(e.clone())),
        None => Err(ReportError::Font("font registration did not run".into())),
    }
}

/// usvg's font database: the bundled fonts only, DejaVu Sans as every generic family.
pub(crate) fn database() -> Arc<fontdb::Database> {
    static DB: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_font_data(SANS.to_vec());
        db.load_font_data(SANS_BOLD.to_vec());
        db.set_sans_serif_family(FAMILY);
        db.set_serif_family(FAMILY);
        db.set_monospace_family(FAMILY);
        Arc::new(db)
    })
    .clone()
}
