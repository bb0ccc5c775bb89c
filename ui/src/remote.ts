// Remote patients (issue 15): the worklist of patients at home or seen by a mobile clinic, most
// urgent first (the backend sorts it: urgent alerts, missed readings, findings awaiting review,
// adherence below target), and a patient's record: their care plan drawn over time with each
// slot's outcome (missed slots visible), their sparse readings as points, the dispensers' dose
// history, alerts, findings and reviews, and the review form. Opens in place of the ward grid, like the bed detail. Every rule
// and right is the backend's (commands/remote.rs); opening a record is audited and timed there.
// Pure helpers are exported for the unit tests.

import { api } from './api';
import { apiError, can, formatDateTime, type AuthState } from './auth';
import type { DoseOut, MessageOut, RemoteRecordOut, ReviewOut, SlotOut, WorkRowOut } from './bindings';
import { h, table } from './dom';
import { session } from './session';

export type { DoseOut, MessageOut, RemoteRecordOut, ReviewOut, SlotOut, WorkRowOut };

/** How often the open worklist and record read again (the watch evaluates every 10 s). */
export const REMOTE_POLL_MS = 10_000;
/** Days of the past a record shows. */
export const RECORD_DAYS = 7;

export const REVIEW_ACTIONS: readonly { action: string; label: string }[] = [
  { action: 'reviewed_no_action', label: 'Reviewed, no action' },
  { action: 'called_patient', label: 'Called patient' },
  { action: 'escalated', label: 'Escalated' },
];

/** What the worklist says a row needs. */
export function attentionLabel(attention: string): string {
  switch (attention) {
    case 'urgent':
      return 'URGENT';
    case 'missed':
      return 'Missed';
    case 'findings':
      return 'To review';
    case 'adherence':
      return 'Adherence';
    default:
      return 'OK';
  }
}

/** "2 urgent, 1 missed · devices silent", or "none". */
export function alertsText(r: Pick<WorkRowOut, 'urgent' | 'warning' | 'silent'>): string {
  const parts: string[] = [];
  if (r.urgent) parts.push(`${r.urgent} urgent`);
  if (r.warning) parts.push(`${r.warning} missed`);
  const text = parts.join(', ');
  if (r.silent) return text ? `${text} · devices silent` : 'devices silent';
  return text || 'none';
}

/** "3 to review (2 received late): SpO2 LOW 86 % (limit 90)", or "none". */
export function findingsText(r: Pick<WorkRowOut, 'findings' | 'stale_findings' | 'newest_finding'>): string {
  if (!r.findings) return 'none';
  const late = r.stale_findings ? ` (${r.stale_findings} received late)` : '';
  const newest = r.newest_finding ? `: ${r.newest_finding}` : '';
  return `${r.findings} to review${late}${newest}`;
}

/** 0.834 → "83 %"; nothing due → "—". */
export function percent(share: number | null | undefined): string {
  if (share === null || share === undefined || !Number.isFinite(share)) return '—';
  return `${Math.round(share * 100)} %`;
}

export function actionLabel(action: string): string {
  return REVIEW_ACTIONS.find((a) => a.action === action)?.label ?? action;
}

/** "Called patient — nina, 07/12 10:04 (2 findings)". */
export function reviewText(r: ReviewOut | null | undefined): string {
  if (!r) return 'never reviewed';
  const n = r.findings ? ` (${r.findings} finding${r.findings === 1 ? '' : 's'})` : '';
  return `${actionLabel(r.action)} — ${r.by}, ${formatDateTime(r.at_ms)}${n}`;
}

/** A window, station time: "2026-12-05 17:00–20:00" (the end's date when it is another day). */
export function windowText(from: number, to: number): string {
  const a = formatDateTime(from);
  const b = formatDateTime(to);
  const end = a.slice(0, 10) === b.slice(0, 10) ? b.slice(11, 16) : b.slice(0, 16);
  return `${a.slice(0, 16)}–${end}`;
}

/** A slot's text: "bp 07:00–10:00 missed (urgent)", "weight … taken late 10:42". */
export function slotText(s: SlotOut): string {
  const span = windowText(s.from_ms, s.to_ms);
  const state = s.state.replace(/_/g, ' ');
  const level = s.level && s.state === 'missed' ? ` (${s.level})` : '';
  const taken = s.taken_ms !== null && s.taken_ms !== undefined ? `, taken ${formatDateTime(s.taken_ms)}` : '';
  return `${s.item} ${span} ${state}${level}${taken}`;
}

