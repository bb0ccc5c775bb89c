// The bed detail screen: opens on `vigil:open-bed` in place of the ward grid (the header, the
// alarm count and the side panel stay). Tabs: Live (every channel at full resolution, numerics
// with their limits, the limits editor), Trends (uPlot), Review (full disclosure with a time
// cursor), Alarms (history, with the seconds before each alarm) and Patient (admit, discharge,
// transfer). Pure logic lives in detailmath.ts; rights are the backend's (auth_state lists the
// usable permissions, every command checks again).

import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from './api';
import { apiError, can, formatDateTime, type AuthState } from './auth';
import {
  checkLimitForm,
  validLocale,
  customRange,
  DISCLOSURE_HISTORY_MS,
  DISCLOSURE_WINDOW_MS,
  fanOut,
  formatTimeMs,
  keyStep,
  caliperText,
  limitBand,
  limitsText,
  alarmMarks,
  trendAxis,
  moveCursor,
  panWindow,
  presetRange,
  timeAtX,
  toLocalInput,
  trendData,
  TREND_BUCKETS,
  valueAt,
  type AlarmHistoryEntry,
  type Bounds,
  type LimitInfo,
  type PatientInfo,
  patientHeader,
  type ReviewState,
  type SamplesOut,
  type TimeRange,
  type TrendOut,
  type TrendPreset,
} from './detailmath';
import { drawStrip } from './disclosure';
import { h } from './dom';
import type { Priority } from './frames';
import { formatAlarmText, formatNibp, formatUnit, formatValue, lateNote, NO_READING } from './format';
import { blockAlarmPriority } from './overview';
import type { Changes, Store, WaveTarget } from './store';
import { SweepRenderer, type DisplayRange } from './sweep';
import { PLETH_RANGE, scaleFor } from './scale';
import { session, type SessionSnapshot } from './session';

export { fanOut };

/** Seconds across a live waveform of the detail screen. */
const SWEEP_SECONDS = 8;

interface ChannelSpec {
  channel: string;
  label: string;
  color: string;
  range: DisplayRange | 'auto';
  rate: number;
}

const CHANNELS: readonly ChannelSpec[] = [
  { channel: 'ECG_II', label: 'ECG II', color: '#00e676', range: { min: -1.2, max: 1.8 }, rate: 500 },
  { channel: 'ECG_V5', label: 'ECG V5', color: '#00e676', range: { min: -1.2, max: 1.8 }, rate: 500 },
  { channel: 'PLETH', label: 'Pleth', color: '#18ffff', range: PLETH_RANGE, rate: 125 },
  { channel: 'RESP', label: 'Resp', color: '#ffee58', range: 'auto', rate: 62.5 },
];

interface NumSpec {
  key: string;
  label: string;
  codes: readonly string[];
  /** Vital whose limits are shown. */
  limitsOf: string;
  unit: string;
  decimals: number;
  color: string;
}

const NUMS: readonly NumSpec[] = [
  { key: 'HR', label: 'HR', codes: ['HR'], limitsOf: 'HR', unit: '/min', decimals: 0, color: 'var(--ecg)' },
  { key: 'SPO2', label: 'SpO₂', codes: ['SPO2'], limitsOf: 'SPO2', unit: '%', decimals: 0, color: 'var(--spo2)' },
  { key: 'PR', label: 'PR', codes: ['PR'], limitsOf: 'PR', unit: '/min', decimals: 0, color: 'var(--spo2)' },
  { key: 'RR', label: 'RR', codes: ['RR'], limitsOf: 'RR', unit: '/min', decimals: 0, color: 'var(--rr)' },
  {
    key: 'NIBP',
    label: 'NIBP',
    codes: ['NIBP_SYS', 'NIBP_DIA', 'NIBP_MEAN'],
    limitsOf: 'NIBP_SYS',
    unit: 'mmHg',
    decimals: 0,
    color: 'var(--nibp)',
  },
  { key: 'TEMP', label: 'Temp', codes: ['TEMP'], limitsOf: 'TEMP', unit: '°C', decimals: 1, color: 'var(--temp)' },
];

interface TrendSpec {
  key: string;
  label: string;
  vitals: readonly string[];
  colors: readonly string[];
}

const TRENDS: readonly TrendSpec[] = [
  { key: 'hr', label: 'HR /min', vitals: ['HR'], colors: ['#00e676'] },
  { key: 'spo2', label: 'SpO₂ %', vitals: ['SPO2'], colors: ['#18ffff'] },
  { key: 'rr', label: 'RR /min', vitals: ['RR'], colors: ['#ffee58'] },
  {
    key: 'nibp',
    label: 'NIBP mmHg (sys / mean / dia)',
    vitals: ['NIBP_SYS', 'NIBP_MEAN', 'NIBP_DIA'],
    colors: ['#eceff1', '#b0bec5', '#90a4ae'],
  },
  { key: 'temp', label: 'Temp °C', vitals: ['TEMP'], colors: ['#ffab91'] },
];

type Tab = 'live' | 'trends' | 'review' | 'alarms' | 'patient';
const TABS: readonly { tab: Tab; label: string }[] = [
  { tab: 'live', label: 'Live' },
  { tab: 'trends', label: 'Trends' },
  { tab: 'review', label: 'Review' },
  { tab: 'alarms', label: 'Alarm history' },
  { tab: 'patient', label: 'Patient' },
];

const PRIORITIES: readonly Priority[] = ['high', 'medium', 'low'];

let uplotModule: Promise<typeof uPlot> | null = null;

/**
 * uPlot, loaded on first use: its module formats numbers with `navigator.language` when it is
 * evaluated, which throws where the system locale is "C" (no language tag). Loaded lazily, a
 * failure can only affect the trend charts, never the ward; and such a locale is replaced by
 * a valid tag for the page first.
 */
function loadUPlot(): Promise<typeof uPlot> {
  if (!uplotModule) {
    if (!validLocale(navigator.language)) {
      Object.defineProperty(navigator, 'language', { value: 'en-GB', configurable: true });
    }
    uplotModule = import('uplot').then((m) => m.default);
    uplotModule.catch(() => (uplotModule = null));
  }
  return uplotModule;
}

function markPriority(e: Element, prefix: string, p: Priority | null): void {
  for (const q of PRIORITIES) e.classList.toggle(`${prefix}${q}`, q === p);
}

function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

interface LiveRow {
  spec: ChannelSpec;
  root: HTMLDivElement;
  canvas: HTMLCanvasElement;
  renderer: SweepRenderer;
  target: WaveTarget;
  samples: number;
}

interface NumBlock {
  spec: NumSpec;
  root: HTMLDivElement;
  value: HTMLSpanElement;
  unit: HTMLSpanElement;
  limits: HTMLSpanElement;
  /** The last late reading of the vital, said as such (history only). */
  late: HTMLSpanElement;
}

