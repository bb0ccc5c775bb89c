// Pure logic of the bed detail screen (no DOM): the wire types of the detail commands
// (src-tauri/src/commands/detail.rs, generated in ./bindings), the wave fan-out, trend ranges
// and gap handling, full-disclosure window/cursor geometry, and the limits form check. Tested in
// ui/test.

import type { WaveTarget } from './store';

// ---- Wire types (generated from the Rust types: src-tauri/src/bindings.rs) ----------------

import type {
  AdmitIn,
  AlarmHistoryOut as AlarmHistoryEntry,
  LimitOut as LimitInfo,
  PatientOut as PatientInfo,
  SamplesOut,
  Stretch as Segment,
  ThresholdChange,
  TrendOut,
  TrendPoint,
} from './bindings';

export type { AdmitIn, AlarmHistoryEntry, LimitInfo, PatientInfo, SamplesOut, Segment, ThresholdChange, TrendOut, TrendPoint };

/**
 * The patient header a nurse checks on the tile and the detail: "J. Q. D. · 76 y · F · PACER".
 * Identity (the name) comes masked from the backend when the station is locked.
 */
export function patientHeader(p: PatientInfo | undefined): string {
  if (!p) return '';
  const parts = [p.name];
  if (typeof p.age === 'number') parts.push(`${p.age} y`);
  if (p.sex && p.sex !== 'U') parts.push(p.sex);
  if (p.pacemaker) parts.push('PACER');
  return parts.filter((x) => x).join(' · ');
}

/** Whether `tag` is a language tag `Intl` accepts ("C", the POSIX locale, is not). */
export function validLocale(tag: string | undefined): boolean {
  if (!tag) return false;
  try {
    new Intl.NumberFormat(tag);
    return true;
  } catch {
    return false;
  }
}

// ---- Live waves --------------------------------------------------------------------------

/** One target that feeds every given one (undefined when there is none). */
export function fanOut(...targets: (WaveTarget | undefined)[]): WaveTarget | undefined {
  const live = targets.filter((t): t is WaveTarget => t !== undefined);
  if (live.length <= 1) return live[0];
  return {
    push(values, rate, gapBefore) {
      for (const t of live) t.push(values, rate, gapBefore);
    },
  };
}

// ---- Trends ------------------------------------------------------------------------------

export type TrendPreset = '1h' | '8h' | '24h' | '72h';
const HOUR = 3_600_000;
export const TREND_PRESETS: Readonly<Record<TrendPreset, number>> = {
  '1h': HOUR,
  '8h': 8 * HOUR,
  '24h': 24 * HOUR,
  '72h': 72 * HOUR,
};
/** Longest custom range (the backend refuses more). */
export const MAX_TREND_SPAN_MS = 31 * 24 * HOUR;
/** Buckets asked for per trend: about one per 2 px of a chart. */
export const TREND_BUCKETS = 600;

export interface TimeRange {
  from: number;
  to: number;
}

/** The last `preset` up to now. */
export function presetRange(preset: TrendPreset, nowMs: number): TimeRange {
  return { from: nowMs - TREND_PRESETS[preset], to: nowMs };
}

/** A custom range from two `datetime-local` values, or why it is unusable. */
export function customRange(from: string, to: string): TimeRange | { error: string } {
  const f = localInputMs(from);
  const t = localInputMs(to);
  if (f === undefined || t === undefined) return { error: 'Enter both a start and an end time.' };
  if (t <= f) return { error: 'The end must be after the start.' };
  if (t - f > MAX_TREND_SPAN_MS) return { error: 'At most 31 days at once.' };
  return { from: f, to: t };
}

/** "2024-05-01T12:30" (local time) → ms; undefined when empty or malformed. */
export function localInputMs(v: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v.trim())) return undefined;
  const ms = new Date(v.trim()).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/** Value for a `datetime-local` input (local time, minutes). */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Vitals of home devices (a scale, a glucose meter), measured a few times a day (issue 15). */
export const HOME_VITALS: readonly string[] = ['WEIGHT', 'GLUCOSE'];

/** Home readings up to a day and a half apart are joined (a daily weight is one line). */
const HOME_JOIN_MS = 36 * 3_600_000;

/** Vitals measured now and then (a cuff, a scale, a meter): drawn as points, without a band. */
export function isDiscrete(vital: string): boolean {
  return vital.startsWith('NIBP') || HOME_VITALS.includes(vital);
}

