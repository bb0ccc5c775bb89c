// The Live pane of the bed detail screen: every channel at full resolution, the numerics with
// their limits, and the limits editor. The limits of the open bed are kept here.

import { api } from '../api';
import { apiError, can } from '../auth';
import { checkLimitForm, limitsText, showNum, type LimitInfo } from '../detailmath';
import { h } from '../dom';
import type { AlarmInfo } from '../frames';
import { formatNibp, formatUnit, formatValue, lateNote, NO_READING } from '../format';
import { blockAlarmPriority } from '../overview';
import { scaleFor } from '../scale';
import type { Store, WaveTarget } from '../store';
import { SweepRenderer } from '../sweep';
import { CHANNELS, markPriority, setText, type ChannelSpec, type DetailContext, type Pane } from './pane';

/** Seconds across a live waveform of the detail screen. */
const SWEEP_SECONDS = 8;

interface NumSpec {
  key: string;
  label: string;
  codes: readonly string[];
  /** Vital whose limits are shown. */
  limitsOf: string;
  unit: string;
  decimals: number;
  color: string;
  /** Shown only while the bed has a reading of it (home devices: most beds have none). */
  optional?: boolean;
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
  {
    key: 'WEIGHT',
    label: 'Weight',
    codes: ['WEIGHT'],
    limitsOf: 'WEIGHT',
    unit: 'kg',
    decimals: 1,
    color: 'var(--temp)',
    optional: true,
  },
  {
    key: 'GLUCOSE',
    label: 'Glucose',
    codes: ['GLUCOSE'],
    limitsOf: 'GLUCOSE',
    unit: 'mg/dL',
    decimals: 0,
    color: 'var(--temp)',
    optional: true,
  },
];

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

export class LivePane implements Pane {
  readonly root: HTMLElement;
  readonly history = false;
  private limitList: LimitInfo[] = [];
  private rows: LiveRow[] = [];
  private dpr = window.devicePixelRatio || 1;
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

  constructor(private readonly ctx: DetailContext) {
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
    this.root = h('div', { class: 'detail-pane detail-live', id: 'pane-live' }, this.wavesBox, side);
  }

  /** The open bed's alarm limits; none until loaded. */
  get limits(): readonly LimitInfo[] {
    return this.limitList;
  }

  /** The limits editor is open. */
  get editing(): boolean {
    return !this.limitsForm.hidden;
  }

  open(): void {
    this.buildRows();
    this.limitList = [];
    this.editLimits(false);
    void this.loadLimits();
  }

  show(): void {
    // Always live: the rows are fed and drawn whichever tab is shown.
  }

  rights(): void {
    const limitsOk = can(this.ctx.auth(), 'change_patient_limits');
    this.limitsButton.hidden = !limitsOk || !this.limitsForm.hidden || this.limitList.length === 0;
    if (!limitsOk) this.editLimits(false);
  }

  close(): void {
    for (const r of this.rows) this.observer.unobserve(r.canvas);
    this.rows = [];
    this.wavesBox.replaceChildren();
  }

  /** The live renderer of a channel of the open bed. */
  waveTarget(channel: string): WaveTarget | undefined {
    return this.rows.find((r) => r.spec.channel === channel)?.target;
  }

  /** Animation frame: advances the sweeps. */
  tick(now: number): void {
    const dpr = window.devicePixelRatio || 1;
    if (dpr !== this.dpr) {
      this.dpr = dpr;
      for (const r of this.rows) this.fit(r, r.canvas.clientWidth, r.canvas.clientHeight);
    }
    for (const r of this.rows) r.renderer.frame(now);
  }

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

  /** The numerics of the bed, with the alarms (of the header) it has now. */
  render(store: Store, bed: string, alarms: readonly AlarmInfo[], commLost: boolean): void {
    for (const n of this.nums) {
      markPriority(n.root, 'num-alarm-', blockAlarmPriority(alarms, n.spec.codes));
      const reading = store.vital(bed, n.spec.codes[0]);
      const late = store.lateVital(bed, n.spec.codes[0]);
      n.root.hidden = !showNum(n.spec, reading !== undefined, late !== undefined, alarms);
      setText(n.unit, reading ? formatUnit(reading.unit) : n.spec.unit);
      let text: string;
      if (commLost) text = NO_READING;
      else if (n.spec.key === 'NIBP') {
        const v = (code: string) => store.vital(bed, code)?.value;
        text = formatNibp(v('NIBP_SYS'), v('NIBP_DIA'), v('NIBP_MEAN'));
      } else text = formatValue(reading?.value, n.spec.decimals);
      setText(n.value, text);
      setText(n.late, lateNote(late, n.spec.decimals, Date.now()));
      setText(n.limits, this.limitList.length ? limitsText(this.limitList, n.spec.limitsOf) : '');
    }
  }

  async loadLimits(): Promise<void> {
    const bed = this.ctx.bed();
    if (!bed) return;
    try {
      const limits = await api.bedLimits(bed);
      if (bed !== this.ctx.bed()) return;
      this.limitList = limits;
      this.limitsMsg.textContent = '';
    } catch (e) {
      this.limitsMsg.textContent = `Limits unavailable: ${apiError(e).message}`;
    }
    this.ctx.applyRights();
    this.ctx.render();
  }

  editLimits(on: boolean): void {
    this.limitsForm.hidden = !on;
    this.root.classList.toggle('editing', on);
    this.limitsMsg.textContent = '';
    this.limitsButton.hidden = on || !can(this.ctx.auth(), 'change_patient_limits') || this.limitList.length === 0;
    if (!on) {
      this.limitsForm.replaceChildren();
      return;
    }
    const inputs: { limit: LimitInfo; input: HTMLInputElement; err: HTMLElement }[] = [];
    const table = h('table', { class: 'data limits-table' });
    table.append(h('tr', {}, h('th', {}, 'Limit'), h('th', {}, 'Value'), h('th', {}, 'Allowed')));
    for (const l of this.limitList) {
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
      const bed = this.ctx.bed();
      if (!bed) return;
      save.disabled = true;
      api
        .setBedLimits(bed, changes)
        .then((limits) => {
          if (bed !== this.ctx.bed()) return;
          this.limitList = limits;
          this.editLimits(false);
          this.limitsMsg.textContent = '';
          this.ctx.render();
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
}
