// Drawing a stretch of stored waveform on a canvas (full-disclosure review and the seconds
// before an alarm): a time grid, the samples as polylines that are never joined across a gap,
// each gap shaded and labelled, an optional time cursor and an optional alarm marker.

import { sampleRange, stripPolylines, xAtTime, type SamplesOut } from './detailmath';

export interface StripOptions {
  color: string;
  /** Fixed display range (ECG, mV) or auto from the samples. */
  range: { min: number; max: number } | 'auto';
  /** Time cursor, ms. */
  cursor?: number | null;
  /** Second caliper cursor, ms: the interval between the two is shaded. */
  cursor2?: number | null;
  /** Alarm time marker, ms. */
  marker?: number | null;
}

/** Sizes the canvas backing store to its CSS box; returns the CSS size. */
export function fitCanvas(canvas: HTMLCanvasElement): { w: number; h: number; dpr: number } {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  const bw = Math.round(w * dpr);
  const bh = Math.round(h * dpr);
  if (canvas.width !== bw) canvas.width = bw;
  if (canvas.height !== bh) canvas.height = bh;
  return { w, h, dpr };
}

export function drawStrip(
  canvas: HTMLCanvasElement,
  data: SamplesOut | null,
  start: number,
  windowMs: number,
  opts: StripOptions,
): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const { w, h, dpr } = fitCanvas(canvas);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  if (w <= 0 || h <= 0) return;

  // Grid: a line per second, fainter ones per 200 ms (ECG paper habit).
  const firstTick = Math.ceil(start / 200) * 200;
  for (let t = firstTick; t < start + windowMs; t += 200) {
    const x = Math.round(xAtTime(t, w, start, windowMs)) + 0.5;
    ctx.strokeStyle = t % 1000 === 0 ? '#1f2a3a' : '#111823';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, h);
    ctx.stroke();
  }

  if (data) {
    // Gaps: shaded, labelled, never drawn across.
    ctx.font = '12px "DejaVu Sans", sans-serif';
    for (const [a, b] of data.gaps) {
      const x0 = Math.max(0, xAtTime(a, w, start, windowMs));
      const x1 = Math.min(w, xAtTime(b, w, start, windowMs));
      if (x1 <= x0) continue;
      ctx.fillStyle = 'rgba(138, 148, 166, 0.12)';
      ctx.fillRect(x0, 0, x1 - x0, h);
      if (x1 - x0 > 60) {
        ctx.fillStyle = '#8a94a6';
        ctx.fillText('no data', x0 + 6, h / 2);
      }
    }
    const range = opts.range === 'auto' ? sampleRange(data) : opts.range;
    if (range) {
      const margin = 4;
      const y = (v: number) =>
        margin + (1 - (v - range.min) / (range.max - range.min)) * Math.max(1, h - 2 * margin);
      ctx.strokeStyle = opts.color;
      ctx.lineWidth = 1.25;
      ctx.lineJoin = 'round';
      for (const line of stripPolylines(data, start, windowMs, w)) {
        ctx.beginPath();
        line.forEach(([x, v], i) => (i === 0 ? ctx.moveTo(x, y(v)) : ctx.lineTo(x, y(v))));
        ctx.stroke();
      }
    }
  }

  if (opts.marker !== undefined && opts.marker !== null) {
    const x = Math.round(xAtTime(opts.marker, w, start, windowMs)) - 1;
    ctx.fillStyle = '#ff1744';
    ctx.fillRect(x, 0, 2, h);
  }
  if (opts.cursor2 !== undefined && opts.cursor2 !== null) {
    const x2 = Math.round(xAtTime(opts.cursor2, w, start, windowMs)) + 0.5;
    if (opts.cursor !== undefined && opts.cursor !== null) {
      const x1 = Math.round(xAtTime(opts.cursor, w, start, windowMs)) + 0.5;
      ctx.fillStyle = 'rgba(255, 214, 0, 0.10)';
      ctx.fillRect(Math.min(x1, x2), 0, Math.abs(x2 - x1), h);
    }
    dashedLine(ctx, x2, h, '#ffd600');
  }
  if (opts.cursor !== undefined && opts.cursor !== null) {
    dashedLine(ctx, Math.round(xAtTime(opts.cursor, w, start, windowMs)) + 0.5, h, '#ffffff');
  }
}

/** A dashed vertical cursor line at `x`. */
function dashedLine(ctx: CanvasRenderingContext2D, x: number, h: number, colour: string): void {
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1;
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.moveTo(x, 0);
  ctx.lineTo(x, h);
  ctx.stroke();
  ctx.setLineDash([]);
}
