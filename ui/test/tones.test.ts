import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AlarmInfo, Priority } from '../src/frames';
import {
  AlarmSound,
  type AudioContextLike,
  type AudioParamLike,
  burstLength,
  burstPeriod,
  burstSchedule,
  FUNDAMENTAL_HZ,
  HARMONICS,
  IEC_F0_MAX_HZ,
  IEC_F0_MIN_HZ,
  IEC_HARMONIC_BAND_HZ,
  IEC_HARMONIC_MAX_DB_BELOW_F0,
  IEC_HIGH_MID_GAP_MS,
  IEC_INTERBURST_MS,
  IEC_MIN_HARMONICS_IN_BAND,
  IEC_PULSE_MS,
  IEC_SPACING_MS,
  isAudible,
  pulseEnvelope,
  RAMP_FRACTION,
  type SoundStatus,
  soundingPriority,
  soundStateText,
  STOP_RAMP_S,
  TICK_MS,
} from '../src/tones';

const PRIORITIES: Priority[] = ['high', 'medium', 'low'];

const last = <T>(xs: readonly T[]): T | undefined => xs[xs.length - 1];

const alarm = (priority: Priority, extra: Partial<AlarmInfo> = {}): AlarmInfo => ({
  id: `${priority}-${Math.random()}`,
  bed: 'icu/1',
  code: 'HR_HIGH',
  label: 'HR HIGH',
  priority,
  since: 0,
  value: null,
  limit: null,
  ...extra,
});

/** Spacings (ms) between consecutive pulses: end of one to start of the next. */
const spacings = (p: Priority): number[] => {
  const s = burstSchedule(p);
  return s.slice(1).map((q, i) => q.start - (s[i].start + s[i].duration));
};

describe('soundingPriority', () => {
  it('is silent without audible alarms', () => {
    expect(soundingPriority([])).toBeNull();
    expect(soundingPriority([alarm('high', { audible: false })])).toBeNull();
  });

  it('excludes acknowledged and audio-paused alarms', () => {
    const list = [
      alarm('high', { state: 'acknowledged', audible: false }),
      alarm('medium', { state: 'audio-paused', audible: false }),
      alarm('low', { state: 'active', audible: true }),
    ];
    expect(soundingPriority(list)).toBe('low');
  });

  it('treats a missing `audible` as audible', () => {
    expect(isAudible(alarm('low'))).toBe(true);
    expect(soundingPriority([alarm('medium')])).toBe('medium');
  });

  it('sounds an acknowledged alarm the backend still marks audible (communication lost)', () => {
    const commLost = alarm('medium', { code: 'COMM_LOST', technical: true, state: 'acknowledged', audible: true });
    expect(soundingPriority([commLost])).toBe('medium');
  });

  it('takes the highest audible priority', () => {
    expect(soundingPriority([alarm('medium'), alarm('high'), alarm('low')])).toBe('high');
    expect(soundingPriority([alarm('low'), alarm('medium')])).toBe('medium');
    expect(soundingPriority([alarm('high', { audible: false }), alarm('medium'), alarm('low')])).toBe('medium');
  });

  it('sounds an unknown priority as high', () => {
    expect(soundingPriority([alarm('urgent' as Priority)])).toBe('high');
    expect(soundingPriority([alarm('toString' as Priority)])).toBe('high');
  });
});

