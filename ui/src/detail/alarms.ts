// The Alarm history pane of the bed detail screen: the bed's alarms over a chosen span, each
// opening onto ECG II and pleth from the 10 s before it.

import { api } from '../api';
import { apiError, can, formatDateTime } from '../auth';
import { formatTimeMs, type AlarmHistoryEntry } from '../detailmath';
import { drawStrip } from '../disclosure';
import { h, table } from '../dom';
import { printPanel } from '../printout';
import { CHANNELS, type DetailContext, type Pane } from './pane';

export class AlarmsPane implements Pane {
  readonly root: HTMLElement;
  readonly history = true;
  private readonly alarmTable: HTMLTableSectionElement;
  private readonly alarmStatus: HTMLElement;
  private readonly alarmSpan: HTMLSelectElement;
  private alarmSeq = 0;

  constructor(private readonly ctx: DetailContext) {
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
    this.root = h(
      'div',
      { class: 'detail-pane detail-alarm-history', id: 'pane-alarms' },
      h('div', { class: 'review-bar' }, this.alarmSpan, reload, this.alarmStatus),
      table(
        { class: 'data alarm-history', id: 'alarm-history' },
        ['Time', 'Priority', 'Alarm', 'Acknowledged', 'Ended', 'Strip'],
        this.alarmTable,
      ),
    );
  }

  open(): void {
    // Nothing before the tab is shown: the history is read each time it is.
  }

  show(): void {
    void this.loadAlarms();
  }

  rights(): void {
    // The strip buttons follow print_report (the backend checks it again).
    const allowed = can(this.ctx.auth(), 'print_report');
    for (const b of this.root.querySelectorAll<HTMLButtonElement>('button.print-strip')) b.hidden = !allowed;
  }

  close(): void {
    // The next bed never shows this one's rows, even for a moment: a load under way is dropped.
    this.alarmSeq++;
    this.alarmTable.replaceChildren();
    this.alarmStatus.textContent = '';
  }

  private async loadAlarms(): Promise<void> {
    const bed = this.ctx.bed();
    if (!bed) return;
    const seq = ++this.alarmSeq;
    const to = Date.now();
    const from = to - Number(this.alarmSpan.value);
    this.alarmStatus.textContent = 'Loading…';
    try {
      const rows = await api.alarmHistory(bed, from, to);
      if (seq !== this.alarmSeq || bed !== this.ctx.bed()) return;
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
      h('td', {}, this.printButton(bed, r)),
    );
    const detail = h('tr', { class: 'alarm-snippet', hidden: true });
    const cell = h('td', { colspan: '6' });
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

  /** Print this alarm's strip (every lead, the configured time before it to its end). */
  private printButton(bed: string, r: AlarmHistoryEntry): HTMLButtonElement {
    const b = h('button', { type: 'button', class: 'secondary print-strip', hidden: !can(this.ctx.auth(), 'print_report') }, 'Print');
    b.onclick = (e) => {
      e.stopPropagation();
      printPanel(`Alarm strip · ${bed} · ${r.message}`, 'chart copy', (reason) =>
        api.printStrip(bed, r.alarm_id, r.t_ms, reason),
      );
    };
    b.onkeydown = (e) => e.stopPropagation();
    return b;
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
}
