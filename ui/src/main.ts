// Entry point: subscribes to the engine's frame stream, keeps the store and
// the views in step, and drives the waveforms from requestAnimationFrame.

import './style.css';
import { Channel, invoke } from '@tauri-apps/api/core';
import { getCurrentWindow } from '@tauri-apps/api/window';
import { decodeFrame, type Priority } from './frames';
import { AuthView } from './authview';
import { can, type AuthState } from './auth';
import { AlarmBar } from './alarmbar';
import { api } from './api';
import { offPagePriority, parseLayout, type Layout } from './alarmstate';
import { formatAlarmCount, formatBrokerWarnings, formatClock, formatConnState, formatError } from './format';
import { DetailView, fanOut } from './detail';
import { patientHeader } from './detailmath';
import { OPEN_BED_EVENT, OverviewView, type OpenBed } from './overview';
import { handoverPanel } from './printout';
import { RemoteView } from './remote';
import { session } from './session';
import { Store } from './store';
import { setLiveWard } from './stationadmin';
import { soundIndicator } from './alarmstate';

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from index.html`);
  return e;
}

const wardName = byId('ward-name');
const alarmCount = byId('alarm-count');
const connState = byId('conn-state');
const brokerBanner = byId('broker-banner');
const clock = byId('clock');
const soundState = byId('sound-state');

const view = new OverviewView(byId('ward-grid'));
// The bed detail screen takes the grid's place when a tile is clicked; both get the samples.
const detail = new DetailView(byId('content'), byId('side-panel'));
const store = new Store((bed, channel) => fanOut(view.waveTarget(bed, channel), detail.waveTarget(bed, channel)));
detail.bind(store);
// The remote patients' worklist takes the grid's place too; one of the two at a time.
const remote = new RemoteView(byId('content'), byId('side-panel'), byId('btn-remote') as HTMLButtonElement);
document.addEventListener(OPEN_BED_EVENT, (e) => {
  if (remote.isOpen) remote.close();
  detail.open((e as CustomEvent<OpenBed>).detail.bed);
});
byId('btn-remote').addEventListener('click', () => {
  if (remote.isOpen) detail.close();
});
// The device registry confirms a mapping against what the device sends now.
setLiveWard({
  beds: () => store.beds,
  values: (bed) => {
    const v = (code: string) => store.vital(bed, code)?.value ?? null;
    return { hr: v('HR'), spo2: v('SPO2'), rr: v('RR') };
  },
});
// The shift handover of the ward shown (print_report: the button follows the session, the
// backend checks it).
const handover = byId('btn-handover') as HTMLButtonElement;
handover.addEventListener('click', () => {
  const ward = store.beds[0]?.ward;
  if (ward) handoverPanel(ward, 12, Date.now());
});
const alarmBar = new AlarmBar(byId('alarm-bar'), byId('btn-pause-all') as HTMLButtonElement, store);
let authState: AuthState | null = null;
session.subscribe(({ state, error }) => {
  if (!error) {
    authState = state;
    // Nobody can act (locked, or not logged in): audio pause is still offered, and audited.
    alarmBar.unattended = !authState.user || authState.locked;
    alarmBar.setPermissions(authState.permissions ?? []);
    handover.hidden = !can(authState, 'print_report');
    renderSound();
  }
  // Read again with every read of the session (its poll included, failed or not), so an
  // admission shows within one poll and a lock masks the names at once.
  void refreshPatients();
});

/** Patient names on the tiles: the backend masks them (initials) when the station is locked. */
async function refreshPatients(): Promise<void> {
  try {
    const list = await api.listPatients();
    // The patient header: name (initials when locked), age, sex, pacemaker.
    view.setPatients(new Map(list.map((p) => [p.bed, patientHeader(p)])));
  } catch {
    // Names are a convenience on the overview; the bed label always identifies the tile.
  }
}

// ---- Beds per screen and paging. The choice is kept per workstation.
const LAYOUT_KEY = 'vigil.layout';
const layoutSelect = byId('layout-select') as HTMLSelectElement;
const pager = byId('pager');
const pageInfo = byId('page-info');
const pagePrev = byId('page-prev') as HTMLButtonElement;
const pageNext = byId('page-next') as HTMLButtonElement;
let layout: Layout = parseLayout(localStorage.getItem(LAYOUT_KEY));
let page = 0;
layoutSelect.value = String(layout);

function showPage(p: number): void {
  const pg = view.setPaging(layout, p);
  page = pg.page;
  renderPager();
}

/** Pager text and, on its buttons, the most urgent alarm of the beds not on this screen. */
function renderPager(): void {
  const pg = view.paging(store.beds.length);
  pager.hidden = pg.pages <= 1;
  setText(pageInfo, `${pg.page + 1} / ${pg.pages}`);
  pagePrev.disabled = pg.page === 0;
  pageNext.disabled = pg.page >= pg.pages - 1;
  const keys = store.beds.map((b) => b.key);
  const off = offPagePriority(keys, pg.start, pg.end, (k) => store.highestPriority(k));
  for (const b of [pagePrev, pageNext]) {
    for (const p of ['high', 'medium', 'low'] as const) b.classList.toggle(`alarm-${p}`, off === p);
  }
  pager.title = off ? `A ${off}-priority alarm on another page` : '';
}

layoutSelect.onchange = () => {
  layout = parseLayout(layoutSelect.value);
  localStorage.setItem(LAYOUT_KEY, String(layout));
  showPage(0);
};
pagePrev.onclick = () => showPage(page - 1);
pageNext.onclick = () => showPage(page + 1);

/** Wall-clock time the last frame arrived (null before the first). */
let lastFrameAt: number | null = null;
/** Why subscribing failed, shown as it is. */
let subscribeError: string | null = null;
/** The last frame could not be decoded (the error above says why). */
let badFrame = false;

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
  const warning = formatBrokerWarnings(store.engine);
  setText(brokerBanner, warning ?? '');
  if (brokerBanner.hidden !== (warning === null)) brokerBanner.hidden = warning === null;
}

function renderAlarmCount(): void {
  // Every alarm the station shows, the station's own technical ones included.
  const alarms = store.allAlarms;
  const top: Priority | undefined = (['high', 'medium', 'low'] as const).find((p) =>
    alarms.some((a) => a.priority === p),
  );
  setText(alarmCount, formatAlarmCount(alarms.length), top ? `alarm-count alarm-${top}` : 'alarm-count');
}

// ---- The alarm sound: played by the station itself (src-tauri/src/sound.rs) from start-up.
// The header shows its state at all times; the volume never goes below the station minimum.
const volumeBox = byId('volume-box');
const volume = byId('volume') as HTMLInputElement;
const volumeValue = byId('volume-value');
const volumeMsg = byId('volume-msg');

function renderSound(): void {
  const ind = soundIndicator(store.sound, store.stationPause());
  setText(soundState, ind.text, `sound-state sound-${ind.level}`);
  soundState.dataset.state = store.sound?.state ?? 'starting';
  soundState.dataset.bursts = String(store.sound?.bursts ?? 0);
  soundState.title = ind.title;
  const s = store.sound;
  if (s) {
    volume.min = String(s.min_volume);
    if (document.activeElement !== volume) volume.value = String(s.volume);
    setText(volumeValue, `${volume.value} %`);
  }
  volume.disabled = !(authState?.permissions ?? []).includes('audio_pause');
}
soundState.onclick = () => {
  volumeBox.hidden = !volumeBox.hidden;
};
volume.oninput = () => setText(volumeValue, `${volume.value} %`);
volume.onchange = () => {
  api.setAlarmVolume(Number(volume.value)).then(
    (v) => {
      volume.value = String(v);
      setText(volumeMsg, `Alarm volume ${v} %`);
    },
    (e) => setText(volumeMsg, formatError(e)),
  );
};

store.subscribe((changes) => {
  lastFrameAt = Date.now();
  view.update(store, changes);
  if (changes.alarms || changes.pauses || changes.beds) {
    alarmBar.render();
    renderPager();
  }
  detail.update(changes);
  if (changes.engine) wardName.textContent = store.engine?.ward ?? '';
  renderHeader();
  if (changes.alarms || changes.beds) renderAlarmCount();
  if (changes.sound || changes.pauses) renderSound();
});

async function subscribe(): Promise<void> {
  try {
    const ch = new Channel<ArrayBuffer>();
    ch.onmessage = (msg) => {
      try {
        const buf = msg instanceof ArrayBuffer ? msg : new Uint8Array(msg as ArrayLike<number>).buffer;
        const frame = decodeFrame(buf);
        if (badFrame) {
          badFrame = false;
          subscribeError = null;
        }
        store.apply(frame);
        if (frame.remote) remote.changed();
        noteFrame(buf.byteLength, frame);
      } catch (e) {
        // A frame that cannot be read is reported, never guessed at.
        badFrame = true;
        subscribeError = `Unreadable data from the engine: ${formatError(e)}`;
        renderHeader();
      }
    };
    await invoke('subscribe_ward', { onFrame: ch });
  } catch (e) {
    // No fallback data: the station must never show vitals it did not receive.
    subscribeError = formatError(e);
    renderHeader();
  }
}

/**
 * Counters read by the end-to-end tests and the frame-rate benchmark (never by the app):
 * animation frames drawn, frames received and their bytes, and how old the newest sample of
 * each waveform chunk was when it arrived (publish → window, station clock).
 */
const diag = {
  animationFrames: 0,
  framesReceived: 0,
  bytesReceived: 0,
  chunkAgeMs: [] as number[],
  traces: () => view.traceStats(),
  sound: () => store.sound,
  alarms: () => store.allAlarms,
  pauses: () => store.pauses,
};
(window as unknown as { __vigil: typeof diag }).__vigil = diag;

function noteFrame(bytes: number, frame: ReturnType<typeof decodeFrame>): void {
  diag.framesReceived++;
  diag.bytesReceived += bytes;
  const now = store.stationNow();
  for (const w of frame.waves) {
    const n = w.n ?? w.data.length;
    if (w.rate > 0) diag.chunkAgeMs.push(now - (w.t0 + ((n - 1) * 1000) / w.rate));
  }
  // Bounded: the benchmark reads and clears it; nobody else grows it forever.
  if (diag.chunkAgeMs.length > 20_000) diag.chunkAgeMs.splice(0, 10_000);
}

function animate(now: number): void {
  diag.animationFrames++;
  view.tick(now);
  detail.tick(now);
  requestAnimationFrame(animate);
}

// ---- Full screen: the station starts full screen (the backend asks for it); the choice to
// leave it is remembered on this workstation and applied at the next start.
const FULLSCREEN_KEY = 'vigil.fullscreen';
async function applyFullscreen(on: boolean): Promise<void> {
  try {
    await getCurrentWindow().setFullscreen(on);
    localStorage.setItem(FULLSCREEN_KEY, on ? '1' : '0');
  } catch {
    // No window manager to ask (a test X server): the window already covers the screen.
  }
}
byId('btn-fullscreen').onclick = () => {
  void getCurrentWindow()
    .isFullscreen()
    .then((on) => applyFullscreen(!on))
    .catch(() => undefined);
};
if (localStorage.getItem(FULLSCREEN_KEY) === '0') void applyFullscreen(false);

renderHeader();
setInterval(() => {
  renderHeader();
  // Countdowns of audio pauses, on the bar and the tiles.
  alarmBar.render();
  view.refresh(store);
  renderSound();
}, 1000);
requestAnimationFrame(animate);
void subscribe();
// Log-in, lock and admin. Independent of the ward stream: the overview above is subscribed
// and live whatever the session state. The session's one poll starts last, every view subscribed.
new AuthView().start();
session.start();