describe('burstSchedule', () => {
  it('has 10 / 3 / 2 pulses', () => {
    expect(burstSchedule('high')).toHaveLength(10);
    expect(burstSchedule('medium')).toHaveLength(3);
    expect(burstSchedule('low')).toHaveLength(2);
  });

  it.each(PRIORITIES)('%s: pulse durations within the IEC range', (p) => {
    const [lo, hi] = IEC_PULSE_MS[p];
    for (const pulse of burstSchedule(p)) {
      expect(pulse.duration).toBeGreaterThanOrEqual(lo);
      expect(pulse.duration).toBeLessThanOrEqual(hi);
    }
  });

  it('medium and low: every spacing within the IEC range', () => {
    for (const p of ['medium', 'low'] as const) {
      const [lo, hi] = IEC_SPACING_MS[p];
      for (const s of spacings(p)) {
        expect(s).toBeGreaterThanOrEqual(lo);
        expect(s).toBeLessThanOrEqual(hi);
      }
    }
    expect(burstSchedule('medium').map((q) => q.duration)).toEqual([200, 200, 200]);
    expect(spacings('medium')).toEqual([200, 200]);
  });

  it('high: 3 + 2 + 3 + 2 grouping with IEC spacings', () => {
    const s = spacings('high');
    const [xlo, xhi] = IEC_SPACING_MS.high;
    const td = burstSchedule('high')[0].duration;
    const x = s[0];
    expect(x).toBeGreaterThanOrEqual(xlo);
    expect(x).toBeLessThanOrEqual(xhi);
    // Inside groups (pulses 1-2, 2-3, 4-5, 6-7, 7-8, 9-10): spacing x.
    for (const i of [0, 1, 3, 5, 6, 8]) expect(s[i]).toBe(x);
    // Between 3rd-4th and 8th-9th: 2x + td.
    expect(s[2]).toBe(2 * x + td);
    expect(s[7]).toBe(2 * x + td);
    // Between 5th-6th: 0.35-1.30 s, longer than the 3-2 gap.
    expect(s[4]).toBeGreaterThanOrEqual(IEC_HIGH_MID_GAP_MS[0]);
    expect(s[4]).toBeLessThanOrEqual(IEC_HIGH_MID_GAP_MS[1]);
    expect(s[4]).toBeGreaterThan(s[2]);
    expect(s[2]).toBeGreaterThan(x);
  });

  it.each(PRIORITIES)('%s: fundamental within 150-1000 Hz', (p) => {
    for (const pulse of burstSchedule(p)) {
      expect(pulse.frequency).toBe(FUNDAMENTAL_HZ[p]);
      expect(pulse.frequency).toBeGreaterThanOrEqual(IEC_F0_MIN_HZ);
      expect(pulse.frequency).toBeLessThanOrEqual(IEC_F0_MAX_HZ);
    }
  });

  it.each(PRIORITIES)('%s: at least 4 harmonics in 300-4000 Hz within 15 dB', (p) => {
    const f0 = FUNDAMENTAL_HZ[p];
    const [lo, hi] = IEC_HARMONIC_BAND_HZ;
    const inBand = HARMONICS.map((_, i) => f0 * (i + 1)).filter((f) => f >= lo && f <= hi);
    expect(inBand.length).toBeGreaterThanOrEqual(IEC_MIN_HARMONICS_IN_BAND);
    for (let i = 1; i < HARMONICS.length; i++) {
      expect(HARMONICS[i]).toBeLessThan(HARMONICS[i - 1]);
      expect(-20 * Math.log10(HARMONICS[i] / HARMONICS[0])).toBeLessThanOrEqual(IEC_HARMONIC_MAX_DB_BELOW_F0);
    }
  });

  it.each(PRIORITIES)('%s: interburst interval within the IEC range', (p) => {
    const tb = burstPeriod(p) - burstLength(p);
    expect(tb).toBeGreaterThanOrEqual(IEC_INTERBURST_MS[p][0]);
    expect(tb).toBeLessThanOrEqual(IEC_INTERBURST_MS[p][1]);
  });

  it('repeats every 5 / 8 / 20 s after the end of a burst', () => {
    expect(burstPeriod('high') - burstLength('high')).toBe(5000);
    expect(burstPeriod('medium') - burstLength('medium')).toBe(8000);
    expect(burstPeriod('low') - burstLength('low')).toBe(20000);
  });

  it('envelope: rise and fall of 15 % of the pulse, centred on its edges', () => {
    const pulse = burstSchedule('high')[1];
    const env = pulseEnvelope(pulse);
    const ramp = RAMP_FRACTION * pulse.duration;
    expect(env.map((e) => e.gain)).toEqual([0, 1, 1, 0]);
    expect(env[1].t - env[0].t).toBeCloseTo(ramp);
    expect(env[3].t - env[2].t).toBeCloseTo(ramp);
    expect((env[0].t + env[1].t) / 2).toBeCloseTo(pulse.start);
    expect((env[2].t + env[3].t) / 2).toBeCloseTo(pulse.start + pulse.duration);
    // IEC rise time (10-90 %) 10-20 % of td.
    expect(0.8 * RAMP_FRACTION).toBeGreaterThanOrEqual(0.1);
    expect(0.8 * RAMP_FRACTION).toBeLessThanOrEqual(0.2);
  });
});

describe('soundStateText', () => {
  it('asks for a click while audio is off and says nothing when it runs', () => {
    expect(soundStateText('off')).toBe('Sound off — click to enable');
    expect(soundStateText('running')).toBeNull();
    expect(soundStateText('unavailable')).toMatch(/unavailable/);
  });
});