export class DetailView {
  private store: Store | null = null;
  private bed: string | null = null;
  private tab: Tab = 'live';
  private auth: AuthState | null = null;
  private limits: LimitInfo[] = [];
  private patients: PatientInfo[] = [];
  /** Ends the session subscription (held while a bed is open). */
  private unsubscribe: (() => void) | null = null;
  private dpr = window.devicePixelRatio || 1;

  readonly root: HTMLElement;
  private readonly title: HTMLElement;
  private readonly patientLine: HTMLElement;
  private readonly alarmLine: HTMLElement;
  private readonly tabButtons = new Map<Tab, HTMLButtonElement>();
  private readonly panes = new Map<Tab, HTMLElement>();

  // Live
  private rows: LiveRow[] = [];
  private readonly wavesBox: HTMLElement;
  private readonly nums: NumBlock[] = [];
  private readonly limitsButton: HTMLButtonElement;
  private readonly limitsForm: HTMLFormElement;
  private readonly limitsMsg: HTMLElement;
  private readonly observer = new ResizeObserver((entries) => {
    for (const e of entries) {
      const row = this.rows.find((r) => r.canvas === e.target);
      if (row) this.fit(row, e.contentRect.width, e.contentRect.height);
    }
  });

  // Trends
  private trendRange: TimeRange | null = null;
  private trendPreset: TrendPreset | 'custom' = '1h';
  private charts: uPlot[] = [];
  private readonly trendBox: HTMLElement;
  private readonly trendStatus: HTMLElement;
  private trendSeq = 0;

  // Review
  private review: ReviewState | null = null;
  private reviewBounds: Bounds = { min: 0, max: 0 };
  private reviewData: SamplesOut | null = null;
  /** The other leads of the same window, by channel. */
  private leadData = new Map<string, SamplesOut>();
  private readonly leadsBox: HTMLElement;
  private reviewSeq = 0;
  private reviewTimer: number | undefined;
  private readonly reviewCanvas: HTMLCanvasElement;
  private readonly reviewReadout: HTMLElement;
  private readonly reviewStatus: HTMLElement;
  private readonly reviewSlider: HTMLInputElement;
  private readonly reviewChannel: HTMLSelectElement;

  // Alarm history
  private readonly alarmTable: HTMLTableSectionElement;
  private readonly alarmStatus: HTMLElement;
  private readonly alarmSpan: HTMLSelectElement;
  private alarmSeq = 0;

  // Patient
  private readonly patientInfo: HTMLElement;
  private readonly adtBox: HTMLElement;
  private readonly adtMsg: HTMLElement;
  private readonly adtTo: HTMLSelectElement;
  private dischargeArmed = false;

