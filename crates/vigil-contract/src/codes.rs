//! The vital signs and waveform channels Vigil knows, with their IEEE 11073 MDC codes, LOINC codes
//! and UCUM units (see `docs/telemetry.md` and `shared/reference/clinical.md` §4).
//!
//! Observations arrive identified by MDC code; everything downstream (store, alarms, UI) uses
//! [`Vital`] so that a code is looked up once, at decoding time.

/// A numeric vital sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vital {
    /// Heart rate from the ECG.
    Hr,
    /// Pulse rate from the pulse oximeter.
    Pr,
    SpO2,
    Rr,
    NibpSys,
    NibpDia,
    NibpMean,
    Temp,
    EtCo2,
    /// Body weight (home scale).
    Weight,
    /// Capillary whole-blood glucose (home glucose meter).
    Glucose,
}

/// Static facts about one vital.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VitalInfo {
    pub vital: Vital,
    /// Short stable name used in the store, the UI and the command line.
    pub name: &'static str,
    pub mdc_ref: &'static str,
    pub mdc: u32,
    pub loinc: &'static str,
    /// UCUM unit of stored values.
    pub unit: &'static str,
    /// Values outside this range are physiologically implausible and rejected at decoding.
    pub plausible: (f64, f64),
}

const VITALS: [VitalInfo; 11] = [
    VitalInfo {
        vital: Vital::Hr,
        name: "HR",
        mdc_ref: "MDC_ECG_HEART_RATE",
        mdc: 147842,
        loinc: "8867-4",
        unit: "/min",
        plausible: (0.0, 350.0),
    },
    VitalInfo {
        vital: Vital::Pr,
        name: "PR",
        mdc_ref: "MDC_PULS_OXIM_PULS_RATE",
        mdc: 149530,
        loinc: "8889-8",
        unit: "/min",
        plausible: (0.0, 350.0),
    },
    VitalInfo {
        vital: Vital::SpO2,
        name: "SPO2",
        mdc_ref: "MDC_PULS_OXIM_SAT_O2",
        mdc: 150456,
        loinc: "59408-5",
        unit: "%",
        plausible: (0.0, 100.0),
    },
    VitalInfo {
        vital: Vital::Rr,
        name: "RR",
        mdc_ref: "MDC_RESP_RATE",
        mdc: 151562,
        loinc: "9279-1",
        unit: "/min",
        plausible: (0.0, 150.0),
    },
    VitalInfo {
        vital: Vital::NibpSys,
        name: "NIBP_SYS",
        mdc_ref: "MDC_PRESS_BLD_NONINV_SYS",
        mdc: 150021,
        loinc: "8480-6",
        unit: "mm[Hg]",
        plausible: (0.0, 300.0),
    },
    VitalInfo {
        vital: Vital::NibpDia,
        name: "NIBP_DIA",
        mdc_ref: "MDC_PRESS_BLD_NONINV_DIA",
        mdc: 150022,
        loinc: "8462-4",
        unit: "mm[Hg]",
        plausible: (0.0, 300.0),
    },
    VitalInfo {
        vital: Vital::NibpMean,
        name: "NIBP_MEAN",
        mdc_ref: "MDC_PRESS_BLD_NONINV_MEAN",
        mdc: 150023,
        loinc: "8478-0",
        unit: "mm[Hg]",
        plausible: (0.0, 300.0),
    },
    VitalInfo {
        vital: Vital::Temp,
        name: "TEMP",
        mdc_ref: "MDC_TEMP_BODY",
        mdc: 150364,
        loinc: "8310-5",
        unit: "Cel",
        plausible: (15.0, 45.0),
    },
    VitalInfo {
        vital: Vital::EtCo2,
        name: "ETCO2",
        mdc_ref: "MDC_AWAY_CO2_ET",
        mdc: 151708,
        loinc: "19889-5",
        unit: "mm[Hg]",
        plausible: (0.0, 150.0),
    },
    VitalInfo {
        vital: Vital::Weight,
        name: "WEIGHT",
        mdc_ref: "MDC_MASS_BODY_ACTUAL",
        mdc: 188736,
        loinc: "29463-7",
        unit: "kg",
        // From an extremely preterm neonate to the heaviest adults recorded.
        plausible: (0.3, 500.0),
    },
    VitalInfo {
        vital: Vital::Glucose,
        name: "GLUCOSE",
        mdc_ref: "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD",
        mdc: 160184,
        // Glucose [Mass/volume] in Capillary blood by Glucometer.
        loinc: "41653-7",
        // mg/dL, the unit the Continua WAN glucose meters send (MDC_DIM_MILLI_G_PER_DL);
        // mmol/L is converted (1 mmol/L = 18.016 mg/dL).
        unit: "mg/dL",
        // Meters read about 10 (20) to 600 mg/dL; laboratory values above 2000 are unheard of.
        plausible: (10.0, 2000.0),
    },
];

