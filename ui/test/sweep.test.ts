import { describe, expect, it } from 'vitest';
import {
  AutoRange,
  advanceCursor,
  eraseSpans,
  Pacer,
  pxPerSample,
  SampleRing,
  SweepRenderer,
  valueToY,
  type SweepContext,
  type SweepOptions,
} from '../src/sweep';

type Call = [string, ...number[]];

/** A 2D context that records the calls the renderer makes. */
class FakeCtx implements SweepContext {
  calls: Call[] = [];
  strokeStyle: string | CanvasGradient | CanvasPattern = '';
  lineWidth = 1;
  lineJoin: CanvasLineJoin = 'miter';
  setTransform(a: number, b: number, c: number, d: number, e: number, f: number): void {
    this.calls.push(['setTransform', a, b, c, d, e, f]);
  }
  clearRect(x: number, y: number, w: number, h: number): void {
    this.calls.push(['clearRect', x, y, w, h]);
  }
  beginPath(): void {
    this.calls.push(['beginPath']);
  }
  moveTo(x: number, y: number): void {
    this.calls.push(['moveTo', x, y]);
  }
  lineTo(x: number, y: number): void {
    this.calls.push(['lineTo', x, y]);
  }
  stroke(): void {
    this.calls.push(['stroke']);
  }
  take(): Call[] {
    const c = this.calls;
    this.calls = [];
    return c;
  }
}

const count = (calls: Call[], name: string) => calls.filter((c) => c[0] === name).length;
const ramp = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('SampleRing', () => {
  it('is FIFO', () => {
    const r = new SampleRing(4);
    r.push(1);
    r.push(2);
    r.push(3);
    expect(r.shift()).toBe(1);
    expect(r.shift()).toBe(2);
    expect(r.length).toBe(1);
  });

  it('is bounded: overflow drops the oldest samples', () => {
    const r = new SampleRing(100);
    for (let i = 0; i < 1000; i++) r.push(i);
    expect(r.length).toBe(100);
    expect(r.dropped).toBe(900);
    expect(r.shift()).toBe(900);
  });

  it('discards at most what it holds, and is empty-safe', () => {
    const r = new SampleRing(8);
    for (const v of ramp(5)) r.push(v);
    r.discard(3);
    expect(r.shift()).toBe(3);
    r.discard(99);
    expect(r.length).toBe(0);
    expect(r.shift()).toBeNaN();
  });
});

describe('Pacer', () => {
  it('waits until the buffering delay is filled', () => {
    const p = new Pacer(500, 0.3, 2);
    expect(p.target).toBe(150);
    expect(p.step(100, 16)).toEqual({ draw: 0, skip: 0, blank: 8 });
    expect(p.isPlaying).toBe(false);
    p.step(150, 16);
    expect(p.isPlaying).toBe(true);
  });

  it('consumes at the sample rate against wall-clock, smoothly per frame', () => {
    const p = new Pacer(500, 0.3, 2);
    p.step(150, 0);
    let total = 0;
    const perFrame: number[] = [];
    for (let i = 0; i < 60; i++) {
      // Buffer kept at the target level, as if batches keep arriving.
      const { draw } = p.step(150, 1000 / 60);
      perFrame.push(draw);
      total += draw;
    }
    expect(Math.abs(total - 500)).toBeLessThanOrEqual(1);
    // 500 Hz at 60 fps is 8.33 samples a frame: never a jump.
    for (const d of perFrame) expect([8, 9]).toContain(d);
  });

  it('does not draw a newly arrived batch in one jump', () => {
    const p = new Pacer(125, 0.3, 2);
    p.step(38, 0);
    // A 0.5 s batch lands on top of the buffer: the next frame still draws ~1 frame's worth.
    const { draw, skip } = p.step(38 + 62, 16);
    expect(skip).toBe(0);
    expect(draw).toBeGreaterThanOrEqual(2);
    expect(draw).toBeLessThanOrEqual(3);
  });

  it('plays a little faster when behind, never more than 5 %', () => {
    const p = new Pacer(500, 0.3, 2);
    p.step(1000, 0);
    let total = 0;
    for (let i = 0; i < 100; i++) total += p.step(1000, 10).draw; // 1.4 s behind target
    expect(total).toBeGreaterThan(500);
    expect(total).toBeLessThanOrEqual(525 + 1);
  });

  it('skips ahead to the target delay when more than 2 s behind', () => {
    const p = new Pacer(500, 0.3, 2);
    p.step(150, 0);
    const { draw, skip } = p.step(1200, 20);
    expect(skip).toBe(1200 - 150);
    expect(draw).toBe(10);
  });

  it('re-buffers after running dry', () => {
    const p = new Pacer(100, 0.3, 2);
    p.step(30, 0);
    // 10 periods due (9 after the trim for being under target): 5 drawn, 4 blank.
    expect(p.step(5, 100)).toEqual({ draw: 5, skip: 0, blank: 4 });
    expect(p.isPlaying).toBe(false);
    // While re-buffering, time goes on as blank.
    expect(p.step(20, 100)).toEqual({ draw: 0, skip: 0, blank: 10 });
    p.step(30, 0);
    expect(p.isPlaying).toBe(true);
  });
});