/**
 * Whether the bed detail shows a numeric: always, unless it is optional (a home device's vital),
 * then while the bed has a reading of it (live or late) or an alarm of it.
 */
export function showNum(
  spec: { codes: readonly string[]; optional?: boolean },
  live: boolean,
  late: boolean,
  alarms: readonly { code: string }[],
): boolean {
  if (!spec.optional) return true;
  return live || late || alarms.some((a) => spec.codes.some((c) => a.code.startsWith(`${c}_`)));
}

/**
 * The longest time between two readings still drawn as one line. Continuous vitals arrive
 * every few seconds, so a missing bucket or more is a gap; NIBP is measured every few minutes
 * and its points are joined unless 20 minutes or more apart; home readings unless 36 hours.
 */
export function maxJoinMs(vital: string, bucketMs: number): number {
  if (vital.startsWith('NIBP')) return Math.max(20 * 60_000, 2.5 * bucketMs);
  if (HOME_VITALS.includes(vital)) return Math.max(HOME_JOIN_MS, 2.5 * bucketMs);
  return Math.max(2.5 * bucketMs, 15_000);
}

/**
 * uPlot data for trends of several series on one time axis: x in seconds, then per series
 * [min, max, mean] columns. A null is inserted where two readings of a series are further
 * apart than `maxJoinMs`, so the line is never drawn across a gap; undefined marks a time of
 * another series between two close readings (joined).
 */
export function trendData(series: readonly TrendOut[]): (number | null | undefined)[][] {
  const times = new Set<number>();
  const byT = series.map((s) => {
    const m = new Map<number, TrendPoint>();
    for (const p of s.points) {
      m.set(p.t, p);
      times.add(p.t);
    }
    // Gap markers half a bucket after the last point before each gap.
    const join = maxJoinMs(s.vital, s.bucket_ms);
    for (let i = 1; i < s.points.length; i++) {
      const a = s.points[i - 1].t;
      if (s.points[i].t - a > join) times.add(a + Math.max(1, Math.floor(s.bucket_ms / 2)));
    }
    return { m, s };
  });
  const xs = [...times].sort((a, b) => a - b);
  const out: (number | null | undefined)[][] = [xs.map((t) => t / 1000)];
  for (const { m, s } of byT) {
    const mins: (number | null | undefined)[] = [];
    const maxs: (number | null | undefined)[] = [];
    const means: (number | null | undefined)[] = [];
    const join = maxJoinMs(s.vital, s.bucket_ms);
    let last: number | null = null;
    for (const t of xs) {
      const p = m.get(t);
      if (p) {
        mins.push(p.min);
        maxs.push(p.max);
        means.push(p.mean);
        last = t;
      } else if (last !== null && t - last < join && nextPointWithin(s.points, t, last + join)) {
        // Another series' time between two of ours that are close: no break (uPlot joins
        // across undefined, breaks at null).
        mins.push(undefined);
        maxs.push(undefined);
        means.push(undefined);
      } else {
        mins.push(null);
        maxs.push(null);
        means.push(null);
      }
    }
    out.push(mins, maxs, means);
  }
  return out;
}

function nextPointWithin(points: readonly TrendPoint[], after: number, before: number): boolean {
  for (const p of points) if (p.t > after) return p.t <= before;
  return false;
}

// ---- Full disclosure ---------------------------------------------------------------------

/** Seconds of signal shown in the full-disclosure strip. */
export const DISCLOSURE_WINDOW_MS = 10_000;
/** How far back the review can scroll (the stored waveform retention is longer). */
export const DISCLOSURE_HISTORY_MS = 60 * 60_000;

export interface ReviewState {
  /** Start of the shown window, ms. */
  start: number;
  /** The time cursor, inside the window. */
  cursor: number;
  /** The second caliper cursor, if placed. */
  caliper?: number | null;
}

/**
 * Two-cursor calipers: the interval between them and, as a rate, how many such intervals fit
 * in a minute (an R–R interval of 800 ms reads "0.800 s · 75 /min").
 */
export function caliperText(a: number, b: number): { ms: number; rate: number | null; text: string } {
  const ms = Math.abs(b - a);
  const rate = ms > 0 ? Math.round(60_000 / ms) : null;
  return { ms, rate, text: `Δ ${(ms / 1000).toFixed(3)} s${rate === null ? '' : ` · ${rate} /min`}` };
}

export interface Bounds {
  min: number;
  max: number;
}