/** A reminder or message and how far it got: "sent 10:02, delivered 10:03" / "not sent yet". */
export function messageState(m: Pick<MessageOut, 'sent_ms' | 'delivered_ms'>): string {
  if (m.sent_ms === null || m.sent_ms === undefined) return 'not sent yet';
  const sent = `sent ${formatDateTime(m.sent_ms)}`;
  if (m.delivered_ms === null || m.delivered_ms === undefined) return `${sent}, not confirmed by the patient's app`;
  return `${sent}, delivered ${formatDateTime(m.delivered_ms)}`;
}

/** "Reminder (missed) · weight", "Message from nina". */
export function messageLabel(m: Pick<MessageOut, 'kind' | 'reason' | 'item' | 'by'>): string {
  if (m.kind === 'reminder') return `Reminder (${m.reason}) · ${m.item}`;
  return `Message from ${m.by}`;
}

/** Received more than a minute after it happened: a buffered upload. */
export function uploadedLater(t: number, received: number): boolean {
  return received - t > 60_000;
}

/** What the dispenser said of a dose: "taken", "taken after the dispenser's window", "not taken
 * (the dispenser's window closed)"; with when it was due, if the dispenser said. */
export function doseText(d: Pick<DoseOut, 'event' | 'due_ms'>): string {
  const what =
    d.event === 'taken'
      ? 'taken'
      : d.event === 'late'
        ? "taken after the dispenser's window"
        : "not taken (the dispenser's window closed)";
  return d.due_ms === null || d.due_ms === undefined ? what : `${what}; due ${formatDateTime(d.due_ms)}`;
}

/** Horizontal position (0..width) of instant `t` on a time axis from `from` to `to`. */
export function xOf(t: number, from: number, to: number, width: number): number {
  if (to <= from) return 0;
  return Math.max(0, Math.min(width, ((t - from) / (to - from)) * width));
}

/** The rows of the schedule chart: one per plan item, in the order the items first appear. */
export function scheduleRows(slots: readonly SlotOut[]): { item: string; measure: string; slots: SlotOut[] }[] {
  const rows = new Map<string, { item: string; measure: string; slots: SlotOut[] }>();
  for (const s of slots) {
    let r = rows.get(s.item);
    if (!r) {
      r = { item: s.item, measure: s.measure, slots: [] };
      rows.set(s.item, r);
    }
    r.slots.push(s);
  }
  return [...rows.values()];
}

/** Readings grouped by vital code, each group in time order. */
export function readingSeries(
  readings: RemoteRecordOut['readings'],
): Map<string, { unit: string; points: { t: number; v: number; late: boolean }[] }> {
  const out = new Map<string, { unit: string; points: { t: number; v: number; late: boolean }[] }>();
  for (const r of readings) {
    let s = out.get(r.code);
    if (!s) {
      s = { unit: r.unit, points: [] };
      out.set(r.code, s);
    }
    s.points.push({ t: r.t_ms, v: r.value, late: uploadedLater(r.t_ms, r.received_ms) });
  }
  for (const s of out.values()) s.points.sort((a, b) => a.t - b.t);
  return out;
}

const SVG = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

const CHART_W = 900;
const ROW_H = 26;

/** The plan over time: a row per item, a box per slot coloured by its outcome, "now" marked. */
function scheduleChart(rec: RemoteRecordOut, now: number): SVGSVGElement {
  const rows = scheduleRows(rec.slots);
  const height = Math.max(1, rows.length) * ROW_H + 18;
  const chart = svg('svg', { id: 'remote-schedule', class: 'remote-chart', viewBox: `0 0 ${CHART_W + 80} ${height}`, role: 'img' });
  chart.setAttribute('aria-label', 'Care plan slots over time');
  rows.forEach((row, i) => {
    const y = i * ROW_H + 4;
    const label = svg('text', { x: 0, y: y + 15, class: 'chart-label' });
    label.textContent = row.item;
    chart.append(label);
    for (const s of row.slots) {
      const x0 = 80 + xOf(s.from_ms, rec.from_ms, rec.to_ms, CHART_W);
      const x1 = 80 + xOf(s.to_ms, rec.from_ms, rec.to_ms, CHART_W);
      const box = svg('rect', {
        x: x0,
        y,
        width: Math.max(2, x1 - x0),
        height: ROW_H - 8,
        class: `slot slot-${s.state}${s.level ? ` level-${s.level}` : ''}`,
        'data-state': s.state,
        'data-item': s.item,
      });
      const title = svg('title', {});
      title.textContent = slotText(s);
      box.append(title);
      chart.append(box);
    }
  });
  const xNow = 80 + xOf(now, rec.from_ms, rec.to_ms, CHART_W);
  chart.append(svg('line', { x1: xNow, x2: xNow, y1: 0, y2: height - 14, class: 'now' }));
  for (let d = 0; d <= RECORD_DAYS + 1; d++) {
    const t = rec.from_ms + d * 86_400_000;
    if (t > rec.to_ms) break;
    const tick = svg('text', { x: 80 + xOf(t, rec.from_ms, rec.to_ms, CHART_W), y: height - 2, class: 'chart-axis' });
    // The day's month and date, "12-05".
    tick.textContent = formatDateTime(t).slice(5, 10);
    chart.append(tick);
  }
  return chart;
}