describe('geometry', () => {
  it('pxPerSample = width / (sweepSeconds × rate)', () => {
    expect(pxPerSample(300, 6, 500)).toBeCloseTo(0.1);
    expect(pxPerSample(750, 6, 125)).toBeCloseTo(1);
  });

  it('advances the cursor and wraps at the right edge', () => {
    expect(advanceCursor(10, 5, 2, 100)).toBe(20);
    expect(advanceCursor(98, 1, 2, 100)).toBe(0);
    expect(advanceCursor(99, 3, 2, 100)).toBe(5);
    expect(advanceCursor(50, 1, 2, 0)).toBe(0);
  });

  it('scales values into pixel rows: max at top, min at bottom, clamped', () => {
    const r = { min: -1, max: 2 };
    expect(valueToY(2, r, 100)).toBe(0);
    expect(valueToY(-1, r, 100)).toBe(100);
    expect(valueToY(0.5, r, 100)).toBe(50);
    expect(valueToY(2, r, 100, 2)).toBe(2);
    expect(valueToY(-1, r, 100, 2)).toBe(98);
    expect(valueToY(99, r, 100, 2)).toBe(2);
    expect(valueToY(-99, r, 100, 2)).toBe(98);
    expect(valueToY(5, { min: 1, max: 1 }, 100)).toBe(50);
  });

  it('erases only the newly entered part of the band ahead of the cursor', () => {
    // Cursor at 40 advancing 5 px with a 12 px band: clear [52, 57).
    expect(eraseSpans(40, 5, 12, 300)).toEqual([{ x: 52, w: 5 }]);
    // Fractional positions are rounded outward.
    expect(eraseSpans(40.5, 0.2, 12, 300)).toEqual([{ x: 52, w: 1 }]);
  });

  it('splits the erase band at the right edge', () => {
    expect(eraseSpans(290, 6, 8, 300)).toEqual([
      { x: 298, w: 2 },
      { x: 0, w: 4 },
    ]);
    // Band already past the edge.
    expect(eraseSpans(295, 3, 10, 300)).toEqual([{ x: 5, w: 3 }]);
  });

  it('erases nothing without movement and everything for a full sweep', () => {
    expect(eraseSpans(10, 0, 12, 300)).toEqual([]);
    expect(eraseSpans(10, 300, 12, 300)).toEqual([{ x: 0, w: 300 }]);
  });
});

describe('AutoRange', () => {
  it('widens at once to cover every sample, with padding', () => {
    const a = new AutoRange(0.1);
    a.observe(0);
    const r = a.observe(10);
    expect(r.min).toBeCloseTo(-1);
    expect(r.max).toBeCloseTo(11);
    expect(a.observe(5)).toEqual(r);
  });

  it('refits to the last sweep at rollover', () => {
    const a = new AutoRange(0);
    a.observe(-100);
    a.observe(100);
    a.rollover();
    a.observe(0);
    a.observe(10);
    a.rollover();
    expect(a.observe(5)).toEqual({ min: 0, max: 10 });
  });
});

