// Entry point: subscribes to the engine's frame stream, keeps the store and
// the views in step, and drives the waveforms from requestAnimationFrame.

import './style.css';
import { Channel, invoke } from '@tauri-apps/api/core';
import type { Frame, Priority } from './frames';
import { AuthView } from './authview';
import { formatAlarmCount, formatClock, formatConnState, formatError } from './format';
import { DetailView, fanOut } from './detail';
import { OPEN_BED_EVENT, OverviewView, type OpenBed } from './overview';
import { Store } from './store';
import { AlarmSound, soundStateText, type SoundStatus } from './tones';

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from index.html`);
  return e;
}

const wardName = byId('ward-name');
const alarmCount = byId('alarm-count');
const connState = byId('conn-state');
const clock = byId('clock');
const soundState = byId('sound-state');

const view = new OverviewView(byId('ward-grid'));
// The bed detail screen takes the grid's place when a tile is clicked; both get the samples.
const detail = new DetailView(byId('content'), byId('side-panel'));
const store = new Store((bed, channel) => fanOut(view.waveTarget(bed, channel), detail.waveTarget(bed, channel)));
detail.bind(store);
document.addEventListener(OPEN_BED_EVENT, (e) => detail.open((e as CustomEvent<OpenBed>).detail.bed));

/** Wall-clock time the last frame arrived (null before the first). */
let lastFrameAt: number | null = null;
/** Why subscribing failed, shown as it is. */
let subscribeError: string | null = null;

/** Writes only on change: this runs for every frame (~20/s). */
function setText(e: HTMLElement, text: string, className?: string): void {
  if (e.textContent !== text) e.textContent = text;
  if (className !== undefined && e.className !== className) e.className = className;
}

function renderHeader(): void {
  const now = Date.now();
  setText(clock, formatClock(now));
  const conn = formatConnState(store.engine, subscribeError, lastFrameAt === null ? null : now - lastFrameAt);
  setText(connState, conn.text, `conn-${conn.level}`);
}

function renderAlarmCount(): void {
  const alarms = store.activeAlarms;
  const top: Priority | undefined = (['high', 'medium', 'low'] as const).find((p) =>
    alarms.some((a) => a.priority === p),
  );
  setText(alarmCount, formatAlarmCount(alarms.length), top ? `alarm-count alarm-${top}` : 'alarm-count');
}

/** Header notice while audio cannot play; the visual alarms never depend on it. */
function renderSoundState(s: SoundStatus): void {
  const text = soundStateText(s.state);
  soundState.hidden = text === null;
  // Louder styling when an alarm should be sounding but cannot.
  setText(soundState, text ?? '', s.wanted !== null && text !== null ? 'sound-off sound-missed' : 'sound-off');
}

const sound = new AlarmSound({ onStatus: renderSoundState });
// Browsers start audio only after a user gesture: the first click or key press anywhere.
sound.attach(document);

store.subscribe((changes) => {
  lastFrameAt = Date.now();
  view.update(store, changes);
  detail.update(changes);
  if (changes.engine) wardName.textContent = store.engine?.ward ?? '';
  renderHeader();
  if (changes.alarms || changes.beds) renderAlarmCount();
  // Every alarm the engine sent, not only those of displayed beds: an alarm
  // that cannot be seen must still be heard.
  if (changes.alarms) sound.update(store.allAlarms);
});

async function subscribe(): Promise<void> {
  try {
    const ch = new Channel<Frame>();
    ch.onmessage = (f) => store.apply(f);
    await invoke('subscribe_ward', { onFrame: ch });
  } catch (e) {
    // No fallback data: the station must never show vitals it did not receive.
    subscribeError = formatError(e);
    renderHeader();
  }
}

function animate(now: number): void {
  view.tick(now);
  detail.tick(now);
  requestAnimationFrame(animate);
}

renderHeader();
setInterval(renderHeader, 1000);
requestAnimationFrame(animate);
void subscribe();
// Log-in, lock and admin. Independent of the ward stream: the overview above is subscribed
// and live whatever the session state.
new AuthView().start();