impl Vital {
    pub const ALL: [Vital; 11] = [
        Vital::Hr,
        Vital::Pr,
        Vital::SpO2,
        Vital::Rr,
        Vital::NibpSys,
        Vital::NibpDia,
        Vital::NibpMean,
        Vital::Temp,
        Vital::EtCo2,
        Vital::Weight,
        Vital::Glucose,
    ];

    pub fn info(self) -> &'static VitalInfo {
        // VITALS is in the same order as the enum.
        &VITALS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn mdc(self) -> u32 {
        self.info().mdc
    }

    pub fn unit(self) -> &'static str {
        self.info().unit
    }

    pub fn from_mdc(mdc: u32) -> Option<Vital> {
        VITALS.iter().find(|v| v.mdc == mdc).map(|v| v.vital)
    }

    pub fn from_name(name: &str) -> Option<Vital> {
        VITALS
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
            .map(|v| v.vital)
    }
}

/// A waveform channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelInfo {
    /// Name used in topics, the store and the UI.
    pub name: &'static str,
    pub mdc_ref: &'static str,
    pub mdc: u32,
    /// UCUM unit of physical values; "1" for unitless (normalised) signals.
    pub unit: &'static str,
}

/// The waveform channels of contract v1. Devices may only publish these.
pub const CHANNELS: [ChannelInfo; 6] = [
    ChannelInfo {
        name: "ECG_I",
        mdc_ref: "MDC_ECG_ELEC_POTL_I",
        mdc: 131329,
        unit: "mV",
    },
    ChannelInfo {
        name: "ECG_II",
        mdc_ref: "MDC_ECG_ELEC_POTL_II",
        mdc: 131330,
        unit: "mV",
    },
    ChannelInfo {
        name: "ECG_V5",
        mdc_ref: "MDC_ECG_ELEC_POTL_V5",
        mdc: 131335,
        unit: "mV",
    },
    ChannelInfo {
        name: "ECG_III",
        mdc_ref: "MDC_ECG_ELEC_POTL_III",
        mdc: 131389,
        unit: "mV",
    },
    ChannelInfo {
        name: "PLETH",
        mdc_ref: "MDC_PULS_OXIM_PLETH",
        mdc: 150452,
        unit: "1",
    },
    ChannelInfo {
        name: "RESP",
        mdc_ref: "MDC_IMPED_TTHOR",
        mdc: 151780,
        unit: "1",
    },
];

pub fn channel(name: &str) -> Option<&'static ChannelInfo> {
    CHANNELS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_order_matches_enum() {
        for v in Vital::ALL {
            assert_eq!(v.info().vital, v);
            assert_eq!(Vital::from_mdc(v.mdc()), Some(v));
            assert_eq!(Vital::from_name(v.name()), Some(v));
        }
    }

    #[test]
    fn codes_match_clinical_reference() {
        assert_eq!(Vital::Hr.mdc(), 147842);
        assert_eq!(Vital::SpO2.mdc(), 150456);
        assert_eq!(Vital::Rr.mdc(), 151562);
        assert_eq!(Vital::Temp.unit(), "Cel");
        assert_eq!(Vital::from_mdc(188736), Some(Vital::Weight));
        assert_eq!(Vital::Weight.unit(), "kg");
        assert_eq!(Vital::from_mdc(160184), Some(Vital::Glucose));
        assert_eq!(Vital::Glucose.unit(), "mg/dL");
        assert_eq!(Vital::from_name("glucose"), Some(Vital::Glucose));
        assert_eq!(Vital::from_mdc(1), None);
        assert_eq!(channel("ECG_II").map(|c| c.mdc), Some(131330));
        assert!(channel("ecg_ii").is_none());
    }
}
