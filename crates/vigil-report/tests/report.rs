//! vigil-report's integration tests (one binary): the strip's geometry measured on its bitmap,
//! MIT-BIH record 100's beats where the paper says they are, gaps, the three formats, the
//! trend and shift reports, documents with no data.

mod bitmap;
mod documents;
mod fixtures;
mod mitdb;
mod strip_geometry;