  constructor(parent: HTMLElement, before: Element | null) {
    this.title = h('h2', { id: 'detail-title' });
    this.patientLine = h('span', { id: 'detail-patient', class: 'detail-patient' });
    this.alarmLine = h('div', { id: 'detail-alarms', class: 'detail-alarms' });
    const close = h('button', { id: 'detail-close', type: 'button', class: 'secondary' }, '← Ward overview');
    close.onclick = () => this.close();
    const tabs = h('div', { class: 'tabs detail-tabs', role: 'tablist' });
    for (const t of TABS) {
      const b = h('button', { id: `dtab-${t.tab}`, type: 'button', class: 'tab', role: 'tab' }, t.label);
      b.onclick = () => this.show(t.tab);
      this.tabButtons.set(t.tab, b);
      tabs.append(b);
    }
    const head = h(
      'div',
      { class: 'detail-head' },
      close,
      this.title,
      this.patientLine,
      h('span', { class: 'spacer' }),
      tabs,
    );

    // ---- Live
    this.wavesBox = h('div', { class: 'detail-waves' });
    const numsBox = h('div', { class: 'detail-nums' });
    for (const spec of NUMS) {
      const value = h('span', { class: 'dnum-value' }, NO_READING);
      const unit = h('span', { class: 'dnum-unit' }, spec.unit);
      const limits = h('span', { class: 'dnum-limits' });
      const late = h('span', { class: 'dnum-late' });
      const root = h(
        'div',
        { class: 'dnum', 'data-vital': spec.key },
        h('div', { class: 'dnum-head' }, h('span', { class: 'dnum-label' }, spec.label), unit, limits),
        value,
        late,
      );
      root.style.color = spec.color;
      this.nums.push({ spec, root, value, unit, limits, late });
      numsBox.append(root);
    }
    this.limitsButton = h('button', { id: 'limits-edit', type: 'button' }, 'Edit alarm limits');
    this.limitsButton.onclick = () => this.editLimits(true);
    this.limitsForm = h('form', { id: 'limits-form', class: 'limits-form', hidden: true });
    this.limitsMsg = h('p', { id: 'limits-msg', class: 'panel-error' });
    const side = h('div', { class: 'detail-side' }, numsBox, this.limitsButton, this.limitsForm, this.limitsMsg);
    const live = h('div', { class: 'detail-pane detail-live', id: 'pane-live' }, this.wavesBox, side);

    // ---- Trends
    const rangeButtons = h('div', { class: 'range-buttons' });
    for (const p of ['1h', '8h', '24h', '72h'] as const) {
      const b = h('button', { type: 'button', class: 'secondary', 'data-range': p }, p.replace('h', ' h'));
      b.onclick = () => {
        this.trendPreset = p;
        void this.loadTrends(presetRange(p, Date.now()));
      };
      rangeButtons.append(b);
    }
    const from = h('input', { id: 'trend-from', type: 'datetime-local' });
    const to = h('input', { id: 'trend-to', type: 'datetime-local' });
    const apply = h('button', { id: 'trend-apply', type: 'button', class: 'secondary' }, 'Show');
    this.trendStatus = h('span', { id: 'trend-status', class: 'detail-status' });
    apply.onclick = () => {
      const r = customRange(from.value, to.value);
      if ('error' in r) {
        this.trendStatus.textContent = r.error;
        return;
      }
      this.trendPreset = 'custom';
      void this.loadTrends(r);
    };
    rangeButtons.append(h('span', { class: 'range-custom' }, 'Custom', from, '–', to, apply), this.trendStatus);
    this.trendBox = h('div', { class: 'trend-charts', id: 'trend-charts' });
    const trends = h('div', { class: 'detail-pane detail-trends', id: 'pane-trends' }, rangeButtons, this.trendBox);
    this.trendFrom = from;
    this.trendTo = to;

    // ---- Review
    this.reviewChannel = h('select', { id: 'review-channel' });
    for (const c of CHANNELS) this.reviewChannel.append(h('option', { value: c.channel }, c.label));
    this.reviewChannel.onchange = () => this.queueReview();
    const back = h('button', { id: 'review-back', type: 'button', class: 'secondary' }, '◀ 10 s');
    const fwd = h('button', { id: 'review-fwd', type: 'button', class: 'secondary' }, '10 s ▶');
    const now = h('button', { id: 'review-now', type: 'button', class: 'secondary' }, 'Latest');
    back.onclick = () => this.pan(-DISCLOSURE_WINDOW_MS);
    fwd.onclick = () => this.pan(DISCLOSURE_WINDOW_MS);
    now.onclick = () => this.startReview();
    this.reviewSlider = h('input', { id: 'review-slider', type: 'range', class: 'review-slider' });
    this.reviewSlider.oninput = () => {
      if (!this.review) return;
      this.setReview(panWindow(this.review, Number(this.reviewSlider.value) - this.review.start, DISCLOSURE_WINDOW_MS, this.reviewBounds));
    };
    this.reviewCanvas = h('canvas', { id: 'review-strip', class: 'review-strip', tabindex: '0' });
    // Several leads of the same window, under the chosen one, with the same cursors.
    this.leadsBox = h('div', { id: 'review-leads', class: 'review-leads' });
    const calipers = h('button', { id: 'review-calipers', type: 'button', class: 'secondary' }, 'Calipers');
    calipers.onclick = () => {
      if (!this.review) return;
      const c = this.review.caliper == null ? Math.min(this.review.cursor + 1000, this.review.start + DISCLOSURE_WINDOW_MS) : null;
      this.setReview({ ...this.review, caliper: c });
    };
    this.reviewReadout = h('div', { id: 'review-readout', class: 'review-readout' });
    this.reviewStatus = h('span', { id: 'review-status', class: 'detail-status' });
    this.bindReviewInput();
    const review = h(
      'div',
      { class: 'detail-pane detail-review', id: 'pane-review' },
      h('div', { class: 'review-bar' }, this.reviewChannel, back, fwd, now, calipers, this.reviewStatus),
      this.reviewCanvas,
      this.leadsBox,
      this.reviewSlider,
      this.reviewReadout,
      h(
        'p',
        { class: 'hint' },
        'Click the strip to place the cursor, Shift+click the second caliper (interval and rate), drag to scroll, ←/→ move the cursor (Shift: 1 s), Page Up/Down a whole window.',
      ),
    );

    // ---- Alarm history
    this.alarmSpan = h('select', { id: 'alarm-span' });
    for (const [v, label] of [
      ['3600000', 'Last hour'],
      ['28800000', 'Last 8 h'],
      ['86400000', 'Last 24 h'],
      ['259200000', 'Last 72 h'],
    ]) {
      this.alarmSpan.append(h('option', { value: v }, label));
    }
    this.alarmSpan.value = '86400000';
    this.alarmSpan.onchange = () => void this.loadAlarms();
    const reload = h('button', { id: 'alarm-reload', type: 'button', class: 'secondary' }, 'Refresh');
    reload.onclick = () => void this.loadAlarms();
    this.alarmStatus = h('span', { id: 'alarm-status', class: 'detail-status' });
    this.alarmTable = h('tbody');
    const alarms = h(
      'div',
      { class: 'detail-pane detail-alarm-history', id: 'pane-alarms' },
      h('div', { class: 'review-bar' }, this.alarmSpan, reload, this.alarmStatus),
      h(
        'table',
        { class: 'data alarm-history', id: 'alarm-history' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'Time'),
            h('th', {}, 'Priority'),
            h('th', {}, 'Alarm'),
            h('th', {}, 'Acknowledged'),
            h('th', {}, 'Ended'),
          ),
        ),
        this.alarmTable,
      ),
    );

    // ---- Patient
    this.patientInfo = h('div', { id: 'patient-info', class: 'patient-info' });
    this.adtMsg = h('p', { id: 'adt-msg', class: 'admin-msg' });
    this.adtTo = h('select', { id: 'adt-to' });
    this.adtBox = h('div', { id: 'adt', class: 'adt' });
    const patient = h('div', { class: 'detail-pane detail-patient-pane', id: 'pane-patient' }, this.patientInfo, this.adtBox, this.adtMsg);

    this.root = h('section', { id: 'bed-detail', class: 'bed-detail', hidden: true, 'aria-label': 'Bed detail' });
    this.root.append(head, this.alarmLine, live, trends, review, alarms, patient);
    for (const [tab, pane] of [
      ['live', live],
      ['trends', trends],
      ['review', review],
      ['alarms', alarms],
      ['patient', patient],
    ] as const) {
      this.panes.set(tab, pane);
    }
    parent.insertBefore(this.root, before);

    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !this.bed) return;
      if (!this.limitsForm.hidden) this.editLimits(false);
      else this.close();
    });
  }

  private readonly trendFrom: HTMLInputElement;
  private readonly trendTo: HTMLInputElement;

  bind(store: Store): void {
    this.store = store;
  }

  get openBed(): string | null {
    return this.bed;
  }

  /** The live renderer of a channel of the open bed (fed besides the overview tile's). */
  waveTarget(bed: string, channel: string): WaveTarget | undefined {
    if (bed !== this.bed) return undefined;
    return this.rows.find((r) => r.spec.channel === channel)?.target;
  }

  open(bed: string): void {
    if (this.bed === bed) return;
    if (this.bed) this.close();
    this.bed = bed;
    document.body.classList.add('detail-open');
    this.root.hidden = false;
    this.root.dataset.bed = bed;
    this.buildRows();
    this.limits = [];
    this.editLimits(false);
    this.render();
    this.show('live');
    this.unsubscribe = session.subscribe((s) => this.onSession(s));
    void this.loadLimits();
    void this.loadPatients();
  }

  close(): void {
    if (!this.bed) return;
    this.bed = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    window.clearTimeout(this.reviewTimer);
    for (const r of this.rows) this.observer.unobserve(r.canvas);
    this.rows = [];
    this.wavesBox.replaceChildren();
    this.destroyCharts();
    this.review = null;
    this.reviewData = null;
    this.root.hidden = true;
    delete this.root.dataset.bed;
    document.body.classList.remove('detail-open');
  }

  /** A frame's changes. */
  update(changes: Changes): void {
    if (!this.bed) return;
    if (changes.beds || changes.alarms || changes.devices || changes.vitals.has(this.bed)) this.render();
  }

  /** Animation frame: advances the live sweeps. */
  tick(now: number): void {
    if (!this.bed) return;
    const dpr = window.devicePixelRatio || 1;
    if (dpr !== this.dpr) {
      this.dpr = dpr;
      for (const r of this.rows) this.fit(r, r.canvas.clientWidth, r.canvas.clientHeight);
    }
    for (const r of this.rows) r.renderer.frame(now);
  }

  // ---- tabs and session -------------------------------------------------------------------

  private show(tab: Tab): void {
    this.tab = tab;
    for (const [t, b] of this.tabButtons) b.classList.toggle('active', t === tab);
    for (const [t, p] of this.panes) p.hidden = t !== tab;
    this.root.dataset.tab = tab;
    if (!this.historyAllowed(tab)) return;
    if (tab === 'trends' && !this.trendRange) void this.loadTrends(presetRange('1h', Date.now()));
    if (tab === 'review' && !this.review) this.startReview();
    if (tab === 'review' && this.review) this.drawReview();
    if (tab === 'alarms') void this.loadAlarms();
    if (tab === 'patient') void this.loadPatients();
  }

  /** History needs view_history: otherwise the pane says so (the backend would refuse). */
  private historyAllowed(tab: Tab): boolean {
    const pane = this.panes.get(tab);
    if (!pane || (tab !== 'trends' && tab !== 'review' && tab !== 'alarms')) return true;
    const ok = can(this.auth, 'view_history');
    pane.classList.toggle('no-right', !ok);
    pane.dataset.message = ok ? '' : 'Log in as a nurse or charge nurse to see the history of this bed.';
    return ok;
  }

  private onSession({ state, error }: SessionSnapshot): void {
    if (error) {
      this.auth = null;
      this.applyRights();
      return;
    }
    const changed =
      JSON.stringify(state.permissions) !== JSON.stringify(this.auth?.permissions) || state.masked !== this.auth?.masked;
    this.auth = state;
    if (changed && this.bed) {
      this.applyRights();
      void this.loadPatients();
      // Became allowed while looking at a history pane: load it now.
      if (this.historyAllowed(this.tab)) this.show(this.tab);
    }
  }

  private applyRights(): void {
    const limitsOk = can(this.auth, 'change_patient_limits');
    this.limitsButton.hidden = !limitsOk || !this.limitsForm.hidden || this.limits.length === 0;
    if (!limitsOk) this.editLimits(false);
    for (const t of ['trends', 'review', 'alarms'] as const) this.historyAllowed(t);
    this.renderPatient();
  }

  // ---- live -------------------------------------------------------------------------------

  private buildRows(): void {
    this.wavesBox.replaceChildren();
    this.rows = CHANNELS.map((spec) => {
      const canvas = h('canvas', { class: 'dwave-canvas' });
      const root = h(
        'div',
        { class: 'dwave', 'data-channel': spec.channel },
        canvas,
        h('span', { class: 'dwave-label' }, spec.label),
        h('span', { class: 'cal-pulse', hidden: !spec.channel.startsWith('ECG') }),
        h('span', { class: 'wave-scale' }),
      );
      root.style.setProperty('--wave', spec.color);
      const ctx = canvas.getContext('2d');
      const renderer = new SweepRenderer(
        ctx ?? (document.createElement('canvas').getContext('2d') as CanvasRenderingContext2D),
        { rate: spec.rate, sweepSeconds: SWEEP_SECONDS, color: spec.color, range: spec.range, lineWidth: 1.4 },
      );
      const row: LiveRow = {
        spec,
        root,
        canvas,
        renderer,
        samples: 0,
        target: {
          push: (values, rate, gapBefore) => {
            renderer.push(values, rate, gapBefore);
            if (row.samples === 0) root.dataset.live = '1';
            row.samples += values.length;
          },
        },
      };
      this.wavesBox.append(root);
      this.observer.observe(canvas);
      return row;
    });
  }

  private fit(row: LiveRow, w: number, hgt: number): void {
    row.canvas.width = Math.round(w * this.dpr);
    row.canvas.height = Math.round(hgt * this.dpr);
    // Stated clinical scale: standard speed and gain; pleth fixed; resp keeps its auto range.
    const kind = row.spec.channel.startsWith('ECG') ? 'ecg' : row.spec.channel === 'PLETH' ? 'pleth' : 'resp';
    const sc = scaleFor(kind, w, hgt);
    row.renderer.setScale(sc.sweepSeconds, kind === 'resp' ? undefined : sc.range);
    row.renderer.resize(w, hgt, this.dpr);
    const label = row.root.querySelector<HTMLElement>('.wave-scale');
    if (label) label.textContent = kind === 'resp' ? `auto scale · ${sc.text.split(' · ')[1]}` : sc.text;
    const cal = row.root.querySelector<HTMLElement>('.cal-pulse');
    if (cal) cal.style.height = `${Math.round(sc.mvPx)}px`;
  }

  private render(): void {
    const store = this.store;
    const bed = this.bed;
    if (!store || !bed) return;
    const info = store.beds.find((b) => b.key === bed);
    setText(this.title, info?.label ?? bed);
    const alarms = store.alarmsFor(bed);
    const top = store.highestPriority(bed);
    markPriority(this.alarmLine, 'alarm-', top);
    this.alarmLine.replaceChildren(
      ...(alarms.length
        ? alarms.map((a) => h('span', { class: `detail-alarm alarm-${a.priority}`, 'data-code': a.code }, formatAlarmText(a)))
        : [h('span', { class: 'detail-no-alarm' }, 'No active alarms')]),
    );
    const commLost = store.commLost(bed);
    this.root.classList.toggle('comm-lost', commLost);
    for (const n of this.nums) {
      markPriority(n.root, 'num-alarm-', blockAlarmPriority(alarms, n.spec.codes));
      const reading = store.vital(bed, n.spec.codes[0]);
      setText(n.unit, reading ? formatUnit(reading.unit) : n.spec.unit);
      let text: string;
      if (commLost) text = NO_READING;
      else if (n.spec.key === 'NIBP') {
        const v = (code: string) => store.vital(bed, code)?.value;
        text = formatNibp(v('NIBP_SYS'), v('NIBP_DIA'), v('NIBP_MEAN'));
      } else text = formatValue(reading?.value, n.spec.decimals);
      setText(n.value, text);
      setText(n.late, lateNote(store.lateVital(bed, n.spec.codes[0]), n.spec.decimals, Date.now()));
      setText(n.limits, this.limits.length ? limitsText(this.limits, n.spec.limitsOf) : '');
    }
  }

  private async loadLimits(): Promise<void> {
    const bed = this.bed;
    if (!bed) return;
    try {
      const limits = await api.bedLimits(bed);
      if (bed !== this.bed) return;
      this.limits = limits;
      this.limitsMsg.textContent = '';
    } catch (e) {
      this.limitsMsg.textContent = `Limits unavailable: ${apiError(e).message}`;
    }
    this.applyRights();
    this.render();
  }

  private editLimits(on: boolean): void {
    this.limitsForm.hidden = !on;
    this.panes.get('live')?.classList.toggle('editing', on);
    this.limitsMsg.textContent = '';
    this.limitsButton.hidden = on || !can(this.auth, 'change_patient_limits') || this.limits.length === 0;
    if (!on) {
      this.limitsForm.replaceChildren();
      return;
    }
    const inputs: { limit: LimitInfo; input: HTMLInputElement; err: HTMLElement }[] = [];
    const table = h('table', { class: 'data limits-table' });
    table.append(h('tr', {}, h('th', {}, 'Limit'), h('th', {}, 'Value'), h('th', {}, 'Allowed')));
    for (const l of this.limits) {
      const input = h('input', {
        type: 'text',
        inputmode: 'decimal',
        class: 'limit-input',
        'data-code': l.code,
        value: String(l.threshold),
        'aria-label': l.label,
      });
      const err = h('div', { class: 'limit-error' });
      inputs.push({ limit: l, input, err });
      table.append(
        h(
          'tr',
          { 'data-code': l.code },
          h('td', {}, `${'*'.repeat(l.priority === 'high' ? 3 : l.priority === 'medium' ? 2 : 1)} ${l.label}`),
          h('td', {}, input, err),
          h('td', { class: 'dim' }, `${l.min}–${l.max} ${formatUnit(l.unit)}`),
        ),
      );
    }
    const save = h('button', { id: 'limits-save', type: 'submit' }, 'Save limits');
    const cancel = h('button', { id: 'limits-cancel', type: 'button', class: 'secondary' }, 'Cancel');
    cancel.onclick = () => this.editLimits(false);
    this.limitsForm.replaceChildren(
      h('h3', {}, 'Alarm limits'),
      table,
      h('div', { class: 'actions' }, save, cancel),
    );
    const check = () => {
      const r = checkLimitForm(inputs.map((i) => ({ limit: i.limit, text: i.input.value })));
      for (const i of inputs) {
        const msg = r.errors.get(i.limit.code) ?? '';
        i.err.textContent = msg;
        i.input.classList.toggle('invalid', msg !== '');
      }
      return r;
    };
    // Once a problem is shown, it goes away as soon as it is corrected.
    this.limitsForm.onchange = () => {
      if (inputs.some((i) => i.err.textContent)) {
        check();
        if (!inputs.some((i) => i.err.textContent)) this.limitsMsg.textContent = '';
      }
    };
    this.limitsForm.onsubmit = (ev) => {
      ev.preventDefault();
      const { changes, errors } = check();
      if (errors.size) {
        this.limitsMsg.textContent = 'Please correct the marked limits.';
        return;
      }
      if (!changes.length) {
        this.editLimits(false);
        return;
      }
      const bed = this.bed;
      if (!bed) return;
      save.disabled = true;
      api
        .setBedLimits(bed, changes)
        .then((limits) => {
          if (bed !== this.bed) return;
          this.limits = limits;
          this.editLimits(false);
          this.limitsMsg.textContent = '';
          this.render();
          this.flash(`Limits saved: ${changes.map((c) => `${c.code} ${c.threshold}`).join(', ')}`);
        })
        .catch((e) => {
          save.disabled = false;
          this.limitsMsg.textContent = apiError(e).message;
        });
    };
  }

  private flash(text: string): void {
    const note = h('p', { id: 'limits-saved', class: 'admin-msg ok' }, text);
    this.limitsMsg.replaceWith(note);
    window.setTimeout(() => note.replaceWith(this.limitsMsg), 4000);
  }

  // ---- trends -----------------------------------------------------------------------------

  private destroyCharts(): void {
    for (const c of this.charts) c.destroy();
    this.charts = [];
    this.trendRange = null;
    this.trendBox.replaceChildren();
  }

  private async loadTrends(range: TimeRange): Promise<void> {
    const bed = this.bed;
    if (!bed) return;
    const seq = ++this.trendSeq;
    this.trendRange = range;
    this.trendFrom.value = toLocalInput(range.from);
    this.trendTo.value = toLocalInput(range.to);
    for (const b of this.panes.get('trends')?.querySelectorAll<HTMLButtonElement>('[data-range]') ?? []) {
      b.classList.toggle('active', b.dataset.range === this.trendPreset);
    }
    this.trendStatus.textContent = 'Loading…';
    try {
      const [results, history] = await Promise.all([
        Promise.all(
          TRENDS.map((t) => Promise.all(t.vitals.map((v) => api.trend(bed, v, range.from, range.to, TREND_BUCKETS)))),
        ),
        // Alarm marks on the trends (raises in the range).
        api.alarmHistory(bed, range.from, range.to).catch(() => [] as AlarmHistoryEntry[]),
      ]);
      const UPlot = await loadUPlot();
      if (seq !== this.trendSeq || bed !== this.bed) return;
      for (const c of this.charts) c.destroy();
      this.charts = [];
      this.trendBox.replaceChildren();
      TRENDS.forEach((spec, i) => this.chart(UPlot, spec, results[i], range, history));
      const bucket = results[0]?.[0]?.bucket_ms ?? 0;
      this.trendStatus.textContent = `${formatDateTime(range.from)} – ${formatDateTime(range.to)} · ${
        bucket >= 60_000 ? `${bucket / 60_000} min` : `${bucket / 1000} s`
      } per point (min–max band, mean line)`;
    } catch (e) {
      if (seq === this.trendSeq) this.trendStatus.textContent = apiError(e).message;
    }
  }

  private chart(
    UPlot: typeof uPlot,
    spec: TrendSpec,
    data: TrendOut[],
    range: TimeRange,
    history: readonly AlarmHistoryEntry[],
  ): void {
    const points = data.reduce((n, d) => n + d.points.length, 0);
    // Fixed axis per vital (widened only to show every reading), the alarm limits as a band,
    // and the alarms raised in the range as marks.
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const d of data) {
      for (const p of d.points) {
        lo = Math.min(lo, p.min);
        hi = Math.max(hi, p.max);
      }
    }
    const axis = trendAxis(spec.vitals[0], lo, hi);
    const band = limitBand(this.limits, spec.vitals[0]);
    const marks = alarmMarks(history, spec.vitals, range.from, range.to);
    const box = h('div', {
      class: 'trend-chart',
      'data-trend': spec.key,
      'data-points': String(points),
      'data-axis': axis.join(','),
      'data-limits': [band.low ?? '', band.high ?? ''].join(','),
      'data-marks': String(marks.length),
    });
    const title = h('div', { class: 'trend-title' }, spec.label);
    title.style.color = spec.colors[0];
    box.append(title);
    if (points === 0) box.append(h('div', { class: 'trend-empty' }, 'No readings in this time range'));
    this.trendBox.append(box);
    const width = Math.max(300, this.trendBox.clientWidth - 8);
    const series: uPlot.Series[] = [{}];
    const bands: uPlot.Band[] = [];
    data.forEach((d, i) => {
      const color = spec.colors[i] ?? '#eceff1';
      const nibp = d.vital.startsWith('NIBP');
      const base = series.length;
      series.push(
        { label: `${d.vital} min`, stroke: 'transparent', points: { show: false } },
        { label: `${d.vital} max`, stroke: 'transparent', points: { show: false } },
        {
          label: d.vital,
          stroke: color,
          width: 1.5,
          // NIBP: discrete measurements, always as points; otherwise uPlot shows points
          // where they are sparse enough to see (a lone reading between gaps included).
          points: nibp ? { show: true, size: 5, fill: color, stroke: color } : { size: 4, fill: color, stroke: color },
        },
      );
      if (!nibp) bands.push({ series: [base + 1, base], fill: hexAlpha(color, 0.22) });
    });
    const axisStyle = { stroke: '#8a94a6', grid: { stroke: '#1c2533', width: 1 }, ticks: { stroke: '#263040', width: 1 } };
    const xAxis = { ...axisStyle, values: (_u: uPlot, splits: number[]) => axisTimes(splits, range) };
    const prioColour: Record<string, string> = { high: '#ff1744', medium: '#ffd600', low: '#00a0c0' };
    const draw = (u: uPlot): void => {
      const ctx = u.ctx;
      const { left, top, width, height } = u.bbox;
      ctx.save();
      // Outside the limits: tinted; the limits themselves dashed.
      for (const [v, above] of [
        [band.high, true],
        [band.low, false],
      ] as const) {
        if (v === null) continue;
        const y = u.valToPos(v, 'y', true);
        ctx.fillStyle = 'rgba(255, 23, 68, 0.10)';
        if (above) ctx.fillRect(left, top, width, Math.max(0, y - top));
        else ctx.fillRect(left, y, width, Math.max(0, top + height - y));
        ctx.strokeStyle = 'rgba(255, 120, 120, 0.8)';
        ctx.setLineDash([6, 4]);
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(left + width, y);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      for (const m of marks) {
        const x = u.valToPos(m.t / 1000, 'x', true);
        ctx.strokeStyle = prioColour[m.priority] ?? '#ff1744';
        ctx.fillStyle = ctx.strokeStyle;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
        ctx.beginPath();
        ctx.moveTo(x - 5, top);
        ctx.lineTo(x + 5, top);
        ctx.lineTo(x, top + 8);
        ctx.fill();
      }
      ctx.restore();
    };
    const opts: uPlot.Options = {
      width,
      height: 130,
      series,
      bands,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [range.from / 1000, range.to / 1000] },
        y: { range: () => [axis[0], axis[1]] },
      },
      axes: [xAxis, { ...axisStyle, size: 44 }],
      hooks: { draw: [draw] },
    };
    const aligned = trendData(data) as uPlot.AlignedData;
    this.charts.push(new UPlot(opts, aligned, box));
  }

  // ---- full-disclosure review -------------------------------------------------------------

  private startReview(): void {
    // Up to a second ago: the last chunk may still be on its way to the database.
    const max = Date.now() - 1000;
    this.reviewBounds = { min: max - DISCLOSURE_HISTORY_MS, max };
    this.reviewSlider.min = String(this.reviewBounds.min);
    this.reviewSlider.max = String(max - DISCLOSURE_WINDOW_MS);
    this.reviewSlider.step = '1000';
    const start = max - DISCLOSURE_WINDOW_MS;
    this.setReview({ start, cursor: max - 1000 });
  }

  private pan(deltaMs: number): void {
    if (this.review) this.setReview(panWindow(this.review, deltaMs, DISCLOSURE_WINDOW_MS, this.reviewBounds));
  }

  private setReview(s: ReviewState): void {
    const moved = !this.review || this.review.start !== s.start;
    this.review = s;
    this.reviewSlider.value = String(s.start);
    this.reviewCanvas.dataset.start = String(Math.round(s.start));
    this.reviewCanvas.dataset.cursor = String(Math.round(s.cursor));
    if (moved) this.queueReview();
    this.drawReview();
  }

  private queueReview(): void {
    window.clearTimeout(this.reviewTimer);
    this.reviewTimer = window.setTimeout(() => void this.loadReview(), 120);
  }

  private async loadReview(): Promise<void> {
    const bed = this.bed;
    const s = this.review;
    if (!bed || !s) return;
    const seq = ++this.reviewSeq;
    const channel = this.reviewChannel.value;
    this.reviewStatus.textContent = 'Loading…';
    const from = Math.floor(s.start);
    const to = Math.ceil(s.start + DISCLOSURE_WINDOW_MS);
    const others = CHANNELS.filter((c) => c.channel !== channel);
    // The other leads load beside the chosen one; one missing never hides the others.
    const leads = Promise.all(others.map((c) => api.samples(bed, c.channel, from, to).catch(() => null)));
    try {
      const data = await api.samples(bed, channel, from, to);
      const more = await leads;
      if (seq !== this.reviewSeq || bed !== this.bed) return;
      this.reviewData = data;
      this.leadData = new Map();
      others.forEach((c, i) => {
        const d = more[i];
        if (d) this.leadData.set(c.channel, d);
      });
      const n = data.segments.reduce((k, g) => k + g.values.length, 0);
      this.reviewCanvas.dataset.samples = String(n);
      this.reviewCanvas.dataset.gaps = String(data.gaps.length);
      this.reviewStatus.textContent = data.gaps.length
        ? `${n} samples · ${data.gaps.length} gap${data.gaps.length > 1 ? 's' : ''}`
        : `${n} samples`;
      this.drawReview();
    } catch (e) {
      if (seq === this.reviewSeq) this.reviewStatus.textContent = apiError(e).message;
    }
  }

  private drawReview(): void {
    const s = this.review;
    if (!s || this.tab !== 'review') return;
    const spec = CHANNELS.find((c) => c.channel === this.reviewChannel.value) ?? CHANNELS[0];
    const data = this.reviewData && this.reviewData.channel === spec.channel ? this.reviewData : null;
    drawStrip(this.reviewCanvas, data, s.start, DISCLOSURE_WINDOW_MS, {
      color: spec.color,
      range: spec.range,
      cursor: s.cursor,
      cursor2: s.caliper ?? null,
    });
    // The other leads, same window and cursors.
    const others = CHANNELS.filter((c) => c.channel !== spec.channel);
    if (this.leadsBox.childElementCount !== others.length || this.leadsBox.dataset.first !== spec.channel) {
      this.leadsBox.dataset.first = spec.channel;
      this.leadsBox.replaceChildren(
        ...others.map((c) =>
          h(
            'div',
            { class: 'review-lead-row' },
            h('span', { class: 'review-lead-label' }, c.label),
            h('canvas', { class: 'review-lead', 'data-channel': c.channel }),
          ),
        ),
      );
    }
    for (const c of others) {
      const cv = this.leadsBox.querySelector<HTMLCanvasElement>(`canvas[data-channel="${c.channel}"]`);
      if (!cv) continue;
      const d = this.leadData.get(c.channel) ?? null;
      cv.dataset.samples = String(d ? d.segments.reduce((k, g) => k + g.values.length, 0) : 0);
      drawStrip(cv, d, s.start, DISCLOSURE_WINDOW_MS, {
        color: c.color,
        range: c.range,
        cursor: s.cursor,
        cursor2: s.caliper ?? null,
      });
    }
    const v = valueAt(data, s.cursor);
    const unit = data?.unit ? formatUnit(data.unit) : '';
    const ms = String(new Date(s.cursor).getMilliseconds()).padStart(3, '0');
    const cal = s.caliper == null ? '' : ` · calipers ${caliperText(s.cursor, s.caliper).text}`;
    this.reviewReadout.textContent = `Cursor ${formatDateTime(s.cursor)}.${ms} · ${spec.label} ${
      v === null ? 'no signal' : `${v.toFixed(3)}${unit && unit !== '1' ? ` ${unit}` : ''}`
    }${cal} · window ${formatDateTime(s.start)} – ${formatTimeMs(s.start + DISCLOSURE_WINDOW_MS)}`;
    this.reviewCanvas.dataset.caliper = s.caliper == null ? '' : String(Math.round(s.caliper));
  }

  private bindReviewInput(): void {
    const c = this.reviewCanvas;
    let down: { x: number; start: ReviewState; moved: boolean } | null = null;
    c.addEventListener('pointerdown', (e) => {
      if (!this.review) return;
      c.setPointerCapture(e.pointerId);
      c.focus();
      down = { x: e.offsetX, start: this.review, moved: false };
    });
    c.addEventListener('pointermove', (e) => {
      if (!down || !this.review) return;
      const dx = e.offsetX - down.x;
      if (Math.abs(dx) < 3 && !down.moved) return;
      down.moved = true;
      const dt = -(dx / Math.max(1, c.clientWidth)) * DISCLOSURE_WINDOW_MS;
      this.setReview(panWindow(down.start, dt, DISCLOSURE_WINDOW_MS, this.reviewBounds));
    });
    c.addEventListener('pointerup', (e) => {
      if (!down || !this.review) return;
      if (!down.moved) {
        const t = timeAtX(e.offsetX, c.clientWidth, this.review.start, DISCLOSURE_WINDOW_MS);
        // Shift+click: the second caliper; a click: the cursor.
        if (e.shiftKey) this.setReview({ ...this.review, caliper: t });
        else this.setReview({ ...this.review, start: this.review.start, cursor: t });
      }
      down = null;
    });
    c.addEventListener('keydown', (e) => {
      if (!this.review) return;
      const step = keyStep(e.key, e.shiftKey, DISCLOSURE_WINDOW_MS);
      if (!step) return;
      e.preventDefault();
      if (step.cursor !== undefined) this.setReview(moveCursor(this.review, step.cursor, DISCLOSURE_WINDOW_MS, this.reviewBounds));
      if (step.pan !== undefined) this.pan(step.pan);
    });
  }

  // ---- alarm history ----------------------------------------------------------------------

  private async loadAlarms(): Promise<void> {
    const bed = this.bed;
    if (!bed) return;
    const seq = ++this.alarmSeq;
    const to = Date.now();
    const from = to - Number(this.alarmSpan.value);
    this.alarmStatus.textContent = 'Loading…';
    try {
      const rows = await api.alarmHistory(bed, from, to);
      if (seq !== this.alarmSeq || bed !== this.bed) return;
      this.alarmTable.replaceChildren(...rows.flatMap((r) => this.alarmRow(bed, r)));
      this.alarmStatus.textContent = rows.length
        ? `${rows.length} alarm${rows.length > 1 ? 's' : ''} · click one to see the 10 s before it`
        : 'No alarms in this time range';
    } catch (e) {
      if (seq === this.alarmSeq) this.alarmStatus.textContent = apiError(e).message;
    }
  }

  private alarmRow(bed: string, r: AlarmHistoryEntry): HTMLTableRowElement[] {
    const ack = r.acknowledged_by
      ? `${r.acknowledged_by} · ${formatTimeMs(r.acknowledged_ms ?? r.t_ms).slice(0, 8)}`
      : '—';
    const ended = r.resolved_ms ? formatTimeMs(r.resolved_ms).slice(0, 8) : 'ongoing';
    const tr = h(
      'tr',
      { class: `alarm-row prio-${r.priority}`, 'data-code': r.code, 'data-t': String(r.t_ms), tabindex: '0' },
      h('td', { class: 'time' }, formatDateTime(r.t_ms)),
      h('td', { class: `prio prio-${r.priority}` }, `${r.marker} ${r.priority}`),
      h('td', {}, r.message),
      h('td', {}, ack),
      h('td', {}, ended),
    );
    const detail = h('tr', { class: 'alarm-snippet', hidden: true });
    const cell = h('td', { colspan: '5' });
    detail.append(cell);
    const toggle = () => {
      detail.hidden = !detail.hidden;
      tr.classList.toggle('open', !detail.hidden);
      if (!detail.hidden && !cell.childElementCount) void this.snippet(bed, r, cell);
    };
    tr.onclick = toggle;
    tr.onkeydown = (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        toggle();
      }
    };
    return [tr, detail];
  }

  /** ECG II and pleth from 10 s before the alarm to 2 s after it, the alarm time marked. */
  private async snippet(bed: string, r: AlarmHistoryEntry, cell: HTMLElement): Promise<void> {
    const from = r.t_ms - 10_000;
    const span = 12_000;
    const strips = CHANNELS.filter((c) => c.channel === 'ECG_II' || c.channel === 'PLETH').map((spec) => {
      const canvas = h('canvas', { class: 'snippet-strip', 'data-channel': spec.channel });
      cell.append(h('div', { class: 'snippet' }, h('span', { class: 'snippet-label' }, spec.label), canvas));
      return { spec, canvas };
    });
    cell.append(
      h('div', { class: 'hint' }, `${formatTimeMs(from).slice(0, 8)} – ${formatTimeMs(from + span).slice(0, 8)} · red line: alarm raised`),
    );
    for (const { spec, canvas } of strips) {
      try {
        const data = await api.samples(bed, spec.channel, from, from + span);
        canvas.dataset.samples = String(data.segments.reduce((k, g) => k + g.values.length, 0));
        drawStrip(canvas, data, from, span, { color: spec.color, range: spec.range, marker: r.t_ms });
      } catch (e) {
        canvas.replaceWith(h('span', { class: 'panel-error' }, apiError(e).message));
      }
    }
  }

  // ---- patient ----------------------------------------------------------------------------

  private async loadPatients(): Promise<void> {
    try {
      this.patients = await api.listPatients();
    } catch (e) {
      this.adtMsg.textContent = apiError(e).message;
    }
    this.renderPatient();
  }

  private renderPatient(): void {
    const bed = this.bed;
    if (!bed) return;
    const p = this.patients.find((x) => x.bed === bed);
    const standby = this.store?.isStandby(bed) ?? false;
    setText(
      this.patientLine,
      (p ? (p.masked ? patientHeader(p) : `${patientHeader(p)} · MRN ${p.mrn}`) : 'No patient admitted') +
        (standby ? ' · STANDBY — alarms off' : ''),
    );
    this.patientInfo.replaceChildren(
      p
        ? h(
            'dl',
            { class: 'patient-facts' },
            h('dt', {}, 'Name'),
            h('dd', { id: 'patient-name' }, p.name),
            h('dt', {}, 'MRN'),
            h('dd', {}, p.masked ? 'hidden while locked or logged out' : p.mrn),
            h('dt', {}, 'Date of birth'),
            h('dd', {}, p.masked ? 'hidden while locked or logged out' : `${p.dob ?? '–'}${typeof p.age === 'number' ? ` (${p.age} y)` : ''}`),
            h('dt', {}, 'Sex'),
            h('dd', {}, p.sex ?? 'U'),
            h('dt', {}, 'Pacemaker'),
            h('dd', { id: 'patient-pacer' }, p.pacemaker ? 'yes' : 'no'),
            h('dt', {}, 'Admitted'),
            h('dd', {}, formatDateTime(p.admitted_ms)),
          )
        : h('p', { id: 'patient-name', class: 'hint' }, 'No patient admitted to this bed.'),
    );
    if (!can(this.auth, 'admit_discharge_transfer')) {
      this.adtBox.replaceChildren();
      return;
    }
    if (!p) {
      // Two identifiers (MRN and date of birth), and the header the nurse checks.
      const mrn = h('input', { id: 'adt-mrn', autocomplete: 'off', required: true });
      const name = h('input', { id: 'adt-name', autocomplete: 'off', required: true });
      const dob = h('input', { id: 'adt-dob', type: 'date', required: true });
      const sex = h('select', { id: 'adt-sex' });
      for (const [v, label] of [
        ['U', 'Unknown'],
        ['F', 'Female'],
        ['M', 'Male'],
        ['X', 'Other'],
      ]) {
        sex.append(h('option', { value: v }, label));
      }
      const pacer = h('input', { id: 'adt-pacer', type: 'checkbox' });
      const admit = h('button', { id: 'adt-admit', type: 'submit' }, 'Admit');
      const form = h(
        'form',
        { class: 'panel-form adt-form' },
        h('h3', {}, 'Admit'),
        labelled('MRN', mrn),
        labelled('Date of birth', dob),
        labelled('Name', name),
        labelled('Sex', sex),
        h('label', { class: 'check' }, pacer, 'Pacemaker'),
        admit,
      );
      form.onsubmit = (e) => {
        e.preventDefault();
        const patient = { mrn: mrn.value, name: name.value, dob: dob.value, sex: sex.value, pacemaker: pacer.checked };
        void this.adt(() => api.admitPatient(bed, patient), 'Admitted');
      };
      this.adtBox.replaceChildren(form, this.standbyBox(bed));
      return;
    }
    const occupied = new Set(this.patients.map((x) => x.bed));
    this.adtTo.replaceChildren(
      ...(this.store?.beds ?? [])
        .filter((b) => b.key !== bed && !occupied.has(b.key))
        .map((b) => h('option', { value: b.key }, b.label)),
    );
    const transfer = h('button', { id: 'adt-transfer', type: 'button' }, 'Transfer');
    transfer.onclick = () => void this.adt(() => api.transferPatient(bed, this.adtTo.value), 'Transferred');
    const discharge = h('button', { id: 'adt-discharge', type: 'button', class: 'danger' }, 'Discharge…');
    this.dischargeArmed = false;
    discharge.onclick = () => {
      if (!this.dischargeArmed) {
        this.dischargeArmed = true;
        discharge.textContent = 'Confirm discharge';
        return;
      }
      void this.adt(() => api.dischargePatient(bed), 'Discharged');
    };
    this.adtBox.replaceChildren(
      h('h3', {}, 'Transfer to'),
      h('div', { class: 'actions' }, this.adtTo, transfer),
      h('h3', {}, 'Discharge'),
      h('div', { class: 'actions' }, discharge),
      this.standbyBox(bed),
    );
  }

  /** Standby (no patient: physiological alarms off) or back to monitoring, for the bed. */
  private standbyBox(bed: string): HTMLElement {
    const on = this.store?.isStandby(bed) ?? false;
    const b = h(
      'button',
      { id: 'standby-toggle', type: 'button', class: on ? '' : 'secondary' },
      on ? 'Resume monitoring (alarms on)' : 'Standby (no patient: alarms off)',
    );
    b.onclick = () => {
      api.setStandby(bed, !on).then(
        () => {
          this.adtMsg.className = 'admin-msg ok';
          this.adtMsg.textContent = on ? 'Monitoring resumed' : 'Bed in standby: physiological alarms off';
          window.setTimeout(() => this.renderPatient(), 1500);
        },
        (e) => {
          this.adtMsg.className = 'admin-msg error';
          this.adtMsg.textContent = apiError(e).message;
        },
      );
    };
    return h('div', { class: 'standby-box' }, h('h3', {}, 'Monitoring'), h('div', { class: 'actions' }, b));
  }

  private async adt(work: () => Promise<PatientInfo>, verb: string): Promise<void> {
    this.adtMsg.className = 'admin-msg';
    try {
      const p = await work();
      this.adtMsg.textContent = `${verb}: ${p.name} (${p.bed})`;
      this.adtMsg.className = 'admin-msg ok';
    } catch (e) {
      this.adtMsg.textContent = apiError(e).message;
      this.adtMsg.className = 'admin-msg error';
    }
    await this.loadPatients();
    // A discharge or transfer changes the bed's limits (they go with the patient).
    await this.loadLimits();
  }
}

/** 24-hour axis labels: "14:05", "14:05:30" for short spans, with the date past a day. */
function axisTimes(splits: number[], range: TimeRange): string[] {
  const span = range.to - range.from;
  const p = (n: number) => String(n).padStart(2, '0');
  return splits.map((sec) => {
    const d = new Date(sec * 1000);
    const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
    if (span <= 30 * 60_000) return `${hm}:${p(d.getSeconds())}`;
    return span > 24 * 3_600_000 ? `${p(d.getDate())}.${p(d.getMonth() + 1)}. ${hm}` : hm;
  });
}

function labelled(label: string, input: HTMLElement): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

/** "#rrggbb" with an alpha → "rgba(...)". */
function hexAlpha(hex: string, a: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${a})`;
}
