// The Trends pane of the bed detail screen: every vital over 1 to 72 hours or a chosen range
// (uPlot, loaded on first use), on a fixed axis per vital, with the limit band and alarm marks.

import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from '../api';
import { apiError, can, formatDateTime } from '../auth';
import {
  alarmMarks,
  customRange,
  isDiscrete,
  limitBand,
  presetRange,
  toLocalInput,
  TREND_BUCKETS,
  trendAxis,
  trendData,
  validLocale,
  type AlarmHistoryEntry,
  type TimeRange,
  type TrendOut,
  type TrendPreset,
} from '../detailmath';
import { h } from '../dom';
import { exportPanel, printPanel } from '../printout';
import type { DetailContext, Pane } from './pane';

interface TrendSpec {
  key: string;
  label: string;
  vitals: readonly string[];
  colors: readonly string[];
  /** Shown only when the range has readings (home devices: most beds have none). */
  optional?: boolean;
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
  { key: 'weight', label: 'Weight kg', vitals: ['WEIGHT'], colors: ['#ce93d8'], optional: true },
  { key: 'glucose', label: 'Glucose mg/dL', vitals: ['GLUCOSE'], colors: ['#a5d6a7'], optional: true },
];

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

export class TrendsPane implements Pane {
  readonly root: HTMLElement;
  readonly history = true;
  private trendRange: TimeRange | null = null;
  private trendPreset: TrendPreset | 'custom' = '1h';
  private charts: uPlot[] = [];
  private readonly trendBox: HTMLElement;
  private readonly trendStatus: HTMLElement;
  private readonly trendFrom: HTMLInputElement;
  private readonly trendTo: HTMLInputElement;
  private trendSeq = 0;
  private readonly printButton: HTMLButtonElement;
  private readonly exportButton: HTMLButtonElement;

  constructor(private readonly ctx: DetailContext) {
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
    // A trend report and an export of the range shown (print_report; export_deidentified or
    // export_identified: the backend decides, the buttons follow the session).
    this.printButton = h('button', { id: 'trend-print', type: 'button', class: 'secondary' }, 'Print report');
    this.printButton.onclick = () => this.print();
    this.exportButton = h('button', { id: 'trend-export', type: 'button', class: 'secondary' }, 'Export…');
    this.exportButton.onclick = () => {
      const bed = this.ctx.bed();
      if (bed && this.trendRange) exportPanel(bed, this.trendRange.from, this.trendRange.to, this.ctx.auth());
    };
    rangeButtons.append(
      h('span', { class: 'range-custom' }, 'Custom', from, '–', to, apply),
      this.printButton,
      this.exportButton,
      this.trendStatus,
    );
    this.trendBox = h('div', { class: 'trend-charts', id: 'trend-charts' });
    this.root = h('div', { class: 'detail-pane detail-trends', id: 'pane-trends' }, rangeButtons, this.trendBox);
    this.trendFrom = from;
    this.trendTo = to;
  }

  open(): void {
    // Nothing before the tab is shown: the last bed's charts went at its close.
  }

  show(): void {
    if (this.trendRange) return;
    // A new bed (or the first look) starts on the last hour, and its button says so.
    this.trendPreset = '1h';
    void this.loadTrends(presetRange('1h', Date.now()));
  }

  rights(): void {
    const auth = this.ctx.auth();
    this.printButton.hidden = !can(auth, 'print_report');
    this.exportButton.hidden = !can(auth, 'export_deidentified') && !can(auth, 'export_identified');
  }

  /** The trend report of the range shown; the table a row per hour (per 15 min up to 8 h). */
  private print(): void {
    const bed = this.ctx.bed();
    const range = this.trendRange;
    if (!bed || !range) return;
    const span = range.to - range.from;
    // A report covers at least an hour: a shorter range is widened back from its end.
    const from = Math.min(range.from, range.to - 3_600_000);
    const interval = span <= 8 * 3_600_000 ? 900_000 : 3_600_000;
    printPanel(`Trend report · ${bed}`, 'physician review', (reason) =>
      api.printTrend(bed, from, range.to, interval, reason),
    );
  }

  close(): void {
    this.destroyCharts();
  }

  private destroyCharts(): void {
    for (const c of this.charts) c.destroy();
    this.charts = [];
    this.trendRange = null;
    this.trendBox.replaceChildren();
  }

  private async loadTrends(range: TimeRange): Promise<void> {
    const bed = this.ctx.bed();
    if (!bed) return;
    const seq = ++this.trendSeq;
    this.trendRange = range;
    this.trendFrom.value = toLocalInput(range.from);
    this.trendTo.value = toLocalInput(range.to);
    for (const b of this.root.querySelectorAll<HTMLButtonElement>('[data-range]')) {
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
      if (seq !== this.trendSeq || bed !== this.ctx.bed()) return;
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
    if (spec.optional && points === 0) return;
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
    const band = limitBand(this.ctx.limits(), spec.vitals[0]);
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
      const discrete = isDiscrete(d.vital);
      const base = series.length;
      series.push(
        { label: `${d.vital} min`, stroke: 'transparent', points: { show: false } },
        { label: `${d.vital} max`, stroke: 'transparent', points: { show: false } },
        {
          label: d.vital,
          stroke: color,
          width: 1.5,
          // NIBP and home readings: discrete measurements, always as points; otherwise uPlot
          // shows points where they are sparse enough to see (a lone reading between gaps too).
          points: discrete
            ? { show: true, size: 5, fill: color, stroke: color }
            : { size: 4, fill: color, stroke: color },
        },
      );
      if (!discrete) bands.push({ series: [base + 1, base], fill: hexAlpha(color, 0.22) });
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

/** "#rrggbb" with an alpha → "rgba(...)". */
function hexAlpha(hex: string, a: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${a})`;
}
