// The alarm bar under the header: every active alarm of the station, highest
// priority first, with its state in words and the actions the user's role
// allows (acknowledge: charge nurse; audio pause: everyone on duty). The
// backend refuses what the role may not do anyway; the bar only hides it.
// Also the header's station-wide audio pause button.

import { api } from './api';
import { apiError, type Permission } from './auth';
import type { AlarmInfo } from './frames';
import { OPEN_BED_EVENT, type OpenBed } from './overview';
import type { Store } from './store';
import {
  alarmFlash,
  alarmLine,
  alarmVisual,
  canAcknowledge,
  formatCountdown,
  sortForBar,
} from './alarmstate';

interface Item {
  root: HTMLDivElement;
  bed: HTMLSpanElement;
  text: HTMLSpanElement;
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

export class AlarmBar {
  private readonly items = new Map<string, Item>();
  private readonly list: HTMLDivElement;
  private readonly calm: HTMLSpanElement;
  private readonly error: HTMLSpanElement;
  private permissions = new Set<Permission>();
  private errorTimer: ReturnType<typeof setTimeout> | undefined;

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
    this.error = document.createElement('span');
    this.error.className = 'alarm-bar-error';
    this.error.setAttribute('role', 'alert');
    this.root.append(this.calm, this.list, this.error);
    this.pauseAll.onclick = () => {
      const p = this.store.stationPause();
      void this.act(p ? api.endAudioPause(null) : api.audioPause(null), p ? 'Resume audio' : 'Audio pause');
    };
  }

  /** The permissions of the current session (from the backend's auth state). */
  setPermissions(perms: readonly Permission[]): void {
    this.permissions = new Set(perms);
    this.render();
  }

  /** Redraw: after alarm or pause changes, and once a second for the countdowns. */
  render(now = Date.now()): void {
    const alarms = sortForBar(this.store.allAlarms);
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const a of alarms) {
      seen.add(a.id);
      let item = this.items.get(a.id);
      if (!item) {
        item = this.makeItem(a);
        this.items.set(a.id, item);
      }
      this.fill(item, a, now);
      // Keep DOM order = sorted order without re-inserting unchanged nodes.
      const want: ChildNode | null = prev ? prev.nextSibling : this.list.firstChild;
      if (want !== item.root) this.list.insertBefore(item.root, want);
      prev = item.root;
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.root.remove();
        this.items.delete(id);
      }
    }
    this.calm.hidden = alarms.length > 0;
    this.root.classList.toggle('has-alarms', alarms.length > 0);

    const station = this.store.stationPause(now);
    this.pauseAll.hidden = !this.permissions.has('audio_pause');
    setText(this.pauseAll, station ? `Audio paused ${formatCountdown(station.remainingMs)} · Resume` : 'Audio pause (all)');
    this.pauseAll.classList.toggle('paused', station !== null);
  }

  private makeItem(a: AlarmInfo): Item {
    const root = document.createElement('div');
    root.dataset.alarm = a.id;
    root.dataset.bed = a.bed;
    const bed = document.createElement('span');
    bed.className = 'alarm-bed';
    const text = document.createElement('span');
    text.className = 'alarm-item-text';
    const ack = button('alarm-ack', 'Acknowledge');
    const pause = button('alarm-pause secondary', 'Pause audio');
    root.append(bed, text, ack, pause);
    root.addEventListener('click', (e) => {
      if (e.target instanceof HTMLButtonElement) return;
      document.dispatchEvent(new CustomEvent<OpenBed>(OPEN_BED_EVENT, { detail: { bed: root.dataset.bed ?? '' } }));
    });
    ack.onclick = () => void this.act(api.acknowledgeAlarm(root.dataset.alarm ?? ''), 'Acknowledge');
    pause.onclick = () => {
      const bedKey = root.dataset.bed ?? '';
      const paused = this.store.pauseFor(bedKey)?.pause.bed === bedKey;
      void this.act(paused ? api.endAudioPause(bedKey) : api.audioPause(bedKey), paused ? 'Resume audio' : 'Audio pause');
    };
    return { root, bed, text, ack, pause };
  }

  private fill(item: Item, a: AlarmInfo, now: number): void {
    const pause = this.store.pauseFor(a.bed, now);
    const remaining = pause ? pause.remainingMs : null;
    const visual = alarmVisual(a, remaining);
    const cls = `alarm-item alarm-${a.priority} ${alarmFlash(a.priority, visual)} state-${visual}${a.technical ? ' technical' : ''}`;
    if (item.root.className !== cls) item.root.className = cls;
    item.root.dataset.state = visual;
    const label = this.store.beds.find((b) => b.key === a.bed)?.label ?? a.bed;
    setText(item.bed, label);
    setText(item.text, alarmLine(a, visual, remaining));
    item.ack.hidden = !(this.permissions.has('acknowledge_alarm') && canAcknowledge(a));
    item.pause.hidden = !this.permissions.has('audio_pause');
    setText(item.pause, pause?.pause.bed === a.bed ? 'Resume audio' : 'Pause audio');
  }

  private async act(p: Promise<void>, what: string): Promise<void> {
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
