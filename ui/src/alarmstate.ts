// How an alarm is presented: its inactivation state (IEC 60601-1-8: active,
// acknowledged, audio paused, latched), its visual signal (flash rate) and the
// text that says the same thing without colour. Pure functions, no DOM.

import type { AlarmInfo, News2Band, PauseInfo, Priority, SoundInfo } from './frames';
import { formatAlarmText } from './format';
import { PRIORITY_RANK } from './store';

export type AlarmVisual = 'active' | 'acknowledged' | 'audio-paused' | 'latched' | 'unreviewed';

/** Priority by shape as well as colour (IEC 60601-1-8 markers, plus an icon). */
export const PRIORITY_ICON: Readonly<Record<Priority, string>> = { high: '▲', medium: '◆', low: '●' };

/** Flashing per IEC 60601-1-8: high 2 Hz (1.4–2.8), medium 0.5 Hz (0.4–0.8), low steady. */
export type Flash = 'flash-2hz' | 'flash-05hz' | 'steady';

/**
 * The state to show. `pauseRemainingMs` is the countdown of a pause covering
 * the alarm's bed (null: none). A latched alarm (condition gone, awaiting
 * acknowledgement) and an acknowledged one say so whatever the pause.
 */
export function alarmVisual(a: AlarmInfo, pauseRemainingMs: number | null): AlarmVisual {
  if (a.state === 'unreviewed') return 'unreviewed';
  if (a.state === 'latched') return 'latched';
  if (a.state === 'acknowledged') return 'acknowledged';
  if (a.state === 'audio-paused') return 'audio-paused';
  if (pauseRemainingMs !== null && pauseRemainingMs > 0 && a.audible === false) return 'audio-paused';
  return 'active';
}

/**
 * The visual signal. An acknowledged alarm keeps its colour but stops
 * flashing (the condition is known; the display must not keep shouting);
 * a latched alarm is steady too. Audio pause silences only the sound.
 */
export function alarmFlash(priority: Priority, visual: AlarmVisual): Flash {
  if (visual === 'acknowledged' || visual === 'latched' || visual === 'unreviewed') return 'steady';
  if (priority === 'high') return 'flash-2hz';
  if (priority === 'medium') return 'flash-05hz';
  return 'steady';
}

