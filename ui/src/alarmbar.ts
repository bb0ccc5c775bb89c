// The alarm bar under the header: every bed with alarms, most urgent first, one entry per bed
// with its top alarm (state in words, priority by colour and shape) and how many more it has;
// two rows, and what does not fit is said as "+N more beds", never cut off. The actions are
// those the backend allows now (acknowledge / review; audio pause, also on a locked screen).
// The backend refuses what the role may not do anyway; the bar only hides it. Also the
// header's station-wide audio pause, which takes two deliberate clicks.

import { api } from './api';
import { apiError, type Permission } from './auth';
import { OPEN_BED_EVENT, type OpenBed } from './overview';
import type { Store } from './store';
import {
  acknowledgeLabel,
  alarmFlash,
  alarmLine,
  alarmVisual,
  canAcknowledge,
  formatCountdown,
  groupForBar,
  layoutBar,
  PRIORITY_ICON,
  type BarEntry,
  type BarHold,
} from './alarmstate';
import { formatMore } from './format';

interface Item {
  root: HTMLDivElement;
  icon: HTMLSpanElement;
  bed: HTMLSpanElement;
  text: HTMLSpanElement;
  count: HTMLSpanElement;
  ack: HTMLButtonElement;
  pause: HTMLButtonElement;
}

function button(cls: string, text: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = text;
  return b;
}

function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** Narrowest width of one bed's entry in the bar (CSS px); the bar holds two rows. */
export const ITEM_MIN_PX = 440;
export const BAR_ROWS = 2;
/** How long the station-wide pause waits for its confirmation. */
const CONFIRM_MS = 5000;
/** The bar holds its entries while the pointer moves on it (or a key is used in it), and this
 * long after. */
const HOLD_MS = 3000;

