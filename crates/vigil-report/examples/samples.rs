//! Writes sample documents to `target/report-samples/` for a human to look at:
//! `cargo run -p vigil-report --example samples`.

#[path = "../tests/fixtures.rs"]
mod fixtures;

use std::path::PathBuf;

use vigil_report::{Format, Paper};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/report-samples");
    std::fs::create_dir_all(&dir)?;
    let mut strip = fixtures::mitdb_strip(2.0, 22.0);
    strip
        .traces
        .push(fixtures::pleth(strip.from_ms, strip.to_ms - 4000, "Pleth"));
    strip.traces[1]
        .gaps
        .push([strip.from_ms + 3000, strip.from_ms + 5000]);
    let only = std::env::args().nth(1);
    for format in [Format::Png, Format::Pdf, Format::Svg] {
        if only.as_deref().is_some_and(|o| o != format.extension()) {
            continue;
        }
        let docs = [
            (
                "strip",
                vigil_report::strip(&strip, &Paper::default(), format),
            ),
            (
                "trend",
                vigil_report::trend(&fixtures::trend_doc(), format, 100.0),
            ),
            (
                "shift",
                vigil_report::shift(&fixtures::shift_doc(7), format, 100.0),
            ),
        ];
        for (name, doc) in docs {
            let doc = match doc {
                Ok(doc) => doc,
                Err(e) => {
                    eprintln!("{name}: {e}");
                    continue;
                }
            };
            let path = dir.join(format!("{name}.{}", format.extension()));
            std::fs::write(&path, &doc.bytes)?;
            println!("{} ({} pages)", path.display(), doc.pages);
        }
    }
    Ok(())
}