/** "m:ss" of a countdown, rounded up (never shows 0:00 while still running). */
export function formatCountdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function hhmm(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** Who paused: "paused by carl", or "paused by alice at station ST-2" for another station's pause. */
export function pausedBy(p: PauseInfo): string {
  return p.station ? `paused by ${p.by} at station ${p.station}` : `paused by ${p.by}`;
}

/**
 * The words beside the alarm text that name its state (empty for a plain active alarm). An
 * acknowledgement or a pause made at another station names that station and its user.
 */
export function alarmStateText(
  a: AlarmInfo,
  visual: AlarmVisual,
  pauseRemainingMs: number | null,
  pause: PauseInfo | null = null,
): string {
  switch (visual) {
    case 'acknowledged':
      return a.ack_by ? `ACK ${a.ack_by}${a.ack_station ? ` at station ${a.ack_station}` : ''}` : 'ACK';
    case 'audio-paused': {
      const text =
        pauseRemainingMs !== null && pauseRemainingMs > 0
          ? `AUDIO PAUSED ${formatCountdown(pauseRemainingMs)}`
          : 'AUDIO PAUSED';
      return pause?.station ? `${text} ${pausedBy(pause)}` : text;
    }
    case 'latched':
      return a.cleared ? `LATCHED · cleared ${hhmm(a.cleared)}` : 'LATCHED';
    case 'unreviewed':
      return a.cleared ? `RESOLVED ${hhmm(a.cleared)} · NOT REVIEWED` : 'RESOLVED · NOT REVIEWED';
    default:
      return a.escalation && a.escalation > 0 ? 'ESCALATED' : '';
  }
}

/**
 * The alarm bar's order: highest priority first; within a priority, the
 * unacknowledged before the acknowledged, then the most recent first.
 */
export function sortForBar(alarms: readonly AlarmInfo[]): AlarmInfo[] {
  const handled = (a: AlarmInfo) => (a.state === 'acknowledged' ? 2 : a.state === 'unreviewed' ? 1 : 0);
  return [...alarms].sort(
    (a, b) =>
      (PRIORITY_RANK[b.priority] ?? 0) - (PRIORITY_RANK[a.priority] ?? 0) ||
      handled(a) - handled(b) ||
      b.since - a.since,
  );
}

/** One alarm as a line of text: "*** SpO2 LOW 84 < 90 · ACK carl". */
export function alarmLine(
  a: AlarmInfo,
  visual: AlarmVisual,
  pauseRemainingMs: number | null,
  pause: PauseInfo | null = null,
): string {
  const state = alarmStateText(a, visual, pauseRemainingMs, pause);
  return state ? `${formatAlarmText(a)} · ${state}` : formatAlarmText(a);
}

/** Whether the acknowledge action applies (not already acknowledged). */
export function canAcknowledge(a: AlarmInfo): boolean {
  return a.state !== 'acknowledged';
}

/** The acknowledge action's words: an alarm whose condition is over is reviewed. */
export function acknowledgeLabel(a: AlarmInfo): string {
  return a.state === 'unreviewed' || a.state === 'latched' ? 'Reviewed' : 'Acknowledge';
}

/** One bed's alarms in the bar: most urgent first. */
export interface BarGroup {
  bed: string;
  alarms: AlarmInfo[];
}

/**
 * The bar's groups: one per bed, beds with their most urgent alarm first (priority, then
 * unacknowledged, then newest), each bed's alarms in bar order.
 */
export function groupForBar(alarms: readonly AlarmInfo[]): BarGroup[] {
  const groups = new Map<string, AlarmInfo[]>();
  for (const a of sortForBar(alarms)) {
    const g = groups.get(a.bed);
    if (g) g.push(a);
    else groups.set(a.bed, [a]);
  }
  return [...groups].map(([bed, list]) => ({ bed, alarms: list }));
}

/**
 * How many groups fit when `capacity` fit at most: the rest is said as "+N more" (an item
 * of its own, so one slot is kept for it when anything is left over).
 */
export function fitGroups(total: number, capacity: number): { shown: number; more: number } {
  const cap = Math.max(1, Math.floor(capacity));
  if (total <= cap) return { shown: total, more: 0 };
  const shown = Math.max(1, cap - 1);
  return { shown, more: total - shown };
}

/** One entry of the alarm bar: a bed and its alarms, the one the entry shows first. */
export interface BarEntry {
  bed: string;
  alarms: AlarmInfo[];
  /** Kept in place while the bar is held, though every alarm of the bed has ended. */
  ended: boolean;
}

/** What the bar showed when the pointer came onto it: each entry's bed and leading alarm. */
export interface BarHold {
  bed: string;
  lead: string;
}

/** What the bar shows: its entries in order, and how many more beds did not fit. */
export interface BarLayout {
  entries: BarEntry[];
  more: number;
}

/**
 * The bar's entries. Unheld: the most urgent beds first, as many as fit. Held (the pointer is
 * on the bar, so a click lands where it was aimed, never on an entry that slid under the
 * pointer): the entries shown when the hold began stay in their places, each still leading with
 * the alarm it showed while that alarm lasts (so Acknowledge acknowledges the alarm that was
 * read); a bed whose alarms all ended keeps its place, marked ended, without actions; beds that
 * began alarming meanwhile come after them as room allows, the rest counted as more.
 */
export function layoutBar(groups: readonly BarGroup[], capacity: number, hold: readonly BarHold[] | null): BarLayout {
  if (hold === null) {
    const fit = fitGroups(groups.length, capacity);
    return {
      entries: groups.slice(0, fit.shown).map((g) => ({ bed: g.bed, alarms: g.alarms, ended: false })),
      more: fit.more,
    };
  }
  const byBed = new Map(groups.map((g) => [g.bed, g]));
  const entries: BarEntry[] = hold.map((h) => {
    const g = byBed.get(h.bed);
    if (!g) return { bed: h.bed, alarms: [], ended: true };
    const lead = g.alarms.find((a) => a.id === h.lead);
    const alarms = lead ? [lead, ...g.alarms.filter((a) => a !== lead)] : g.alarms;
    return { bed: h.bed, alarms, ended: false };
  });
  const kept = new Set(hold.map((h) => h.bed));
  const fresh = groups.filter((g) => !kept.has(g.bed));
  const cap = Math.max(1, Math.floor(capacity));
  const room = entries.length + fresh.length <= cap ? fresh.length : Math.max(0, cap - 1 - entries.length);
  for (const g of fresh.slice(0, room)) entries.push({ bed: g.bed, alarms: g.alarms, ended: false });
  return { entries, more: fresh.length - Math.min(room, fresh.length) };
}

/**
 * NEWS2 badge: text and the class of its clinical response band. Its own neutral (grey)
 * scheme, never the alarm colours, so a score is not mistaken for an alarm.
 */
export function news2Badge(n: { total: number; band: News2Band } | undefined): { text: string; cls: string } {
  if (!n) return { text: 'NEWS2 –', cls: 'news2 news2-none' };
  return { text: `NEWS2 ${n.total}`, cls: `news2 news2-${n.band}` };
}

/** Beds per screen the user can choose; 'auto' fits every bed up to 32 per screen. */
export const LAYOUTS = [4, 8, 16, 32] as const;
export type Layout = (typeof LAYOUTS)[number] | 'auto';

/** Parses a stored layout choice; anything unknown is 'auto'. */
export function parseLayout(s: string | null): Layout {
  const n = Number(s);
  return (LAYOUTS as readonly number[]).includes(n) ? (n as Layout) : 'auto';
}

/**
 * Which beds one screen shows. 'auto' picks the smallest layout that holds
 * every bed (so 8 beds get the 8-bed grid), paging beyond 32. The grid has
 * `slots` cells, so tiles keep their size on a last, partly filled page.
 */
export function pageOf(
  beds: number,
  layout: Layout,
  page: number,
): { slots: number; start: number; end: number; page: number; pages: number } {
  const slots = layout === 'auto' ? (LAYOUTS.find((l) => l >= beds) ?? 32) : layout;
  const pages = Math.max(1, Math.ceil(beds / slots));
  const p = Math.min(Math.max(0, Math.floor(page)), pages - 1);
  const start = p * slots;
  return { slots: layout === 'auto' ? Math.max(1, Math.min(slots, beds)) : slots, start, end: Math.min(beds, start + slots), page: p, pages };
}

/** The most urgent alarm priority among the beds of other pages (shown on the pager). */
export function offPagePriority(
  bedKeys: readonly string[],
  start: number,
  end: number,
  priorityOf: (bed: string) => Priority | null,
): Priority | null {
  let best: Priority | null = null;
  bedKeys.forEach((k, i) => {
    if (i >= start && i < end) return;
    const p = priorityOf(k);
    if (p && (!best || PRIORITY_RANK[p] > PRIORITY_RANK[best])) best = p;
  });
  return best;
}

/**
 * The header's standing audio-state indicator: on (with the volume), paused (with the
 * countdown), or NO SOUND when the station cannot sound.
 */
export function soundIndicator(
  s: SoundInfo | null,
  stationPause: { pause: PauseInfo; remainingMs: number } | null,
): { text: string; level: 'on' | 'paused' | 'failed' | 'starting'; title: string } {
  if (!s || s.state === 'starting') return { text: '♪ Sound starting…', level: 'starting', title: '' };
  if (s.state === 'failed') {
    return { text: '✕ NO ALARM SOUND', level: 'failed', title: s.error ?? 'the station cannot sound' };
  }
  const device = s.device ? ` on ${s.device}` : '';
  if (stationPause) {
    return {
      text: `♪ Paused ${formatCountdown(stationPause.remainingMs)}`,
      level: 'paused',
      title: `All alarm audio ${pausedBy(stationPause.pause)}`,
    };
  }
  return { text: `♪ Sound ${s.volume} %`, level: 'on', title: `Alarm sound${device}; click to set the volume` };
}
