//! The schedule engine's integration and property tests, one binary; each module is one
//! subject. Run one with `cargo test -p vigil-schedule --test schedule <module>::`.

mod invariant;
mod properties;
mod rules;