/** One vital's readings as points over the record's time axis, late uploads hollow. */
function readingsChart(code: string, unit: string, points: { t: number; v: number; late: boolean }[], rec: RemoteRecordOut): HTMLElement {
  const h0 = 70;
  const vs = points.map((p) => p.v);
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  const pad = hi > lo ? (hi - lo) * 0.1 : Math.max(1, Math.abs(hi) * 0.05);
  const y = (v: number) => h0 - 6 - ((v - (lo - pad)) / (hi - lo + 2 * pad)) * (h0 - 12);
  const chart = svg('svg', { class: 'remote-chart readings', viewBox: `0 0 ${CHART_W + 80} ${h0}`, 'data-code': code });
  const label = svg('text', { x: 0, y: 14, class: 'chart-label' });
  label.textContent = code;
  const range = svg('text', { x: 0, y: 32, class: 'chart-axis' });
  range.textContent = `${Math.round(lo * 10) / 10}–${Math.round(hi * 10) / 10} ${unit}`;
  chart.append(label, range);
  for (const p of points) {
    const dot = svg('circle', {
      cx: 80 + xOf(p.t, rec.from_ms, rec.to_ms, CHART_W),
      cy: y(p.v),
      r: 3.5,
      class: p.late ? 'point late' : 'point',
    });
    const title = svg('title', {});
    title.textContent = `${formatDateTime(p.t)}: ${p.v} ${unit}${p.late ? ' (uploaded later)' : ''}`;
    dot.append(title);
    chart.append(dot);
  }
  return h('div', { class: 'reading-chart' }, chart);
}

export class RemoteView {
  readonly root: HTMLElement;
  private readonly list: HTMLElement;
  private readonly record: HTMLElement;
  private readonly status: HTMLElement;
  private readonly escalatedOnly: HTMLInputElement;
  private auth: AuthState | null = null;
  private openBed: string | null = null;
  /** The record view being timed (its id from remote_record_open). */
  private view: number | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** A read in flight: frames that say "changed" while it runs do not start another. */
  private loading = false;
  private rows: WorkRowOut[] = [];
  /** What the review and message forms last said, kept when the record is drawn again. */
  private said = { review: { text: '', cls: '' }, message: { text: '', cls: '' } };

  constructor(parent: HTMLElement, before: Element | null, private readonly button: HTMLButtonElement) {
    const close = h('button', { id: 'remote-close', type: 'button', class: 'secondary' }, '← Ward overview');
    close.onclick = () => this.close();
    this.escalatedOnly = h('input', { id: 'remote-escalated', type: 'checkbox' });
    this.escalatedOnly.onchange = () => void this.load();
    this.status = h('span', { id: 'remote-status', class: 'remote-status', role: 'status' });
    this.list = h('div', { id: 'remote-list', class: 'remote-list' });
    this.record = h('div', { id: 'remote-record', class: 'remote-record', hidden: true });
    this.root = h(
      'section',
      { id: 'remote-view', class: 'remote-view', hidden: true, 'aria-label': 'Remote patients' },
      h(
        'div',
        { class: 'detail-head' },
        close,
        h('h2', {}, 'Remote patients'),
        h('label', { class: 'inline' }, this.escalatedOnly, ' Escalated only'),
        h('span', { class: 'spacer' }),
        this.status,
      ),
      h('div', { class: 'remote-body' }, this.list, this.record),
    );
    parent.insertBefore(this.root, before);
    button.onclick = () => (this.root.hidden ? this.open() : this.close());
    session.subscribe(({ state, error }) => {
      this.auth = error ? null : state;
      // Nurses and charge nurses; the backend checks again on every read.
      this.button.hidden = !can(this.auth, 'view_ward');
      if (!this.root.hidden && !can(this.auth, 'view_ward')) this.close();
    });
  }

