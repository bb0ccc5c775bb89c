// Clinical scale of the live waveforms: paper speed (mm/s) and ECG gain (mm/mV) chosen from
// the standard values for the space a trace has, and the words that state them. Pure; the
// renderers take the resulting sweep time and range.
//
// Screen millimetres assume the CSS reference pixel (96 per inch): on the station's monitor
// the stated speed and gain are what a ruler held to the screen would measure at 100 % zoom.

import type { DisplayRange } from './sweep';

/** CSS pixels per millimetre (96 px per inch). */
export const PX_PER_MM = 96 / 25.4;
/** Standard ECG paper speeds, fastest first (mm/s). */
export const SPEEDS = [25, 12.5, 6.25] as const;
/** Standard ECG gains, largest first (mm/mV). */
export const GAINS = [20, 10, 5] as const;
/** A sweep shows at least this much signal (s) when a slower standard speed allows it. */
export const MIN_SWEEP_S = 3;
/** ECG: mV shown around the baseline at the chosen gain (below : above = 0.4 : 0.6). */
export const ECG_SPAN_MV = 3;
/** ECG range used until a trace is laid out. */
export const ECG_RANGE: DisplayRange = { min: -1.2, max: 1.8 };
/** Pleth: fixed scale, 0–1.2 of the oximeter's full scale (never auto-scaled). */
export const PLETH_RANGE: DisplayRange = { min: 0, max: 1.2 };

/** The fastest standard speed at which `widthPx` holds at least MIN_SWEEP_S (else the slowest). */
export function sweepSpeed(widthPx: number): number {
  for (const s of SPEEDS) if (widthPx / (s * PX_PER_MM) >= MIN_SWEEP_S) return s;
  return SPEEDS[SPEEDS.length - 1];
}

/** The largest standard gain at which ECG_SPAN_MV fits `heightPx` (else the smallest). */
export function ecgGain(heightPx: number): number {
  for (const g of GAINS) if (ECG_SPAN_MV * g * PX_PER_MM <= heightPx) return g;
  return GAINS[GAINS.length - 1];
}

/** The ECG range (mV) that `heightPx` shows at `gain` mm/mV, baseline at 40 % from the bottom. */
export function ecgRange(heightPx: number, gain: number): DisplayRange {
  const span = heightPx / (gain * PX_PER_MM);
  return { min: -0.4 * span, max: 0.6 * span };
}

export interface Scale {
  /** Seconds across the width at the chosen speed. */
  sweepSeconds: number;
  range: DisplayRange;
  /** Height of a 1 mV pulse, px (ECG). */
  mvPx: number;
  /** "10 mm/mV · 25 mm/s", "Pleth fixed · 25 mm/s". */
  text: string;
}

/** The scale of a trace of `kind` in a `widthPx` × `heightPx` box. */
export function scaleFor(kind: 'ecg' | 'pleth' | 'resp', widthPx: number, heightPx: number): Scale {
  const speed = sweepSpeed(widthPx);
  const sweepSeconds = Math.max(0.5, widthPx / (speed * PX_PER_MM));
  const speedText = `${speed} mm/s`;
  if (kind === 'ecg') {
    const gain = ecgGain(heightPx);
    return {
      sweepSeconds,
      range: ecgRange(heightPx, gain),
      mvPx: gain * PX_PER_MM,
      text: `${gain} mm/mV · ${speedText}`,
    };
  }
  return { sweepSeconds, range: PLETH_RANGE, mvPx: 0, text: `fixed scale · ${speedText}` };
}
