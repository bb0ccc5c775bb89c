//! `vigilctl news2`: score NEWS2 from entered observations (audits and checks). Scoring lives
//! in `vigil_core::alarms::news2`; this only parses arguments and prints.

use anyhow::{bail, Result};
use clap::Args;
use vigil_core::alarms::news2::{self, Consciousness, News2Input};

#[derive(Args)]
pub struct News2Args {
    /// Respiration rate /min.
    #[arg(long)]
    rr: f64,
    /// SpO2 %.
    #[arg(long)]
    spo2: f64,
    /// SpO2 scale (1, or 2 for confirmed hypercapnic respiratory failure).
    #[arg(long, default_value_t = 1)]
    scale: u8,
    /// On supplemental oxygen (default: air).
    #[arg(long)]
    oxygen: bool,
    /// Systolic blood pressure mmHg.
    #[arg(long)]
    sbp: f64,
    /// Pulse /min.
    #[arg(long)]
    pulse: f64,
    /// ACVPU: A, C, V, P or U.
    #[arg(long)]
    consciousness: Consciousness,
    /// Temperature °C.
    #[arg(long, allow_negative_numbers = true)]
    temp: f64,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn news2(a: News2Args) -> Result<()> {
    if a.scale != 1 && a.scale != 2 {
        bail!("--scale must be 1 or 2");
    }
    for (name, v) in [
        ("--rr", a.rr),
        ("--spo2", a.spo2),
        ("--sbp", a.sbp),
        ("--pulse", a.pulse),
        ("--temp", a.temp),
    ] {
        if !v.is_finite() || v < 0.0 {
            bail!("{name} must be a non-negative number");
        }
    }
    if a.spo2 > 100.0 {
        bail!("--spo2 must be at most 100");
    }
    let input = News2Input {
        rr: a.rr,
        spo2: a.spo2,
        scale2: a.scale == 2,
        oxygen: a.oxygen,
        sbp: a.sbp,
        pulse: a.pulse,
        consciousness: a.consciousness,
        temp: a.temp,
    };
    let s = news2::score(&input);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "subscores": {
                    "rr": s.rr, "spo2": s.spo2, "oxygen": s.oxygen, "sbp": s.sbp,
                    "pulse": s.pulse, "consciousness": s.consciousness, "temp": s.temp,
                },
                "total": s.total,
                "band": s.band.as_str(),
                "scale": a.scale,
            })
        );
        return Ok(());
    }
    println!("respiration rate  {:>5}  {}", a.rr, s.rr);
    println!("SpO2 (scale {})    {:>5}  {}", a.scale, a.spo2, s.spo2);
    println!(
        "air or oxygen     {:>5}  {}",
        if a.oxygen { "O2" } else { "air" },
        s.oxygen
    );
    println!("systolic BP       {:>5}  {}", a.sbp, s.sbp);
    println!("pulse             {:>5}  {}", a.pulse, s.pulse);
    println!(
        "consciousness     {:>5}  {}",
        a.consciousness.letter(),
        s.consciousness
    );
    println!("temperature       {:>5}  {}", a.temp, s.temp);
    println!("total {}  risk {}", s.total, s.band.as_str());
    Ok(())
}
