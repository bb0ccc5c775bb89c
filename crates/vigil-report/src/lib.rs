//! Vigil's printed documents: what goes into the chart (alarm strips on ECG paper), to the
//! physician (trend reports) and to the next shift (handover reports), drawn with plotters.
//!
//! Data in ([`model`]), document bytes out; no I/O, no clock, no system fonts.

pub mod model;

pub use model::*;
