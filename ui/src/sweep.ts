// Sweep-mode waveform rendering, like a bedside monitor: a cursor runs left to
// right, each animation frame draws only the samples that became due since the
// previous frame, and a narrow band just ahead of the cursor is erased so the
// old trace disappears in front of the new one. The cost of a frame depends on
// the number of new samples, never on what is already on screen.
//
// The pure parts (ring buffer, pacing, cursor/erase geometry, y-scaling, auto
// range) are exported separately from `SweepRenderer`, which only issues calls
// on a small 2D-context interface so tests can pass a recording fake.

/** Vertical display range of a trace, in physical units (mV for ECG). */
export interface DisplayRange {
  min: number;
  max: number;
}

/** The subset of CanvasRenderingContext2D that the renderer uses. */
export interface SweepContext {
  setTransform(a: number, b: number, c: number, d: number, e: number, f: number): void;
  clearRect(x: number, y: number, w: number, h: number): void;
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  stroke(): void;
  strokeStyle: string | CanvasGradient | CanvasPattern;
  lineWidth: number;
  lineJoin: CanvasLineJoin;
}

/** Marker pushed into the buffer where data is missing: the pen is lifted there. */
export const GAP = Number.NaN;

/** Fixed-capacity FIFO of samples. When full, the oldest sample is dropped. */
export class SampleRing {
  private readonly buf: Float64Array;
  private head = 0;
  private len = 0;
  /** Samples lost to overflow since creation. */
  dropped = 0;

  constructor(capacity: number) {
    this.buf = new Float64Array(Math.max(1, Math.ceil(capacity)));
  }

  get capacity(): number {
    return this.buf.length;
  }

  get length(): number {
    return this.len;
  }

  push(v: number): void {
    const cap = this.buf.length;
    if (this.len === cap) {
      this.head = (this.head + 1) % cap;
      this.len--;
      this.dropped++;
    }
    this.buf[(this.head + this.len) % cap] = v;
    this.len++;
  }

  /** Removes and returns the oldest sample (GAP when empty). */
  shift(): number {
    if (this.len === 0) return GAP;
    const v = this.buf[this.head];
    this.head = (this.head + 1) % this.buf.length;
    this.len--;
    return v;
  }

  /** Drops up to `n` of the oldest samples. */
  discard(n: number): void {
    const k = Math.min(Math.max(0, Math.floor(n)), this.len);
    this.head = (this.head + k) % this.buf.length;
    this.len -= k;
  }
}

export interface PaceStep {
  /** Samples to draw this frame. */
  draw: number;
  /** Oldest samples to throw away first (the display fell too far behind). */
  skip: number;
  /**
   * Sample periods with no data to draw (before the first data, or after the
   * buffer ran dry): the cursor moves on and erases, so a lost signal shows
   * as a blank trace, never as a frozen old one.
   */
  blank: number;
}

/** Proportional trim: per second of lag beyond the target delay, play this much faster. */
const TRIM_GAIN = 0.5;
/** The trim never changes the playback speed by more than ±5 %. */
const MAX_TRIM = 0.05;

/**
 * Paces playback of buffered samples against wall-clock time.
 *
 * Samples arrive in bursts (one batch per backend frame) but are consumed at
 * their real rate. Playback starts once `delaySeconds` of data is buffered and
 * then keeps the buffer near that level: a small speed trim absorbs clock
 * drift between the device and this station. If the buffer runs dry, time
 * goes on as blank while it re-buffers; if it holds more than
 * `maxLagSeconds`, the excess is skipped so the display is never far behind
 * real time.
 */
export class Pacer {
  private carry = 0;
  private playing = false;

  constructor(
    readonly rate: number,
    readonly delaySeconds = 0.3,
    readonly maxLagSeconds = 2,
  ) {}

  /** Buffer level (in samples) that playback aims to keep. */
  get target(): number {
    return Math.round(this.delaySeconds * this.rate);
  }

  get isPlaying(): boolean {
    return this.playing;
  }