  get isOpen(): boolean {
    return !this.root.hidden;
  }

  open(): void {
    this.root.hidden = false;
    document.body.classList.add('remote-open');
    this.button.classList.add('active');
    void this.load();
    this.timer = setInterval(() => void this.load(), REMOTE_POLL_MS);
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    void this.closeRecord();
    this.root.hidden = true;
    document.body.classList.remove('remote-open');
    this.button.classList.remove('active');
  }

  /** Remote alerts or findings changed (a frame said so): read again now. */
  changed(): void {
    if (this.isOpen) void this.load();
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.className = error ? 'remote-status error' : 'remote-status';
  }

  async load(): Promise<void> {
    if (this.loading) return;
    this.loading = true;
    try {
      this.rows = await api.remoteWorklist(this.escalatedOnly.checked);
      this.renderList();
      this.say(`${this.rows.length} patient${this.rows.length === 1 ? '' : 's'} · updated ${formatDateTime(Date.now())}`);
      // The record is drawn again too, unless someone is typing in it (a note, a message).
      if (this.openBed && !this.record.contains(document.activeElement)) await this.loadRecord(this.openBed);
    } catch (e) {
      this.say(apiError(e).message, true);
    } finally {
      this.loading = false;
    }
  }

  private renderList(): void {
    const tbody = h('tbody', {});
    for (const r of this.rows) {
      const tr = h(
        'tr',
        {
          'data-bed': r.bed,
          'data-attention': r.attention,
          class: `attention-${r.attention}${r.escalated ? ' escalated' : ''}${r.bed === this.openBed ? ' open' : ''}`,
          tabindex: '0',
        },
        h('td', { class: 'attention' }, attentionLabel(r.attention)),
        h('td', { class: 'who' }, h('strong', {}, r.name), h('br'), `${r.mrn} · ${r.bed}${r.state === 'paused' ? ' · paused' : ''}`),
        h('td', { class: 'alerts' }, alertsText(r)),
        h('td', { class: 'findings' }, findingsText(r)),
        h('td', { class: 'adherence' }, `${percent(r.adherence_7)} / ${percent(r.adherence_30)}`),
        h('td', { class: 'days' }, `${r.days_with_data_30}/30`),
        h('td', { class: 'review' }, reviewText(r.last_review), h('br'), `${r.review_minutes} min this month`),
        h('td', { class: 'esc' }, r.escalated ? 'ESCALATED' : ''),
      );
      tr.onclick = () => void this.openRecord(r.bed);
      tr.onkeydown = (e) => {
        if (e.key === 'Enter') void this.openRecord(r.bed);
      };
      tbody.append(tr);
    }
    this.list.replaceChildren(
      this.rows.length
        ? table(
            { id: 'remote-worklist', class: 'data remote' },
            ['Needs', 'Patient', 'Alerts', 'Findings', 'Adherence 7 d / 30 d', 'Days with data', 'Last review', ''],
            tbody,
          )
        : h('p', { id: 'remote-empty', class: 'hint' }, this.escalatedOnly.checked ? 'No escalated patient.' : 'No remote patient enrolled.'),
    );
  }

  private async openRecord(bed: string): Promise<void> {
    if (this.openBed === bed) return;
    await this.closeRecord();
    this.openBed = bed;
    this.said = { review: { text: '', cls: '' }, message: { text: '', cls: '' } };
    for (const tr of this.list.querySelectorAll('tr[data-bed]')) tr.classList.toggle('open', tr.getAttribute('data-bed') === bed);
    try {
      this.view = await api.remoteRecordOpen(bed);
      this.root.dataset.view = String(this.view);
    } catch (e) {
      this.say(apiError(e).message, true);
    }
    await this.loadRecord(bed);
  }

  private async closeRecord(): Promise<void> {
    const view = this.view;
    this.view = null;
    this.openBed = null;
    this.record.hidden = true;
    this.record.replaceChildren();
    if (view !== null) {
      try {
        await api.remoteRecordClose(view);
      } catch {
        // The session ended (log-out, lock): the view stays open in the trail and is not
        // counted as review time.
      }
      // The view is closed in the backend (read by the end-to-end test).
      if (this.root.dataset.view === String(view)) delete this.root.dataset.view;
    }
  }