/** The window start kept so that [start, start + window) stays inside the bounds. */
export function clampStart(start: number, windowMs: number, b: Bounds): number {
  return Math.max(b.min, Math.min(start, b.max - windowMs));
}

/**
 * Moves the cursor by `deltaMs`; the window scrolls along once the cursor would leave it
 * (holding ← scrolls back through time). Everything stays within the bounds.
 */
export function moveCursor(s: ReviewState, deltaMs: number, windowMs: number, b: Bounds): ReviewState {
  const cursor = Math.max(b.min, Math.min(s.cursor + deltaMs, b.max));
  let start = s.start;
  if (cursor < start) start = cursor;
  if (cursor > start + windowMs) start = cursor - windowMs;
  start = clampStart(start, windowMs, b);
  return { start, cursor: Math.max(start, Math.min(cursor, start + windowMs)), caliper: s.caliper };
}

/** Moves the window (drag, page keys); the cursor keeps its place on screen. */
export function panWindow(s: ReviewState, deltaMs: number, windowMs: number, b: Bounds): ReviewState {
  const start = clampStart(s.start + deltaMs, windowMs, b);
  const shift = start - s.start;
  return { start, cursor: s.cursor + shift, caliper: s.caliper == null ? s.caliper : s.caliper + shift };
}

/** Cursor step for a key; null for keys the strip does not handle. */
export function keyStep(key: string, shift: boolean, windowMs: number): { cursor?: number; pan?: number } | null {
  switch (key) {
    case 'ArrowLeft':
      return { cursor: shift ? -1000 : -200 };
    case 'ArrowRight':
      return { cursor: shift ? 1000 : 200 };
    case 'PageUp':
      return { pan: -windowMs };
    case 'PageDown':
      return { pan: windowMs };
    default:
      return null;
  }
}

export function timeAtX(x: number, width: number, start: number, windowMs: number): number {
  return start + (width > 0 ? (x / width) * windowMs : 0);
}

export function xAtTime(t: number, width: number, start: number, windowMs: number): number {
  return ((t - start) / windowMs) * width;
}

/**
 * Polylines of the samples inside [start, start + windowMs) as [x, value] pairs: one per
 * segment, split where a sample is not a number. Separate segments are never joined, so a gap
 * shows as a gap.
 */
export function stripPolylines(data: SamplesOut, start: number, windowMs: number, width: number): [number, number][][] {
  const end = start + windowMs;
  const lines: [number, number][][] = [];
  for (const seg of data.segments) {
    const period = 1000 / seg.rate;
    let line: [number, number][] = [];
    for (let i = 0; i < seg.values.length; i++) {
      const t = seg.t0 + i * period;
      if (t < start || t >= end) continue;
      const v = seg.values[i];
      if (!Number.isFinite(v)) {
        if (line.length) lines.push(line);
        line = [];
        continue;
      }
      line.push([xAtTime(t, width, start, windowMs), v]);
    }
    if (line.length) lines.push(line);
  }
  return lines;
}

/** The sample at time t (nearest within one period), or null where there is none. */
export function valueAt(data: SamplesOut | null, t: number): number | null {
  if (!data) return null;
  for (const seg of data.segments) {
    const period = 1000 / seg.rate;
    const i = Math.round((t - seg.t0) / period);
    if (i >= 0 && i < seg.values.length && Math.abs(seg.t0 + i * period - t) <= period) {
      const v = seg.values[i];
      return Number.isFinite(v) ? v : null;
    }
  }
  return null;
}

/** Min and max of the samples (for auto-scaling), or null when there are none. */
export function sampleRange(data: SamplesOut): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (const s of data.segments)
    for (const v of s.values) {
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  if (min > max) return null;
  if (max - min < 1e-9) return { min: min - 1, max: max + 1 };
  return { min, max };
}