describe('SweepRenderer', () => {
  // 100 Hz across 100 px in 1 s → 1 px per sample; 0.3 s delay = 30 samples.
  const opts: SweepOptions = {
    rate: 100,
    sweepSeconds: 1,
    color: '#0f0',
    range: { min: 0, max: 100 },
    lineWidth: 0,
    eraseGapPx: 10,
  };

  function setup(o: Partial<SweepOptions> = {}) {
    const ctx = new FakeCtx();
    const r = new SweepRenderer(ctx, { ...opts, ...o });
    r.resize(100, 100, 2);
    ctx.take();
    return { ctx, r };
  }

  it('applies devicePixelRatio and style on resize, and clears', () => {
    const ctx = new FakeCtx();
    const r = new SweepRenderer(ctx, opts);
    r.resize(100, 50, 2);
    expect(ctx.calls).toEqual([
      ['setTransform', 2, 0, 0, 2, 0, 0],
      ['clearRect', 0, 0, 100, 50],
    ]);
    expect(ctx.strokeStyle).toBe('#0f0');
    expect(ctx.lineJoin).toBe('round');
  });

  it('draws only the samples that became due, continuing the line', () => {
    const { ctx, r } = setup();
    r.push(ramp(60), 100);
    expect(r.frame(0)).toBe(0); // starts playing, nothing due yet
    expect(r.frame(100)).toBe(10);
    let calls = ctx.take();
    expect(calls).toContainEqual(['clearRect', 10, 0, 10, 100]);
    expect(count(calls, 'moveTo')).toBe(1);
    expect(count(calls, 'lineTo')).toBe(9);
    expect(calls.find((c) => c[0] === 'moveTo')).toEqual(['moveTo', 0, 100]);
    expect(r.cursor).toBe(10);

    expect(r.frame(150)).toBe(5);
    calls = ctx.take();
    // Picks up at the last point, then 5 new segments: cost follows new samples only.
    expect(calls.filter((c) => c[0] === 'moveTo')).toEqual([['moveTo', 9, 91]]);
    expect(count(calls, 'lineTo')).toBe(5);
    expect(calls).toContainEqual(['clearRect', 20, 0, 5, 100]);
    expect(r.cursor).toBe(15);
  });

  it('wraps the cursor at the right edge and lifts the pen', () => {
    const { ctx, r } = setup({ maxLagSeconds: 5 });
    r.push(ramp(130), 100);
    r.frame(0);
    const drawn = r.frame(980) + r.frame(1030);
    expect(drawn).toBeGreaterThan(100);
    const ops = ctx.take().filter((c) => c[0] === 'moveTo' || c[0] === 'lineTo');
    // Sample i is drawn at x = i mod 100 (1 px per sample)...
    const points = ops.filter((c, i) => !(c[0] === 'moveTo' && i > 0 && c[1] === ops[i - 1][1]));
    expect(points.map((c) => c[1])).toEqual(ramp(drawn).map((i) => i % 100));
    // ...and the first point after the wrap starts a new line instead of joining across the screen.
    const wrapAt = ops.findIndex((c, i) => i > 0 && c[1] === 0);
    expect(ops[wrapAt][0]).toBe('moveTo');
    expect(r.cursor).toBe(drawn % 100);
  });

  it('lifts the pen across a gap (missed chunk)', () => {
    const { ctx, r } = setup();
    r.push(ramp(20), 100);
    r.push(ramp(20, 50), 100, true);
    r.frame(0);
    const drawn = r.frame(300);
    const ops = ctx.take().filter((c) => c[0] === 'moveTo' || c[0] === 'lineTo');
    // The gap marker takes one x-step (x = 20) and draws nothing; the line restarts at x = 21.
    expect(ops.filter((c) => c[0] === 'moveTo').map((c) => c[1])).toEqual([0, 21]);
    expect(ops.map((c) => c[1])).toEqual(ramp(drawn).filter((x) => x !== 20));
  });

  it('keeps sweeping, blank, when the data stops: no frozen trace', () => {
    const { ctx, r } = setup();
    r.push(ramp(40), 100);
    r.frame(0);
    // 0.5 s due but only 40 samples: all drawn, the rest of the time is blank.
    const moved = r.frame(500);
    expect(moved).toBeGreaterThanOrEqual(50);
    expect(r.buffered).toBe(0);
    expect(r.cursor).toBe(moved);
    ctx.take();
    expect(r.frame(700)).toBe(20);
    const calls = ctx.take();
    expect(count(calls, 'lineTo') + count(calls, 'moveTo')).toBe(0);
    // The erase band runs on ahead of the cursor, wiping the previous sweep.
    expect(calls).toContainEqual(['clearRect', moved + 10, 0, 20, 100]);
    expect(r.cursor).toBe(moved + 20);
  });

  it('keeps its buffer bounded however much arrives', () => {
    const { r } = setup();
    for (let i = 0; i < 100; i++) r.push(ramp(100), 100);
    expect(r.buffered).toBe(r.capacity);
    expect(r.capacity).toBe(300); // (2 s skip-ahead + 1 s) × 100 Hz
  });

  it('skips ahead when more than 2 s behind', () => {
    const { r } = setup();
    r.push(ramp(250), 100);
    r.frame(0);
    expect(r.frame(10)).toBe(1);
    expect(r.buffered).toBe(29); // skipped to the 30-sample target, then drew 1
  });

  it('restarts on a change of sample rate', () => {
    const { r } = setup();
    r.push(ramp(50), 100);
    r.push(ramp(10), 200);
    expect(r.buffered).toBe(11); // gap marker + the new-rate samples only
  });

  it('consumes without drawing while it has no size', () => {
    const ctx = new FakeCtx();
    const r = new SweepRenderer(ctx, opts);
    r.push(ramp(50), 100);
    r.frame(0);
    expect(r.frame(100)).toBe(10);
    expect(ctx.calls).toEqual([]);
    expect(r.buffered).toBe(40);
  });

  it('auto-ranges traces in arbitrary units', () => {
    const { ctx, r } = setup({ range: 'auto' });
    r.push([1000, 3000, 2000, 1000, 3000, ...ramp(40, 2000)], 100);
    r.frame(0);
    r.frame(30);
    const ys = ctx.take().filter((c) => c[0] === 'moveTo' || c[0] === 'lineTo').map((c) => c[2]);
    // The range grows to fit: the first sample is mid-height of a degenerate range,
    // the 3000 peak lands inside the canvas, not clipped away.
    expect(ys[0]).toBe(50);
    expect(ys[1]).toBeGreaterThan(0);
    expect(ys[1]).toBeLessThan(100);
  });
});
