// Pure formatting helpers for the ward overview. No DOM access here.

import type { AlarmInfo, EngineState, Priority } from './frames';

/** Shown in place of a missing reading. Never show 0 for "no value". */
export const NO_READING = '-?-';

function isReading(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** A numeric with a fixed number of decimals, or NO_READING when there is none. */
export function formatValue(value: number | null | undefined, decimals = 0): string {
  return isReading(value) ? value.toFixed(decimals) : NO_READING;
}

/** Display forms of the UCUM unit codes that are not shown as they are. */
const UNIT_DISPLAY: ReadonlyMap<string, string> = new Map([
  ['mm[Hg]', 'mmHg'],
  ['Cel', '°C'],
  ['[degF]', '°F'],
  ['{beats}/min', '/min'],
]);

/** Display form of a UCUM unit code. Unknown codes are shown as they are. */
export function formatUnit(ucum: string): string {
  return UNIT_DISPLAY.get(ucum) ?? ucum;
}

/** Non-invasive blood pressure as "sys/dia (mean)", e.g. "120/80 (93)". */
export function formatNibp(
  sys: number | null | undefined,
  dia: number | null | undefined,
  mean: number | null | undefined,
): string {
  if (!isReading(sys) && !isReading(dia) && !isReading(mean)) return NO_READING;
  return `${formatValue(sys)}/${formatValue(dia)} (${formatValue(mean)})`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Local wall-clock time "HH:MM:SS". */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Local wall-clock time "HH:MM" (e.g. time of the last NIBP cuff). */
export function formatTime(ms: number | null | undefined): string {
  if (!isReading(ms)) return NO_READING;
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** How long a late reading is mentioned beside the current value after it was received. */
export const LATE_NOTE_MS = 10 * 60_000;

/**
 * The note beside a numeric about its last late reading (history only: it changed no alarm),
 * e.g. "late: 85 % taken 14:02:11 (received 14:03:40)"; empty once `LATE_NOTE_MS` passed.
 */
export function lateNote(
  late: { reading: { value: number | null; unit: string; t: number }; received: number } | undefined,
  decimals: number,
  now: number,
): string {
  if (!late || now - late.received > LATE_NOTE_MS) return '';
  const r = late.reading;
  return `late: ${formatValue(r.value, decimals)} ${formatUnit(r.unit)} taken ${formatClock(r.t)} (received ${formatClock(late.received)})`;
}

const PRIORITY_MARKERS: Readonly<Record<Priority, string>> = { high: '***', medium: '**', low: '*' };

/** Alarm-priority text marker (IEC 60601-1-8 style): high "***", medium "**", low "*". */
export function priorityMarker(priority: Priority): string {
  return PRIORITY_MARKERS[priority];
}

/**
 * The alarm message, so colour is never the only cue and the words match the numerics:
 * "*** SpO2 LOW 84 % (limit 90)", "** HR HIGH 131 /min (limit 120)", "* Temp HIGH 38.9 °C (limit 38.5)".
 */
export function formatAlarmText(alarm: AlarmInfo): string {
  const head = `${priorityMarker(alarm.priority)} ${alarm.label}`;
  const { value, limit } = alarm;
  if (!isReading(value)) return head;
  const unit = alarm.unit ? ` ${alarm.unit}` : '';
  if (!isReading(limit)) return `${head} ${formatAlarmNumber(value)}${unit}`;
  return `${head} ${formatAlarmNumber(value)}${unit} (limit ${formatAlarmNumber(limit)})`;
}

/** As the engine writes it: whole numbers without decimals, others with one. */
function formatAlarmNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** Technical condition codes such as "LEADS_OFF" shown as "LEADS OFF". */
export function formatCondition(code: string): string {
  return code.replace(/_/g, ' ');
}

/** "No alarms", "1 alarm", "3 alarms". */
export function formatAlarmCount(n: number): string {
  if (n === 0) return 'No alarms';
  return n === 1 ? '1 alarm' : `${n} alarms`;
}

/** Text of a thrown value or a rejected Tauri command (which rejects with a plain string). */
export function formatError(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}

export type ConnLevel = 'ok' | 'warn' | 'error';

export interface ConnStatus {
  text: string;
  level: ConnLevel;
}

/** Frames stop arriving for this long → the header says the engine is silent. */
export const STALE_AFTER_MS = 3000;

/**
 * Header text for the link to the engine and, through it, to the broker.
 * `error` is a failed subscribe; `frameAgeMs` is the time since the last
 * frame (null before the first one).
 */
export function formatConnState(
  engine: EngineState | null,
  error: string | null,
  frameAgeMs: number | null,
): ConnStatus {
  if (error !== null) return { text: `Engine error: ${error}`, level: 'error' };
  if (engine === null || frameAgeMs === null) return { text: 'Connecting to engine…', level: 'warn' };
  if (frameAgeMs > STALE_AFTER_MS) {
    return { text: `NO DATA from engine for ${Math.floor(frameAgeMs / 1000)} s`, level: 'error' };
  }
  const where = `${engine.mode} broker ${engine.broker}`;
  if (engine.connected) return { text: `Connected — ${where}`, level: 'ok' };
  const why = engine.error ? `: ${engine.error}` : '';
  return { text: `BROKER DISCONNECTED — ${where}${why}`, level: 'error' };
}

/** The standing broker banner: one line per broker-trust warning, or null for none. */
export function formatBrokerWarnings(engine: EngineState | null): string | null {
  const w = engine?.warnings ?? [];
  return w.length === 0 ? null : `BROKER NOT TRUSTWORTHY — ${w.join(' · ')}`;
}

/** Tile alarm line: the most urgent alarm, and how many more the bed has, in words. */
export function formatAlarmSummary(alarms: readonly AlarmInfo[]): string {
  const top = alarms[0];
  if (!top) return '';
  return alarms.length > 1 ? `${formatAlarmText(top)} · ${formatMore(alarms.length - 1)}` : formatAlarmText(top);
}

/** "+1 more alarm", "+3 more alarms". */
export function formatMore(n: number): string {
  return `+${n} more alarm${n === 1 ? '' : 's'}`;
}
