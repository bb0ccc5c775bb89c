// The ward overview: one tile per bed with two sweep waveforms, the large
// numerics and the alarm marking. DOM code lives here; the pure helpers
// (`gridShape`, `blockAlarmPriority`) are exported for tests.

import type { AlarmInfo, Priority } from './frames';
import {
  formatAlarmSummary,
  formatCondition,
  formatNibp,
  formatTime,
  formatUnit,
  formatValue,
  NO_READING,
} from './format';
import { PRIORITY_RANK, type Changes, type Store, type WaveTarget } from './store';
import { SweepRenderer, type SweepOptions } from './sweep';
import { ECG_RANGE, PLETH_RANGE, scaleFor } from './scale';
import { alarmFlash, alarmLine, alarmVisual, news2Badge, pageOf, PRIORITY_ICON, type Layout } from './alarmstate';
import { formatMore } from './format';

/** Seconds of signal across a waveform's width (25 mm/s on a ~4 m-readable tile; stated). */
const SWEEP_SECONDS = 6;

/** ECG lead II: fixed gain, green; the 1 mV calibration pulse shows the scale. */
const ECG_OPTIONS: SweepOptions = {
  rate: 500,
  sweepSeconds: SWEEP_SECONDS,
  color: '#00e676',
  range: ECG_RANGE,
};

/**
 * Plethysmogram on a fixed scale (not auto-scaled): falling perfusion shows as a smaller
 * wave. The oximeter's units (0–1 of full scale).
 */
const PLETH_OPTIONS: SweepOptions = {
  rate: 125,
  sweepSeconds: SWEEP_SECONDS,
  color: '#18ffff',
  range: PLETH_RANGE,
};

/** Displayed channels: wave-chunk channel name → canvas class and options. */
const WAVES: ReadonlyArray<{ channel: string; cls: string; label: string; opts: SweepOptions }> = [
  { channel: 'ECG_II', cls: 'wave-ecg', label: 'II', opts: ECG_OPTIONS },
  { channel: 'PLETH', cls: 'wave-pleth', label: 'Pleth', opts: PLETH_OPTIONS },
];

interface NumericSpec {
  cls: string;
  label: string;
  /** Vital codes shown in this block; alarms on them highlight it. */
  codes: readonly string[];
  defaultUnit: string;
  decimals: number;
}

const HR: NumericSpec = { cls: 'num-hr', label: 'HR', codes: ['HR'], defaultUnit: '/min', decimals: 0 };
const SPO2: NumericSpec = { cls: 'num-spo2', label: 'SpO₂', codes: ['SPO2'], defaultUnit: '%', decimals: 0 };
const RR: NumericSpec = { cls: 'num-rr', label: 'RR', codes: ['RR'], defaultUnit: '/min', decimals: 0 };
const NIBP: NumericSpec = {
  cls: 'num-nibp',
  label: 'NIBP',
  codes: ['NIBP_SYS', 'NIBP_DIA', 'NIBP_MEAN'],
  defaultUnit: 'mmHg',
  decimals: 0,
};
const TEMP: NumericSpec = { cls: 'num-temp', label: 'Temp', codes: ['TEMP'], defaultUnit: '°C', decimals: 1 };
const NUMERICS: readonly NumericSpec[] = [HR, SPO2, RR, NIBP, TEMP];

const PRIORITIES: readonly Priority[] = ['high', 'medium', 'low'];

/** Dispatched on `document` when a bed tile is clicked: `CustomEvent<OpenBed>`. */
export const OPEN_BED_EVENT = 'vigil:open-bed';
export interface OpenBed {
  bed: string;
}

/**
 * Columns × rows for `n` tiles in a width × height area: the shape whose
 * tiles are largest, measured as min(tile width / aspect, tile height);
 * ties go to fewer empty cells. 8 beds in 1280×752 → 4×2.
 */