  /** What to skip, draw and leave blank, given the buffer level and the time since the last frame. */
  step(buffered: number, dtMs: number): PaceStep {
    const periods = (Math.max(0, dtMs) / 1000) * this.rate;
    if (!this.playing) {
      if (buffered < this.target || buffered === 0) {
        const due = this.carry + periods;
        const blank = Math.floor(due);
        this.carry = due - blank;
        return { draw: 0, skip: 0, blank };
      }
      this.playing = true;
      this.carry = 0;
    }
    let skip = 0;
    if (buffered > this.maxLagSeconds * this.rate) {
      skip = buffered - this.target;
      buffered = this.target;
    }
    const lagSeconds = (buffered - this.target) / this.rate;
    const speed = 1 + clamp(lagSeconds * TRIM_GAIN, -MAX_TRIM, MAX_TRIM);
    const due = this.carry + periods * speed;
    let draw = Math.floor(due);
    this.carry = due - draw;
    let blank = 0;
    if (draw > buffered) {
      // Ran dry: draw what is there, the rest of the time is blank, then re-buffer.
      blank = draw - buffered;
      draw = buffered;
      this.playing = false;
    }
    return { draw, skip, blank };
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Horizontal distance between two samples. */
export function pxPerSample(width: number, sweepSeconds: number, rate: number): number {
  return width / (sweepSeconds * rate);
}

/** Cursor position after `n` samples; wraps at the right edge. */
export function advanceCursor(x: number, n: number, pxPerSample: number, width: number): number {
  if (width <= 0) return 0;
  const next = (x + n * pxPerSample) % width;
  return next < 0 ? next + width : next;
}

/**
 * Maps a value to a pixel row: `range.max` to the top (`margin`), `range.min`
 * to the bottom (`height - margin`). Values outside the range are clamped to
 * the edges; a degenerate range draws at mid-height.
 */
export function valueToY(v: number, range: DisplayRange, height: number, margin = 0): number {
  const span = range.max - range.min;
  const inner = height - 2 * margin;
  if (!(span > 0) || inner <= 0) return height / 2;
  const y = margin + ((range.max - v) / span) * inner;
  return clamp(y, margin, height - margin);
}

export interface Span {
  x: number;
  w: number;
}

/**
 * Columns to clear this frame. The band [cursor, cursor + gap) is already
 * clear from earlier frames, so as the cursor advances by `advancePx` only the
 * newly entered part of the band, [cursor + gap, cursor + advance + gap), has
 * to be cleared. Rounded outward to whole pixels; split in two at the right
 * edge. Clearing never touches trace drawn behind the cursor.
 */
export function eraseSpans(cursorX: number, advancePx: number, gapPx: number, width: number): Span[] {
  if (advancePx <= 0 || width <= 0) return [];
  if (advancePx >= width) return [{ x: 0, w: width }];
  const from = (cursorX + gapPx) % width;
  const start = Math.floor(from);
  const end = Math.ceil(from + advancePx);
  if (end <= width) return [{ x: start, w: end - start }];
  return [
    { x: start, w: width - start },
    { x: 0, w: end - width },
  ];
}

/** Where a trace gets its display range from, sample by sample. */
interface RangeSource {
  /** Records a sample and returns the range to draw it with. */
  observe(v: number): DisplayRange;
  /** Called when the cursor wraps to start a new sweep. */
  rollover(): void;
}

/** A constant range (ECG: fixed gain in mV). */
export class FixedRange implements RangeSource {
  constructor(private readonly r: DisplayRange) {}

  observe(): DisplayRange {
    return this.r;
  }

  rollover(): void {}
}

/**
 * Auto-scaling range for traces in arbitrary units (pleth, resp): the range is
 * refitted to the extent seen during the previous sweep at each wrap, and
 * widened at once if a sample falls outside it, so the trace is never clipped.
 */
export class AutoRange implements RangeSource {
  private rawMin = Number.POSITIVE_INFINITY;
  private rawMax = Number.NEGATIVE_INFINITY;
  private seenMin = Number.POSITIVE_INFINITY;
  private seenMax = Number.NEGATIVE_INFINITY;

  constructor(private readonly padFraction = 0.1) {}

  observe(v: number): DisplayRange {
    if (v < this.seenMin) this.seenMin = v;
    if (v > this.seenMax) this.seenMax = v;
    if (v < this.rawMin) this.rawMin = v;
    if (v > this.rawMax) this.rawMax = v;
    return this.range();
  }

  /** Fits the range to what the sweep just finished showed. */
  rollover(): void {
    if (this.seenMin <= this.seenMax) {
      this.rawMin = this.seenMin;
      this.rawMax = this.seenMax;
    }
    this.seenMin = Number.POSITIVE_INFINITY;
    this.seenMax = Number.NEGATIVE_INFINITY;
  }

  private range(): DisplayRange {
    const pad = (this.rawMax - this.rawMin) * this.padFraction;
    return { min: this.rawMin - pad, max: this.rawMax + pad };
  }
}

export interface SweepOptions {
  /** Nominal sample rate; replaced by the rate of the chunks actually received. */
  rate: number;
  /** Time shown across the full width. */
  sweepSeconds: number;
  color: string;
  /** Fixed range in physical units, or 'auto' for arbitrary-unit traces. */
  range: DisplayRange | 'auto';
  lineWidth?: number;
  /** Width of the erased band ahead of the cursor, CSS px. */
  eraseGapPx?: number;
  /** Buffering delay before playback, seconds. */
  delaySeconds?: number;
  /** Beyond this much buffered data, skip ahead to the newest, seconds. */
  maxLagSeconds?: number;
}

/** Seconds of data the ring buffer holds beyond the skip-ahead threshold. */
const RING_HEADROOM_SECONDS = 1;

/** One sweep-mode trace on one canvas. Coordinates are in CSS pixels. */
export class SweepRenderer {
  private rate: number;
  private ring: SampleRing;
  private pacer: Pacer;
  private range: RangeSource;
  private sweepSeconds: number;
  private width = 0;
  private height = 0;
  private pps = 0;
  private cursorX = 0;
  private penDown = false;
  private penX = 0;
  private penY = 0;
  private lastNow: number | null = null;
  private readonly lineWidth: number;
  private readonly eraseGapPx: number;

  constructor(
    private readonly ctx: SweepContext,
    private readonly opts: SweepOptions,
  ) {
    this.rate = opts.rate;
    this.sweepSeconds = opts.sweepSeconds;
    this.ring = this.makeRing();
    this.pacer = this.makePacer();
    this.range = opts.range === 'auto' ? new AutoRange() : new FixedRange(opts.range);
    this.lineWidth = opts.lineWidth ?? 1.5;
    this.eraseGapPx = opts.eraseGapPx ?? 12;
  }

  /**
   * A new clinical scale (seconds across the width, fixed range), applied from the next
   * `resize` (the caller resizes right after, which restarts the trace).
   */
  setScale(sweepSeconds: number, range?: DisplayRange): void {
    if (sweepSeconds > 0) this.sweepSeconds = sweepSeconds;
    if (range) this.range = new FixedRange(range);
  }

  /** Seconds across the width. */
  get sweep(): number {
    return this.sweepSeconds;
  }

  /** Current cursor position, CSS px (exposed for tests and diagnostics). */
  get cursor(): number {
    return this.cursorX;
  }

  /** Samples waiting to be drawn. */
  get buffered(): number {
    return this.ring.length;
  }

  /** Samples lost to ring overflow since the trace started. */
  get dropped(): number {
    return this.ring.dropped;
  }

  /** Maximum number of samples held; older ones are dropped beyond it. */
  get capacity(): number {
    return this.ring.capacity;
  }

  /**
   * Queues physical sample values. `gapBefore` lifts the pen before them
   * (a chunk was missed). A change of sample rate restarts the trace.
   */
  push(values: ArrayLike<number>, rate: number, gapBefore = false): void {
    if (rate > 0 && rate !== this.rate) {
      this.rate = rate;
      this.ring = this.makeRing();
      this.pacer = this.makePacer();
      this.pps = pxPerSample(this.width, this.sweepSeconds, this.rate);
      gapBefore = true;
    }
    if (gapBefore) this.ring.push(GAP);
    for (let i = 0; i < values.length; i++) this.ring.push(values[i]);
  }

  /**
   * Sets the drawing size. The caller has already sized the canvas backing
   * store to cssWidth×dpr by cssHeight×dpr (which clears it and resets the
   * context state); the trace restarts at the left edge.
   */
  resize(cssWidth: number, cssHeight: number, dpr: number): void {
    this.width = Math.max(0, cssWidth);
    this.height = Math.max(0, cssHeight);
    this.pps = pxPerSample(this.width, this.sweepSeconds, this.rate);
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    ctx.strokeStyle = this.opts.color;
    ctx.lineWidth = this.lineWidth;
    ctx.lineJoin = 'round';
    this.cursorX = 0;
    this.penDown = false;
  }

  /**
   * Draws the samples due at `nowMs` (a monotonic clock). Returns how many
   * sample periods the cursor moved (drawn or blank).
   */
  frame(nowMs: number): number {
    const dt = this.lastNow === null ? 0 : nowMs - this.lastNow;
    this.lastNow = nowMs;
    const { draw, skip, blank } = this.pacer.step(this.ring.length, dt);
    if (skip > 0) {
      this.ring.discard(skip);
      this.penDown = false;
    }
    const steps = draw + blank;
    if (steps === 0) return 0;
    if (this.width <= 0 || this.height <= 0) {
      // Not laid out (hidden): keep consuming at the real rate, draw nothing.
      this.ring.discard(draw);
      return steps;
    }

    const ctx = this.ctx;
    for (const s of eraseSpans(this.cursorX, steps * this.pps, this.eraseGapPx, this.width)) {
      ctx.clearRect(s.x, 0, s.w, this.height);
    }
    const margin = this.lineWidth;
    ctx.beginPath();
    if (this.penDown) ctx.moveTo(this.penX, this.penY);
    for (let i = 0; i < steps; i++) {
      // After the buffered samples come the blank periods (GAP: pen up).
      const v = i < draw ? this.ring.shift() : GAP;
      if (Number.isNaN(v)) {
        this.penDown = false;
      } else {
        const x = this.cursorX;
        const y = valueToY(v, this.range.observe(v), this.height, margin);
        if (this.penDown) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
        this.penDown = true;
        this.penX = x;
        this.penY = y;
      }
      const next = advanceCursor(this.cursorX, 1, this.pps, this.width);
      if (next < this.cursorX) {
        // Wrapped at the right edge: start a new sweep at the left.
        this.penDown = false;
        this.range.rollover();
      }
      this.cursorX = next;
    }
    ctx.stroke();
    return steps;
  }

  private makeRing(): SampleRing {
    const maxLag = this.opts.maxLagSeconds ?? 2;
    return new SampleRing(this.rate * (maxLag + RING_HEADROOM_SECONDS));
  }

  private makePacer(): Pacer {
    return new Pacer(this.rate, this.opts.delaySeconds ?? 0.3, this.opts.maxLagSeconds ?? 2);
  }
}