export class AlarmBar {
  /** Entries by bed key: one per bed with alarms, its most urgent alarm leading. */
  private readonly items = new Map<string, Item>();
  private readonly list: HTMLDivElement;
  private readonly calm: HTMLSpanElement;
  private readonly more: HTMLButtonElement;
  private readonly error: HTMLSpanElement;
  private permissions = new Set<Permission>();
  private errorTimer: ReturnType<typeof setTimeout> | undefined;
  private confirmUntil = 0;
  /** The entries as last shown: what a hold keeps. */
  private shown: BarHold[] = [];
  /** While the pointer is on the bar: its entries stay in place (see `layoutBar`). */
  private hold: BarHold[] | null = null;
  private holdTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly root: HTMLElement,
    private readonly pauseAll: HTMLButtonElement,
    private readonly store: Store,
  ) {
    this.calm = document.createElement('span');
    this.calm.className = 'alarm-bar-calm';
    this.calm.textContent = 'No active alarms';
    this.list = document.createElement('div');
    this.list.className = 'alarm-list';
    this.more = button('alarm-more', '');
    this.more.hidden = true;
    this.more.onclick = () => {
      this.root.classList.toggle('expanded');
      this.render();
    };
    this.error = document.createElement('span');
    this.error.className = 'alarm-bar-error';
    this.error.setAttribute('role', 'alert');
    this.root.append(this.calm, this.list, this.error);
    // A click must land on the entry it was aimed at: while the pointer is on the list, or the
    // keyboard focus in it, no entry slides away (re-sorted, pushed out, or leading with
    // another alarm).
    for (const ev of ['pointerover', 'pointermove', 'pointerdown', 'focusin', 'keydown'] as const) {
      this.list.addEventListener(ev, () => this.holdOn());
    }
    this.list.addEventListener('pointerleave', () => this.release());
    // Pausing every bed's audio takes two deliberate clicks; resuming one.
    this.pauseAll.onclick = () => {
      const p = this.store.stationPause();
      if (p) {
        void this.act(api.endAudioPause(null), 'Resume audio');
        return;
      }
      if (Date.now() > this.confirmUntil) {
        this.confirmUntil = Date.now() + CONFIRM_MS;
        this.render();
        setTimeout(() => this.render(), CONFIRM_MS + 50);
        return;
      }
      this.confirmUntil = 0;
      void this.act(api.audioPause(null), 'Audio pause');
    };
  }

  /** The permissions of the current session (from the backend's auth state). */
  setPermissions(perms: readonly Permission[]): void {
    this.permissions = new Set(perms);
    this.render();
  }

  private holdOn(): void {
    if (this.hold === null) {
      this.hold = this.shown.slice();
      this.root.dataset.held = 'true';
    }
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => this.release(), HOLD_MS);
  }

  private release(): void {
    clearTimeout(this.holdTimer);
    if (this.hold === null) return;
    this.hold = null;
    delete this.root.dataset.held;
    this.render();
  }

  /** How many bed entries fit: rows × entries per row (all of them while expanded). */
  private capacity(): number {
    if (this.root.classList.contains('expanded')) return Number.POSITIVE_INFINITY;
    const width = this.list.clientWidth || this.root.clientWidth || 1280;
    return Math.max(1, Math.floor(width / ITEM_MIN_PX)) * BAR_ROWS;
  }

  /** Redraw: after alarm or pause changes, and once a second for the countdowns. */
  render(now = Date.now()): void {
    const groups = groupForBar(this.store.allAlarms);
    const layout = layoutBar(groups, this.capacity(), this.hold);
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const entry of layout.entries) {
      seen.add(entry.bed);
      let item = this.items.get(entry.bed);
      if (!item) {
        item = this.makeItem(entry.bed);
        this.items.set(entry.bed, item);
      }
      this.fill(item, entry, now);
      // Keep DOM order = sorted order without re-inserting unchanged nodes.
      const want: ChildNode | null = prev ? prev.nextSibling : this.list.firstChild;
      if (want !== item.root) this.list.insertBefore(item.root, want);
      prev = item.root;
    }
    for (const [bed, item] of this.items) {
      if (!seen.has(bed)) {
        item.root.remove();
        this.items.delete(bed);
      }
    }
    this.shown = layout.entries.map((e) => ({
      bed: e.bed,
      lead: e.alarms[0]?.id ?? this.hold?.find((h) => h.bed === e.bed)?.lead ?? '',
    }));
    // What does not fit is said plainly, never cut off silently.
    this.more.hidden = layout.more === 0 && !this.root.classList.contains('expanded');
    const hiddenAlarms = groups.filter((g) => !seen.has(g.bed)).reduce((n, g) => n + g.alarms.length, 0);
    setText(
      this.more,
      layout.more > 0
        ? `+${layout.more} more bed${layout.more > 1 ? 's' : ''} (${hiddenAlarms} alarm${hiddenAlarms > 1 ? 's' : ''}) — show all`
        : 'Show fewer',
    );
    this.more.dataset.more = String(layout.more);
    // Moved only when it is not already last: a node taken out and put back between a press
    // and its release loses the click (the once-a-second render made "+N more" miss clicks).
    if (this.more.hidden) this.more.remove();
    else if (this.list.lastChild !== this.more) this.list.append(this.more);
    this.calm.hidden = groups.length > 0;
    this.root.classList.toggle('has-alarms', groups.length > 0);
    this.root.dataset.beds = String(groups.length);

    const station = this.store.stationPause(now);
    // Audio pause works on a locked screen and with nobody logged in too (audited).
    this.pauseAll.hidden = !(this.permissions.has('audio_pause') || this.unattended);
    const confirming = !station && now < this.confirmUntil;
    setText(
      this.pauseAll,
      station
        ? `Audio paused ${formatCountdown(station.remainingMs)} · Resume`
        : confirming
          ? 'Confirm: pause ALL alarm audio 2 min'
          : 'Pause all audio…',
    );
    this.pauseAll.classList.toggle('paused', station !== null);
    this.pauseAll.classList.toggle('confirm', confirming);
  }

  /** Nobody can act at the station (locked, or not logged in): audio pause is still offered. */
  unattended = true;

  private makeItem(bedKey: string): Item {
    const root = document.createElement('div');
    root.dataset.bed = bedKey;
    const icon = document.createElement('span');
    icon.className = 'prio-icon';
    icon.setAttribute('aria-hidden', 'true');
    const bed = document.createElement('span');
    bed.className = 'alarm-bed';
    const text = document.createElement('span');
    text.className = 'alarm-item-text';
    const count = document.createElement('span');
    count.className = 'alarm-count-badge';
    const ack = button('alarm-ack', 'Acknowledge');
    const pause = button('alarm-pause secondary', 'Pause audio');
    root.append(icon, bed, text, count, ack, pause);
    root.addEventListener('click', (e) => {
      if (e.target instanceof HTMLButtonElement) return;
      document.dispatchEvent(new CustomEvent<OpenBed>(OPEN_BED_EVENT, { detail: { bed: bedKey } }));
    });
    ack.onclick = () => void this.act(api.acknowledgeAlarm(root.dataset.alarm ?? ''), ack.textContent ?? 'Acknowledge');
    pause.onclick = () => {
      const paused = this.store.pauseFor(bedKey)?.pause.bed === bedKey;
      void this.act(paused ? api.endAudioPause(bedKey) : api.audioPause(bedKey), paused ? 'Resume audio' : 'Audio pause');
    };
    return { root, icon, bed, text, count, ack, pause };
  }

  private fill(item: Item, entry: BarEntry, now: number): void {
    const alarms = entry.alarms;
    const a = alarms[0];
    if (entry.ended || a === undefined) {
      // Held in place while the pointer is on the bar; gone once it leaves.
      item.root.className = 'alarm-item ended';
      item.root.dataset.state = 'ended';
      item.root.dataset.alarm = '';
      item.root.dataset.count = '0';
      setText(item.icon, '');
      setText(item.text, 'alarm ended');
      item.count.hidden = true;
      item.ack.hidden = true;
      item.pause.hidden = true;
      return;
    }
    const pause = this.store.pauseFor(a.bed, now);
    const remaining = pause ? pause.remainingMs : null;
    const visual = alarmVisual(a, remaining);
    const cls = `alarm-item alarm-${a.priority} ${alarmFlash(a.priority, visual)} state-${visual}${a.technical ? ' technical' : ''}`;
    if (item.root.className !== cls) item.root.className = cls;
    item.root.dataset.state = visual;
    item.root.dataset.alarm = a.id;
    item.root.dataset.count = String(alarms.length);
    setText(item.icon, PRIORITY_ICON[a.priority] ?? '▲');
    const label = this.store.beds.find((b) => b.key === a.bed)?.label ?? (a.bed === '*/station' ? 'Station' : a.bed);
    setText(item.bed, label);
    setText(item.text, alarmLine(a, visual, remaining, pause ? pause.pause : null));
    setText(item.count, alarms.length > 1 ? formatMore(alarms.length - 1) : '');
    item.count.hidden = alarms.length < 2;
    item.ack.hidden = !(this.permissions.has('acknowledge_alarm') && canAcknowledge(a));
    setText(item.ack, acknowledgeLabel(a));
    item.pause.hidden = !this.permissions.has('audio_pause') && !this.unattended;
    setText(item.pause, pause?.pause.bed === a.bed ? 'Resume audio' : 'Pause audio');
  }

  private async act(p: Promise<unknown>, what: string): Promise<void> {
    try {
      await p;
      this.showError('');
    } catch (e) {
      this.showError(`${what}: ${apiError(e).message}`);
    }
  }

  private showError(text: string): void {
    this.error.textContent = text;
    clearTimeout(this.errorTimer);
    if (text) this.errorTimer = setTimeout(() => (this.error.textContent = ''), 8000);
  }
}