export function gridShape(n: number, width: number, height: number, aspect = 1): { cols: number; rows: number } {
  if (n <= 0) return { cols: 1, rows: 1 };
  let best = { cols: 1, rows: n };
  let bestSize = -1;
  let bestEmpty = Number.POSITIVE_INFINITY;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const size = Math.min(width / cols / aspect, height / rows);
    const empty = cols * rows - n;
    if (size > bestSize + 1e-9 || (Math.abs(size - bestSize) <= 1e-9 && empty < bestEmpty)) {
      best = { cols, rows };
      bestSize = size;
      bestEmpty = empty;
    }
  }
  return best;
}

/** Tiles below this size (CSS px) use the compact arrangement. */
export const COMPACT_TILE = { width: 230, height: 240 };

/** Whether a tile of `width` × `height` CSS px is drawn compact. */
export function isCompact(width: number, height: number): boolean {
  return width < COMPACT_TILE.width || height < COMPACT_TILE.height;
}

/**
 * The priority with which a numeric block is highlighted: the highest among
 * the alarms on its vital codes (alarm code = vital code + "_LOW"/"_HIGH"…)
 * whose condition is present: a latched or unreviewed alarm marks the alarm
 * line, never a value that is back inside its limits.
 */
export function blockAlarmPriority(alarms: readonly AlarmInfo[], codes: readonly string[]): Priority | null {
  let best: Priority | null = null;
  for (const a of alarms) {
    if (a.state === 'latched' || a.state === 'unreviewed') continue;
    if (!codes.some((c) => a.code.startsWith(`${c}_`))) continue;
    if (best === null || PRIORITY_RANK[a.priority] > PRIORITY_RANK[best]) best = a.priority;
  }
  return best;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Sets text only when it differs, so steady values cost no DOM work. */
function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** Marks `e` with `${prefix}${p}` for the one active priority, removing the others. */
function markPriority(e: Element, prefix: string, p: Priority | null): void {
  for (const q of PRIORITIES) e.classList.toggle(`${prefix}${q}`, q === p);
}

class Numeric {
  readonly root: HTMLDivElement;
  readonly value: HTMLSpanElement;
  readonly unit: HTMLSpanElement;

  constructor(readonly spec: NumericSpec) {
    this.root = el('div', `num ${spec.cls}`);
    const head = el('div', 'num-head');
    head.append(el('span', 'label', spec.label));
    this.unit = el('span', 'unit', spec.defaultUnit);
    head.append(this.unit);
    this.value = el('span', 'value', NO_READING);
    this.root.append(head, this.value);
  }
}

/** A canvas with its sweep renderer. */
interface Trace {
  canvas: HTMLCanvasElement;
  renderer: SweepRenderer;
}

class BedTile {
  readonly root: HTMLDivElement;
  readonly traces = new Map<string, Trace>();
  private readonly label: HTMLSpanElement;
  private readonly patient: HTMLSpanElement;
  private readonly news2: HTMLSpanElement;
  private readonly status: HTMLSpanElement;
  private readonly alarmText: HTMLDivElement;
  private readonly numerics = new Map<NumericSpec, Numeric>();
  private readonly nibpTime: HTMLSpanElement;
  private readonly nibpSysDia: HTMLSpanElement;
  private readonly nibpMean: HTMLSpanElement;

  constructor(readonly key: string) {
    this.root = el('div', 'bed-tile');
    this.root.dataset.bed = key;
    // Opening a bed's detail is the app's business (main.ts); the tile only says which bed.
    this.root.addEventListener('click', () => {
      document.dispatchEvent(new CustomEvent<OpenBed>(OPEN_BED_EVENT, { detail: { bed: key } }));
    });

    const head = el('div', 'tile-head');
    this.label = el('span', 'bed-label');
    this.patient = el('span', 'patient-name');
    this.news2 = el('span', 'news2 news2-none');
    this.status = el('span', 'tile-status');
    head.append(this.label, this.patient, this.news2, this.status);
    this.alarmText = el('div', 'alarm-text');
    this.root.append(head, this.alarmText);

    for (const spec of NUMERICS) this.numerics.set(spec, new Numeric(spec));
    this.nibpTime = el('span', 'nibp-time');
    const nibp = this.numerics.get(NIBP)!;
    nibp.root.append(this.nibpTime);
    // sys/dia and the mean apart: compact tiles drop the mean rather than cut the value.
    this.nibpSysDia = el('span', 'nibp-sd', NO_READING);
    this.nibpMean = el('span', 'nibp-mean');
    nibp.value.replaceChildren(this.nibpSysDia, this.nibpMean);

    const [ecg, pleth] = WAVES.map((w) => this.makeWave(w.channel, w.cls, w.label, w.opts));
    const bottom = el('div', 'tile-bottom');
    bottom.append(...[RR, NIBP, TEMP].map((s) => this.numerics.get(s)!.root));
    this.root.append(ecg, this.numerics.get(HR)!.root, pleth, this.numerics.get(SPO2)!.root, bottom);
  }

  private makeWave(channel: string, cls: string, label: string, opts: SweepOptions): HTMLDivElement {
    const box = el('div', `wave ${cls}-box`);
    const canvas = el('canvas', cls);
    // The scale in words (gain, speed), and for the ECG the 1 mV calibration pulse.
    const cal = el('span', 'cal-pulse');
    cal.hidden = channel !== 'ECG_II';
    box.append(canvas, el('span', 'wave-label', label), cal, el('span', 'wave-scale'));
    const ctx = canvas.getContext('2d');
    if (ctx) this.traces.set(channel, { canvas, renderer: new SweepRenderer(ctx, opts) });
    return box;
  }

  /** The patient in the bed as the backend lists it (initials only while locked). */
  patientName = '';

  render(store: Store): void {
    const bed = store.beds.find((b) => b.key === this.key);
    setText(this.label, bed?.label ?? this.key);
    setText(this.patient, this.patientName);

    const commLost = store.commLost(this.key);
    const standby = store.isStandby(this.key);
    this.root.classList.toggle('comm-lost', commLost);
    this.root.classList.toggle('standby', standby);
    setText(
      this.status,
      standby
        ? 'STANDBY — alarms off'
        : commLost
          ? 'COMM LOST'
          : store.conditions(this.key).map(formatCondition).join(' · '),
    );

    const alarms = store.alarmsFor(this.key);
    const top = store.highestPriority(this.key);
    this.root.dataset.alarms = String(alarms.length);
    markPriority(this.root, 'alarm-', top);
    if (top) this.root.dataset.alarm = top;
    else delete this.root.dataset.alarm;
    // The tile's signal follows its most urgent alarm: flashing while active or audio
    // paused, steady once acknowledged or latched, the state always in words too.
    const first = alarms[0];
    const pause = store.pauseFor(this.key);
    const visual = first ? alarmVisual(first, pause ? pause.remainingMs : null) : null;
    for (const v of ['active', 'acknowledged', 'audio-paused', 'latched'] as const) {
      this.root.classList.toggle(`state-${v}`, v === visual);
    }
    for (const f of ['flash-2hz', 'flash-05hz', 'steady'] as const) {
      this.root.classList.toggle(f, first !== undefined && visual !== null && alarmFlash(first.priority, visual) === f);
    }
    if (visual) this.root.dataset.state = visual;
    else delete this.root.dataset.state;
    setText(
      this.alarmText,
      first && visual
        ? `${PRIORITY_ICON[first.priority] ?? ''} ${alarmLine(first, visual, pause ? pause.remainingMs : null, pause ? pause.pause : null)}${
            alarms.length > 1 ? ` · ${formatMore(alarms.length - 1)}` : ''
          }`
        : formatAlarmSummary(alarms),
    );
    const badge = news2Badge(store.news2(this.key));
    setText(this.news2, badge.text);
    if (this.news2.className !== badge.cls) this.news2.className = badge.cls;

    for (const [spec, n] of this.numerics) {
      markPriority(n.root, 'num-alarm-', blockAlarmPriority(alarms, spec.codes));
      const reading = store.vital(this.key, spec.codes[0]);
      setText(n.unit, reading ? formatUnit(reading.unit) : spec.defaultUnit);
      if (spec === NIBP) {
        const v = (code: string) => store.vital(this.key, code)?.value;
        // Values from a monitor we no longer hear from are not shown as current.
        const text = commLost ? NO_READING : formatNibp(v('NIBP_SYS'), v('NIBP_DIA'), v('NIBP_MEAN'));
        const cut = text.indexOf(' (');
        setText(this.nibpSysDia, cut < 0 ? text : text.slice(0, cut));
        setText(this.nibpMean, cut < 0 ? '' : text.slice(cut));
      } else if (commLost) {
        setText(n.value, NO_READING);
      } else {
        setText(n.value, formatValue(reading?.value, spec.decimals));
      }
    }
    const cuff = store.vital(this.key, 'NIBP_SYS');
    setText(this.nibpTime, !commLost && cuff && cuff.value !== null ? `@ ${formatTime(cuff.t)}` : '');
  }
}

/** The grid of bed tiles. */
export class OverviewView {
  private readonly tiles = new Map<string, BedTile>();
  private readonly empty: HTMLDivElement;
  private dpr = window.devicePixelRatio || 1;
  private readonly traceOf = new Map<Element, Trace>();
  private readonly canvasObserver = new ResizeObserver((entries) => {
    for (const e of entries) {
      const trace = this.traceOf.get(e.target);
      if (trace) this.fit(trace, e.contentRect.width, e.contentRect.height);
    }
  });
  private readonly gridObserver = new ResizeObserver(() => this.layout());
  private layoutChoice: Layout = 'auto';
  private page = 0;
  private slots = 1;
  private lastStore: Store | null = null;
  private patients: ReadonlyMap<string, string> = new Map();

  constructor(private readonly grid: HTMLElement) {
    this.empty = el('div', 'grid-empty', 'No beds in this ward');
    this.gridObserver.observe(grid);
  }

  /** The renderer for a bed's channel, or undefined if that channel is not shown. */
  waveTarget(bed: string, channel: string): WaveTarget | undefined {
    return this.tiles.get(bed)?.traces.get(channel)?.renderer;
  }

  /** Reflects a frame's changes in the DOM. */
  update(store: Store, changes: Changes): void {
    this.lastStore = store;
    if (changes.beds) this.rebuild(store);
    const all = changes.beds || changes.alarms || changes.devices || changes.news2 || changes.pauses;
    for (const [key, tile] of this.tiles) {
      if (all || changes.vitals.has(key)) tile.render(store);
    }
  }

  /** Patient names per bed key (from `list_patients`; masked by the backend when locked). */
  setPatients(names: ReadonlyMap<string, string>): void {
    this.patients = names;
    for (const [key, tile] of this.tiles) {
      tile.patientName = names.get(key) ?? '';
      if (this.lastStore) tile.render(this.lastStore);
    }
  }

  /** Per trace: cursor, samples waiting and dropped (diagnostics and the frame-rate benchmark). */
  traceStats(): Array<{ bed: string; channel: string; cursor: number; buffered: number; dropped: number; width: number }> {
    const out = [];
    for (const [bed, tile] of this.tiles) {
      for (const [channel, t] of tile.traces) {
        out.push({
          bed,
          channel,
          cursor: t.renderer.cursor,
          buffered: t.renderer.buffered,
          dropped: t.renderer.dropped,
          width: t.canvas.clientWidth,
        });
      }
    }
    return out;
  }

  /** Re-renders every tile (once a second: pause countdowns). Cheap: text is set only on change. */
  refresh(store: Store): void {
    for (const tile of this.tiles.values()) tile.render(store);
  }

  /** Beds per screen and the page shown; returns the page actually shown. */
  setPaging(layout: Layout, page: number): { page: number; pages: number; start: number; end: number } {
    this.layoutChoice = layout;
    this.page = page;
    if (this.lastStore) {
      this.rebuild(this.lastStore);
      this.refresh(this.lastStore);
    }
    return this.paging(this.lastStore?.beds.length ?? 0);
  }

  /** The current page of `beds` beds. */
  paging(beds: number): { page: number; pages: number; start: number; end: number } {
    return pageOf(beds, this.layoutChoice, this.page);
  }

  /** Animation-frame tick: advances every trace. */
  tick(now: number): void {
    const dpr = window.devicePixelRatio || 1;
    if (dpr !== this.dpr) {
      // Moved to a screen with another scale: refit every backing store.
      this.dpr = dpr;
      for (const t of this.traceOf.values()) this.fit(t, t.canvas.clientWidth, t.canvas.clientHeight);
    }
    for (const tile of this.tiles.values()) {
      for (const t of tile.traces.values()) t.renderer.frame(now);
    }
  }

  private rebuild(store: Store): void {
    const pg = pageOf(store.beds.length, this.layoutChoice, this.page);
    this.page = pg.page;
    this.slots = pg.slots;
    const shown = store.beds.slice(pg.start, pg.end);
    const keys = new Set(shown.map((b) => b.key));
    for (const [key, tile] of this.tiles) {
      if (keys.has(key)) continue;
      for (const t of tile.traces.values()) {
        this.canvasObserver.unobserve(t.canvas);
        this.traceOf.delete(t.canvas);
      }
      tile.root.remove();
      this.tiles.delete(key);
    }
    for (const b of shown) {
      let tile = this.tiles.get(b.key);
      if (!tile) {
        tile = new BedTile(b.key);
        tile.patientName = this.patients.get(b.key) ?? '';
        this.tiles.set(b.key, tile);
        for (const t of tile.traces.values()) {
          this.traceOf.set(t.canvas, t);
          this.canvasObserver.observe(t.canvas);
        }
      }
      this.grid.append(tile.root); // (re)appending keeps the bed-list order
    }
    if (this.tiles.size === 0) this.grid.append(this.empty);
    else this.empty.remove();
    this.layout();
  }

  private layout(): void {
    // Cells for the layout's slots, so tiles keep their size on a partly filled last page.
    const { cols, rows } = gridShape(Math.max(this.slots, this.tiles.size), this.grid.clientWidth, this.grid.clientHeight);
    // Small tiles (32 beds on a laptop-sized screen) get the compact tile: smaller fonts,
    // NIBP on the bottom line, so the big numbers stay whole rather than clipped.
    const compact = isCompact(this.grid.clientWidth / cols, this.grid.clientHeight / rows);
    this.grid.classList.toggle('compact', compact);
    this.grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
    this.grid.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
  }

  private fit(trace: Trace, cssWidth: number, cssHeight: number): void {
    trace.canvas.width = Math.round(cssWidth * this.dpr);
    trace.canvas.height = Math.round(cssHeight * this.dpr);
    const kind = trace.canvas.classList.contains('wave-ecg') ? 'ecg' : 'pleth';
    const fitted = scaleFor(kind, cssWidth, cssHeight);
    trace.renderer.setScale(fitted.sweepSeconds, fitted.range);
    trace.renderer.resize(cssWidth, cssHeight, this.dpr);
    // Label the scale the trace is drawn at, and size the 1 mV pulse to it.
    const box = trace.canvas.parentElement;
    const ecg = trace.canvas.classList.contains('wave-ecg');
    const sc = scaleFor(ecg ? 'ecg' : 'pleth', cssWidth, cssHeight);
    const label = box?.querySelector<HTMLElement>('.wave-scale');
    if (label) label.textContent = sc.text;
    const cal = box?.querySelector<HTMLElement>('.cal-pulse');
    if (cal && ecg) cal.style.height = `${Math.round(sc.mvPx)}px`;
  }
}