  private async loadRecord(bed: string): Promise<void> {
    try {
      const rec = await api.remoteRecord(bed, RECORD_DAYS);
      if (this.openBed !== bed) return;
      this.renderRecord(rec);
    } catch (e) {
      if (this.openBed === bed) {
        this.record.hidden = false;
        this.record.replaceChildren(h('p', { class: 'panel-error' }, apiError(e).message));
      }
    }
  }

  private renderRecord(rec: RemoteRecordOut): void {
    const now = Date.now();
    const keepNote = this.record.querySelector<HTMLInputElement>('#remote-review-note')?.value ?? '';
    const keepAction = this.record.querySelector<HTMLSelectElement>('#remote-review-action')?.value;
    const head = h(
      'div',
      { class: 'record-head' },
      h('h3', { id: 'remote-record-title' }, `${rec.name} — ${rec.mrn}`),
      h('p', {}, `Born ${rec.dob} · ${rec.tz} · ${rec.bed} · ${rec.state} · enrolled ${formatDateTime(rec.enrolled_ms)}`),
      h(
        'p',
        { class: 'plan' },
        rec.plan.length ? `Care plan v${rec.plan_version ?? '?'}: ${rec.plan.join('; ')}` : 'No care plan set.',
      ),
    );
    const action = h('select', { id: 'remote-review-action' });
    for (const a of REVIEW_ACTIONS) action.append(h('option', { value: a.action, selected: a.action === keepAction }, a.label));
    const note = h('input', { id: 'remote-review-note', maxlength: '500', placeholder: 'note (optional): what was found, what was done', value: keepNote });
    note.value = keepNote;
    const msg = h('span', { id: 'remote-review-msg', role: 'status', class: this.said.review.cls }, this.said.review.text);
    const submit = h('button', { id: 'remote-review-submit', type: 'submit' }, 'Record review');
    const form = h('form', { id: 'remote-review', class: 'remote-review' }, action, note, submit, msg);
    form.hidden = !can(this.auth, 'view_history');
    form.onsubmit = (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      api.remoteReview(rec.bed, action.value, note.value).then(
        (r) => {
          note.value = '';
          this.said.review = { text: `Recorded: ${reviewText(r)}`, cls: 'ok' };
          msg.textContent = this.said.review.text;
          msg.className = 'ok';
          void this.load();
          void this.loadRecord(rec.bed);
        },
        (e) => {
          this.said.review = { text: apiError(e).message, cls: 'error' };
          msg.textContent = this.said.review.text;
          msg.className = 'error';
          submit.disabled = false;
        },
      );
    };
    const series = readingSeries(rec.readings);
    const charts = [...series.entries()].map(([code, s]) => readingsChart(code, s.unit, s.points, rec));
    const alerts = h('tbody', {});
    for (const a of rec.alerts) {
      alerts.append(
        h(
          'tr',
          { class: a.resolved_ms === null ? `open level-${a.level}` : 'resolved', 'data-kind': a.kind },
          h('td', {}, a.kind.replace(/_/g, ' ')),
          h('td', {}, a.item),
          h('td', {}, windowText(a.from_ms, a.to_ms)),
          h('td', {}, a.level),
          h('td', {}, a.resolved_ms === null ? 'standing' : `${(a.resolution ?? '').replace(/_/g, ' ')} ${formatDateTime(a.resolved_ms)}`),
        ),
      );
    }
    const findings = h('tbody', {});
    for (const f of rec.findings) {
      findings.append(
        h(
          'tr',
          { class: `${f.reviewed ? 'resolved' : 'open'} prio-${f.priority}`, 'data-stale': f.stale ? '1' : '0' },
          h('td', {}, formatDateTime(f.t_ms)),
          h('td', {}, f.detail),
          h('td', {}, f.stale ? `received ${formatDateTime(f.received_ms)}: not sounded` : 'live'),
          h('td', {}, f.reviewed ? 'reviewed' : 'awaiting review'),
        ),
      );
    }
    const keepMessage = this.record.querySelector<HTMLInputElement>('#remote-message-text')?.value ?? '';
    const msgText = h('input', { id: 'remote-message-text', maxlength: '300', placeholder: 'message to the patient (shown on their app)' });
    msgText.value = keepMessage;
    const msgSay = h('span', { id: 'remote-message-msg', role: 'status', class: this.said.message.cls }, this.said.message.text);
    const msgSend = h('button', { id: 'remote-message-send', type: 'submit', class: 'secondary' }, 'Send to patient');
    const msgForm = h('form', { id: 'remote-message', class: 'remote-review' }, msgText, msgSend, msgSay);
    msgForm.hidden = !can(this.auth, 'view_history');
    msgForm.onsubmit = (ev) => {
      ev.preventDefault();
      msgSend.disabled = true;
      api.remoteMessage(rec.bed, msgText.value).then(
        () => {
          msgText.value = '';
          this.said.message = { text: 'Message queued for the patient.', cls: 'ok' };
          msgSay.textContent = this.said.message.text;
          msgSay.className = 'ok';
          void this.loadRecord(rec.bed);
        },
        (e) => {
          this.said.message = { text: apiError(e).message, cls: 'error' };
          msgSay.textContent = this.said.message.text;
          msgSay.className = 'error';
          msgSend.disabled = false;
        },
      );
    };
    const messages = h('tbody', {});
    for (const m of rec.messages) {
      messages.append(
        h(
          'tr',
          { 'data-kind': m.kind, class: m.delivered_ms === null ? 'undelivered' : 'delivered' },
          h('td', {}, formatDateTime(m.created_ms)),
          h('td', {}, messageLabel(m)),
          h('td', {}, m.text),
          h('td', {}, messageState(m)),
        ),
      );
    }
    const doses = h('tbody', {});
    // Newest first, as the other tables of the record.
    for (const d of [...rec.doses].reverse()) {
      doses.append(
        h(
          'tr',
          { 'data-event': d.event, class: d.event === 'missed' ? 'open' : '' },
          h('td', {}, formatDateTime(d.t_ms)),
          h('td', {}, d.medication),
          h('td', {}, doseText(d)),
          h('td', {}, d.device),
          h('td', {}, uploadedLater(d.t_ms, d.received_ms) ? `uploaded ${formatDateTime(d.received_ms)}` : 'at once'),
        ),
      );
    }
    const reviews = h('ul', { id: 'remote-reviews', class: 'remote-reviews' });
    for (const r of rec.reviews) reviews.append(h('li', {}, reviewText(r), r.note ? ` — “${r.note}”` : ''));
    const missed = rec.slots.filter((s) => s.state === 'missed').length;
    this.record.hidden = false;
    this.record.dataset.bed = rec.bed;
    this.record.replaceChildren(
      head,
      form,
      h('h4', {}, `Schedule (last ${RECORD_DAYS} days and the next day): ${missed} missed`),
      h(
        'p',
        { class: 'legend' },
        ...['on_time', 'received_late', 'taken_late', 'missed', 'open', 'upcoming'].map((s) =>
          h('span', { class: `key slot-${s}` }, s.replace(/_/g, ' ')),
        ),
      ),
      scheduleChart(rec, now),
      h('h4', {}, 'Readings (hollow: uploaded later)'),
      ...(charts.length ? charts : [h('p', { class: 'hint' }, 'No readings in this period.')]),
      h('h4', {}, 'Dose history (from the dispenser)'),
      rec.doses.length
        ? table({ id: 'remote-doses', class: 'data' }, ['When', 'Medication', 'Dispenser says', 'Device', 'Arrived'], doses)
        : h('p', { class: 'hint' }, 'No dose events in this period.'),
      h('h4', {}, 'Care-plan alerts'),
      rec.alerts.length
        ? table({ id: 'remote-alerts', class: 'data' }, ['Alert', 'Item', 'Window', 'Level', 'State'], alerts)
        : h('p', { class: 'hint' }, 'None.'),
      h('h4', {}, 'Findings'),
      rec.findings.length
        ? table({ id: 'remote-findings', class: 'data' }, ['Taken', 'Finding', 'Arrived', 'Review'], findings)
        : h('p', { class: 'hint' }, 'None.'),
      h('h4', {}, 'Reviews'),
      rec.reviews.length ? reviews : h('p', { class: 'hint' }, 'None yet.'),
      h('h4', {}, 'Reminders and messages to the patient'),
      msgForm,
      rec.messages.length
        ? table({ id: 'remote-messages', class: 'data' }, ['Written', 'What', 'Text', 'Reached the patient'], messages)
        : h('p', { class: 'hint' }, 'None yet.'),
    );
  }
}
