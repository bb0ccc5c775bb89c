// What the panes of the bed detail screen (one per tab) share: the interface the screen drives
// them by, what they may ask of it, and the channels several of them draw.

import type { AuthState } from '../auth';
import type { LimitInfo } from '../detailmath';
import type { Priority } from '../frames';
import type { Store } from '../store';
import type { DisplayRange } from '../sweep';
import { PLETH_RANGE } from '../scale';

export type Tab = 'live' | 'trends' | 'review' | 'alarms' | 'patient';

/** One tab's pane. The screen (detail.ts) opens and closes the bed, switches tabs and keeps
 * the session; a pane only shows its part of the bed. */
export interface Pane {
  /** `#pane-<tab>`: hidden unless its tab is chosen. */
  readonly root: HTMLElement;
  /** Shows stored history: without view_history it says so and loads nothing. */
  readonly history: boolean;
  /** A bed was opened (the screen's bed is set): start afresh on it. */
  open(): void;
  /** Its tab was chosen (and is allowed): load or draw what it shows. */
  show(): void;
  /** The session's rights changed: show or hide the actions. */
  rights(): void;
  /** The bed was closed: stop timers, let go of what was drawn. */
  close(): void;
}

/** What a pane reads from the screen around it, and asks of it. */
export interface DetailContext {
  /** The open bed; null once the screen is closed. */
  bed(): string | null;
  tab(): Tab;
  /** The session; null when unknown or unreadable (no rights). */
  auth(): AuthState | null;
  store(): Store | null;
  /** The open bed's alarm limits (the Live pane loads and edits them). */
  limits(): readonly LimitInfo[];
  /** Reads the limits again (they go with the patient on a discharge or transfer). */
  reloadLimits(): Promise<void>;
  /** Every pane's actions for the session's rights. */
  applyRights(): void;
  /** The header and the live numerics. */
  render(): void;
  /** The patient line of the header. */
  setPatientLine(text: string): void;
}

export interface ChannelSpec {
  channel: string;
  label: string;
  color: string;
  range: DisplayRange | 'auto';
  rate: number;
}

/** The waveforms of the screen: live, in review and in the alarm snippets. */
export const CHANNELS: readonly ChannelSpec[] = [
  { channel: 'ECG_II', label: 'ECG II', color: '#00e676', range: { min: -1.2, max: 1.8 }, rate: 500 },
  { channel: 'ECG_V5', label: 'ECG V5', color: '#00e676', range: { min: -1.2, max: 1.8 }, rate: 500 },
  { channel: 'PLETH', label: 'Pleth', color: '#18ffff', range: PLETH_RANGE, rate: 125 },
  { channel: 'RESP', label: 'Resp', color: '#ffee58', range: 'auto', rate: 62.5 },
];

const PRIORITIES: readonly Priority[] = ['high', 'medium', 'low'];

export function markPriority(e: Element, prefix: string, p: Priority | null): void {
  for (const q of PRIORITIES) e.classList.toggle(`${prefix}${q}`, q === p);
}

export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}
