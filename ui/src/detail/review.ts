// The Review pane of the bed detail screen: full disclosure, the chosen lead with the others
// of the same window beneath it, a time cursor, calipers and a slider over the stored days.

import { api } from '../api';
import { apiError, formatDateTime } from '../auth';
import {
  caliperText,
  DISCLOSURE_HISTORY_MS,
  DISCLOSURE_WINDOW_MS,
  formatTimeMs,
  keyStep,
  moveCursor,
  panWindow,
  timeAtX,
  valueAt,
  type Bounds,
  type ReviewState,
  type SamplesOut,
} from '../detailmath';
import { drawStrip } from '../disclosure';
import { h } from '../dom';
import { formatUnit } from '../format';
import { CHANNELS, type DetailContext, type Pane } from './pane';

export class ReviewPane implements Pane {
  readonly root: HTMLElement;
  readonly history = true;
  private review: ReviewState | null = null;
  private reviewBounds: Bounds = { min: 0, max: 0 };
  private reviewData: SamplesOut | null = null;
  /** The other leads of the same window, by channel. */
  private leadData = new Map<string, SamplesOut>();
  /** Why a lead of the window could not be loaded, by channel: said beside it, never hidden. */
  private leadErrors = new Map<string, string>();
  private readonly leadsBox: HTMLElement;
  private reviewSeq = 0;
  private reviewTimer: number | undefined;
  private readonly reviewCanvas: HTMLCanvasElement;
  private readonly reviewReadout: HTMLElement;
  private readonly reviewStatus: HTMLElement;
  private readonly reviewSlider: HTMLInputElement;
  private readonly reviewChannel: HTMLSelectElement;

  constructor(private readonly ctx: DetailContext) {
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
    this.root = h(
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
  }

  open(): void {
    // Nothing before the tab is shown: the window starts at the latest second then.
  }

  show(): void {
    if (!this.review) this.startReview();
    if (this.review) this.drawReview();
  }

  rights(): void {
    // No actions: without view_history the screen marks the pane.
  }

  close(): void {
    window.clearTimeout(this.reviewTimer);
    // Nothing of this bed may show on the next: a load under way is dropped, every lead forgotten.
    this.reviewSeq++;
    this.review = null;
    this.reviewData = null;
    this.leadData = new Map();
    this.leadErrors = new Map();
  }

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
    const bed = this.ctx.bed();
    const s = this.review;
    if (!bed || !s) return;
    const seq = ++this.reviewSeq;
    const channel = this.reviewChannel.value;
    this.reviewStatus.textContent = 'Loading…';
    const from = Math.floor(s.start);
    const to = Math.ceil(s.start + DISCLOSURE_WINDOW_MS);
    const others = CHANNELS.filter((c) => c.channel !== channel);
    // The other leads load beside the chosen one; one missing never hides the others.
    const leads = Promise.all(
      others.map((c) => api.samples(bed, c.channel, from, to).catch((e: unknown) => apiError(e).message)),
    );
    try {
      const data = await api.samples(bed, channel, from, to);
      const more = await leads;
      if (seq !== this.reviewSeq || bed !== this.ctx.bed()) return;
      this.reviewData = data;
      this.leadData = new Map();
      this.leadErrors = new Map();
      others.forEach((c, i) => {
        const d = more[i];
        if (typeof d === 'string') this.leadErrors.set(c.channel, d);
        else this.leadData.set(c.channel, d);
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
    if (!s || this.ctx.tab() !== 'review') return;
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
      const err = this.leadErrors.get(c.channel);
      cv.dataset.error = err ?? '';
      const label = cv.parentElement?.querySelector<HTMLElement>('.review-lead-label');
      if (label) label.textContent = err ? `${c.label} — not loaded: ${err}` : c.label;
      if (label) label.classList.toggle('error', Boolean(err));
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
}
