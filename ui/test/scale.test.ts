import { describe, expect, it } from 'vitest';
import { ecgGain, ecgRange, PX_PER_MM, scaleFor, sweepSpeed } from '../src/scale';

describe('waveform scale', () => {
  it('uses 25 mm/s where the trace is wide enough, else a slower standard speed', () => {
    expect(sweepSpeed(900)).toBe(25); // 9.5 s
    expect(sweepSpeed(280)).toBe(12.5); // 25 mm/s would show only 3 s → 5.9 s at 12.5
    expect(sweepSpeed(100)).toBe(6.25);
  });

  it('picks the largest standard gain that fits 3 mV', () => {
    expect(ecgGain(300)).toBe(20);
    expect(ecgGain(150)).toBe(10);
    expect(ecgGain(60)).toBe(5);
    expect(ecgGain(20)).toBe(5);
  });

  it('states gain and speed, and sizes the 1 mV pulse to the gain', () => {
    const s = scaleFor('ecg', 900, 150);
    expect(s.text).toBe('10 mm/mV · 25 mm/s');
    expect(s.mvPx).toBeCloseTo(10 * PX_PER_MM);
    expect(s.sweepSeconds).toBeCloseTo(900 / (25 * PX_PER_MM));
    const r = ecgRange(150, 10);
    expect((r.max - r.min) * 10 * PX_PER_MM).toBeCloseTo(150);
    expect(r.min).toBeLessThan(0);
  });

  it('keeps the pleth on a fixed scale whatever the signal', () => {
    const a = scaleFor('pleth', 280, 80);
    expect(a.range).toEqual({ min: 0, max: 1.2 });
    expect(a.text).toBe('fixed scale · 12.5 mm/s');
  });
});