/** "12:34:56.780" (local time, milliseconds). */
export function formatTimeMs(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// ---- Limits form -------------------------------------------------------------------------

export interface LimitFormRow {
  limit: LimitInfo;
  /** What the user typed. */
  text: string;
}

/**
 * The changes of a limits form, or the problems with it (per code). Mirrors the backend's
 * checks so the nurse sees them at once; the backend checks again and decides.
 */
export function checkLimitForm(rows: readonly LimitFormRow[]): { changes: ThresholdChange[]; errors: Map<string, string> } {
  const errors = new Map<string, string>();
  const values = new Map<string, number>();
  for (const { limit, text } of rows) {
    const t = text.trim().replace(',', '.');
    const v = t === '' ? Number.NaN : Number(t);
    if (!Number.isFinite(v)) {
      errors.set(limit.code, 'Enter a number.');
      continue;
    }
    if (v < limit.min || v > limit.max) {
      errors.set(limit.code, `Allowed ${limit.min} to ${limit.max}.`);
      continue;
    }
    values.set(limit.code, v);
  }
  for (const { limit } of rows) {
    if (limit.direction !== 'low') continue;
    const high = rows.find((r) => r.limit.vital === limit.vital && r.limit.direction === 'high')?.limit;
    if (!high) continue;
    const lo = values.get(limit.code);
    const hi = values.get(high.code);
    if (lo === undefined || hi === undefined) continue;
    if (lo + limit.hysteresis >= hi - high.hysteresis) {
      const gap = limit.hysteresis + high.hysteresis;
      errors.set(limit.code, lo < hi ? `Must be more than ${gap} below the high limit.` : 'Must be below the high limit.');
    }
  }
  const changes = errors.size
    ? []
    : rows
        .filter(({ limit }) => values.get(limit.code) !== limit.threshold)
        .map(({ limit }) => ({ code: limit.code, threshold: values.get(limit.code) as number }));
  return { changes, errors };
}

/** "50 – 120" for a vital's low and high limits ("> 90", "< 120", or "off"). */
export function limitsText(limits: readonly LimitInfo[], vital: string): string {
  const lo = limits.find((l) => l.vital === vital && l.direction === 'low');
  const hi = limits.find((l) => l.vital === vital && l.direction === 'high');
  const f = (n: number) => String(Math.round(n * 10) / 10);
  if (lo && hi) return `${f(lo.threshold)} – ${f(hi.threshold)}`;
  if (lo) return `> ${f(lo.threshold)}`;
  if (hi) return `< ${f(hi.threshold)}`;
  return 'limits off';
}

/**
 * Fixed trend axes per vital (a change of 1 /min never fills the chart), widened only so that
 * a reading outside them is never clipped.
 */
export const TREND_AXES: Readonly<Record<string, readonly [number, number]>> = {
  HR: [0, 200],
  PR: [0, 200],
  SPO2: [70, 100],
  RR: [0, 40],
  NIBP_SYS: [0, 220],
  NIBP_MEAN: [0, 220],
  NIBP_DIA: [0, 220],
  TEMP: [34, 41],
  GLUCOSE: [0, 400],
  WEIGHT: [0, 150],
};

/** Vitals whose axis follows the patient's own readings, with this margin (a 1 kg gain shows). */
const TREND_MARGINS: Readonly<Record<string, number>> = { WEIGHT: 5 };

/** The y range of a trend of `vital` holding values from `lo` to `hi` (NaN/∞: none). */
export function trendAxis(vital: string, lo: number, hi: number): [number, number] {
  const margin = TREND_MARGINS[vital];
  if (margin !== undefined && Number.isFinite(lo) && Number.isFinite(hi)) {
    return [Math.max(0, Math.floor(lo - margin)), Math.ceil(hi + margin)];
  }
  const [a, b] = TREND_AXES[vital] ?? [0, 100];
  const min = Number.isFinite(lo) ? Math.min(a, Math.floor(lo)) : a;
  const max = Number.isFinite(hi) ? Math.max(b, Math.ceil(hi)) : b;
  return [min, max];
}

/** The alarm limits of `vital` as a band: low and high thresholds (either may be missing). */
export function limitBand(limits: readonly LimitInfo[], vital: string): { low: number | null; high: number | null } {
  const of = (d: 'low' | 'high') => limits.find((l) => l.vital === vital && l.direction === d)?.threshold ?? null;
  return { low: of('low'), high: of('high') };
}

/** Alarm raises of `vitals` within [from, to], as marks on a trend: time, priority, text. */
export function alarmMarks(
  history: readonly AlarmHistoryEntry[],
  vitals: readonly string[],
  from: number,
  to: number,
): Array<{ t: number; priority: 'low' | 'medium' | 'high'; text: string }> {
  return history
    .filter((h) => h.t_ms >= from && h.t_ms <= to && vitals.some((v) => h.code.startsWith(`${v}_`)))
    .map((h) => ({ t: h.t_ms, priority: h.priority, text: `${h.marker} ${h.message}` }))
    .sort((a, b) => a.t - b.t);
}