// ---- AlarmSound with a fake AudioContext ---------------------------------

class FakeParam implements AudioParamLike {
  value = 0;
  events: Array<[string, number, number]> = [];
  setValueAtTime(v: number, t: number): void {
    this.events.push(['set', v, t]);
  }
  linearRampToValueAtTime(v: number, t: number): void {
    this.events.push(['ramp', v, t]);
  }
  cancelScheduledValues(t: number): void {
    this.events.push(['cancel', 0, t]);
  }
}

class FakeNode {
  outputs: FakeNode[] = [];
  connect(d: FakeNode): void {
    this.outputs.push(d);
  }
  disconnect(): void {
    this.outputs = [];
  }
}

class FakeGain extends FakeNode {
  gain = new FakeParam();
}

class FakeOsc extends FakeNode {
  frequency = new FakeParam();
  wave: unknown = null;
  startAt: number | null = null;
  stops: number[] = [];
  setPeriodicWave(w: PeriodicWave): void {
    this.wave = w;
  }
  start(t = 0): void {
    this.startAt = t;
  }
  stop(t = 0): void {
    this.stops.push(t);
  }
  /** When this oscillator actually stops (the last stop call wins). */
  get stopAt(): number {
    return this.stops[this.stops.length - 1];
  }
}

class FakeContext implements AudioContextLike {
  currentTime = 0;
  state = 'suspended';
  destination = new FakeNode();
  oscillators: FakeOsc[] = [];
  waves: Array<{ real: Float32Array; imag: Float32Array }> = [];
  closed = false;
  /** Whether resume() succeeds (false = no user gesture yet, as a browser would). */
  allowResume = true;
  createGain(): FakeGain {
    return new FakeGain();
  }
  createOscillator(): FakeOsc {
    const o = new FakeOsc();
    this.oscillators.push(o);
    return o;
  }
  createPeriodicWave(real: Float32Array<ArrayBuffer>, imag: Float32Array<ArrayBuffer>): PeriodicWave {
    const w = { real, imag };
    this.waves.push(w);
    return w as unknown as PeriodicWave;
  }
  resume(): Promise<void> {
    if (this.allowResume) this.state = 'running';
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    this.state = 'closed';
    return Promise.resolve();
  }
  /** Oscillators that make sound after `t` (started, and stopping later than t). */
  soundingAfter(t: number): FakeOsc[] {
    return this.oscillators.filter((o) => o.startAt !== null && o.stopAt > t && o.stopAt > o.startAt);
  }
}

describe('AlarmSound', () => {
  let ctx: FakeContext;
  let statuses: SoundStatus[];
  let sound: AlarmSound;

  /** Advances the audio clock and the timers together. */
  const advance = async (ms: number): Promise<void> => {
    for (let done = 0; done < ms; done += TICK_MS) {
      ctx.currentTime += TICK_MS / 1000;
      await vi.advanceTimersByTimeAsync(TICK_MS);
    }
  };

  beforeEach(() => {
    vi.useFakeTimers();
    ctx = new FakeContext();
    statuses = [];
    sound = new AlarmSound({ createContext: () => ctx, onStatus: (s) => statuses.push(s) });
  });

  afterEach(() => {
    sound.dispose();
    vi.useRealTimers();
  });

  it('schedules a high burst: 10 pulses at 880 Hz with the harmonic wave', async () => {
    sound.update([alarm('medium'), alarm('high')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(ctx.oscillators).toHaveLength(10);
    for (const o of ctx.oscillators) {
      expect(o.frequency.value).toBe(FUNDAMENTAL_HZ.high);
      expect(o.wave).toBe(ctx.waves[0]);
      expect(o.outputs).toHaveLength(1);
    }
    expect(Array.from(ctx.waves[0].imag)).toEqual([0, ...HARMONICS].map((v) => Math.fround(v)));
    // Pulses follow the burst schedule on the audio clock.
    const starts = ctx.oscillators.map((o) => o.startAt!);
    const sched = burstSchedule('high');
    const ramp = (RAMP_FRACTION * sched[0].duration) / 2 / 1000;
    sched.forEach((p, i) => expect(starts[i] - starts[0]).toBeCloseTo(p.start / 1000));
    expect(starts[0]).toBeGreaterThanOrEqual(0);
    expect(ctx.oscillators[9].stopAt - ctx.oscillators[9].startAt!).toBeCloseTo(sched[9].duration / 1000 + 2 * ramp);
    expect(last(statuses)).toEqual({ state: 'running', wanted: 'high' });
  });

  it('repeats the burst after the interburst interval', async () => {
    sound.update([alarm('medium')]);
    expect(ctx.oscillators).toHaveLength(3);
    const first = ctx.oscillators[0].startAt!;
    await advance(burstPeriod('medium') + 1000);
    expect(ctx.oscillators).toHaveLength(6);
    expect(ctx.oscillators[3].startAt! - first).toBeCloseTo(burstPeriod('medium') / 1000);
    for (const o of ctx.oscillators) expect(o.frequency.value).toBe(FUNDAMENTAL_HZ.medium);
  });

  it('does not restart the rhythm when the priority is unchanged', () => {
    sound.update([alarm('low')]);
    sound.update([alarm('low'), alarm('low', { audible: false })]);
    expect(ctx.oscillators).toHaveLength(2);
  });

  it('lets a higher priority take over at once', async () => {
    sound.update([alarm('low')]);
    await advance(1000);
    const lows = [...ctx.oscillators];
    const now = ctx.currentTime;
    sound.update([alarm('low'), alarm('high')]);
    const highs = ctx.oscillators.slice(lows.length);
    expect(highs).toHaveLength(10);
    expect(highs[0].startAt! - now).toBeLessThan(0.1);
    expect(highs.every((o) => o.frequency.value === FUNDAMENTAL_HZ.high)).toBe(true);
    // Nothing of the low sound continues past the stop ramp.
    for (const o of lows) expect(o.stopAt).toBeLessThanOrEqual(now + STOP_RAMP_S + 1e-9);
  });

  it('goes silent within one pulse when nothing is audible', async () => {
    sound.update([alarm('high')]);
    await advance(500); // mid-burst: some pulses played, some pending
    const now = ctx.currentTime;
    expect(ctx.soundingAfter(now).length).toBeGreaterThan(0);
    sound.update([alarm('high', { state: 'acknowledged', audible: false })]);
    const pulse = burstSchedule('high')[0].duration / 1000;
    expect(ctx.soundingAfter(now + pulse)).toHaveLength(0);
    expect(ctx.soundingAfter(now + STOP_RAMP_S + 1e-9)).toHaveLength(0);
    // And nothing new is scheduled later.
    const count = ctx.oscillators.length;
    await advance(30_000);
    expect(ctx.oscillators).toHaveLength(count);
    expect(last(statuses)).toEqual({ state: 'running', wanted: null });
  });

  it('waits for a user gesture, then plays what is wanted', async () => {
    ctx.allowResume = false;
    const target = new EventTarget();
    sound.attach(target);
    expect(last(statuses)).toEqual({ state: 'off', wanted: null });
    sound.update([alarm('medium')]);
    await vi.advanceTimersByTimeAsync(0);
    // Still reported as off, with the alarm that should be sounding.
    expect(last(statuses)).toEqual({ state: 'off', wanted: 'medium' });
    ctx.allowResume = true;
    target.dispatchEvent(new Event('pointerdown'));
    await vi.advanceTimersByTimeAsync(0);
    expect(last(statuses)).toEqual({ state: 'running', wanted: 'medium' });
    expect(ctx.soundingAfter(ctx.currentTime).length).toBeGreaterThan(0);
  });

  it('creates the context lazily', () => {
    const factory = vi.fn(() => ctx);
    const s = new AlarmSound({ createContext: factory });
    s.update([alarm('low', { audible: false })]);
    expect(factory).not.toHaveBeenCalled();
    s.update([alarm('low')]);
    expect(factory).toHaveBeenCalledTimes(1);
    s.dispose();
  });

  it('reports unavailable audio and keeps working without it', () => {
    const s = new AlarmSound({
      createContext: () => {
        throw new Error('no audio');
      },
      onStatus: (st) => statuses.push(st),
    });
    expect(() => s.update([alarm('high')])).not.toThrow();
    expect(last(statuses)).toEqual({ state: 'unavailable', wanted: 'high' });
    s.dispose();
  });

  it('dispose stops the sound, the timer and closes the context', async () => {
    sound.update([alarm('high')]);
    const now = ctx.currentTime;
    sound.dispose();
    expect(ctx.soundingAfter(now + STOP_RAMP_S + 1e-9)).toHaveLength(0);
    expect(ctx.closed).toBe(true);
    expect(vi.getTimerCount()).toBeLessThanOrEqual(1); // only the post-fade disconnect
    await vi.advanceTimersByTimeAsync(1000);
    expect(vi.getTimerCount()).toBe(0);
  });
});
