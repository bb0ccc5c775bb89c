// Auditory alarm signals after IEC 60601-1-8 (Tables 3 and 4), played with the
// Web Audio API.
//
// The backend owns the alarm state machine: each AlarmInfo carries `audible`,
// already false for acknowledged / audio-paused alarms (except communication
// lost, which always sounds). This module only turns "which alarms sound now"
// into the IEC burst of the highest priority among them.
//
// Pure part (unit-tested): `isAudible`, `soundingPriority`, `burstSchedule`,
// `pulseEnvelope`. `AlarmSound` schedules the bursts on the AudioContext clock.
//
// Terms (IEC 60601-1-8, 3.x):
// - pulse duration td: effective duration, between the 50 % amplitude points of
//   rise and fall;
// - pulse spacing ts: from the end of one pulse (50 % of fall) to the start of
//   the next (50 % of rise);
// - interburst interval tb: from the end of the last pulse of a burst to the
//   start of the first pulse of the next burst.
// The start/duration of a `Pulse` below are these effective (50 %) values; the
// gain ramps are centred on them (see `pulseEnvelope`).

import type { AlarmInfo, Priority } from './frames';
import { PRIORITY_RANK } from './store';

// ---- Pulse characteristics (IEC 60601-1-8 Table 3) ----------------------

/** Fundamental frequency f0 per priority. IEC: 150 Hz ≤ f0 ≤ 1000 Hz. */
export const FUNDAMENTAL_HZ: Readonly<Record<Priority, number>> = { high: 880, medium: 660, low: 520 };
export const IEC_F0_MIN_HZ = 150;
export const IEC_F0_MAX_HZ = 1000;

/**
 * Relative amplitudes of harmonics 1..5 (index 0 = fundamental).
 * IEC: at least 4 harmonic components in 300–4000 Hz, each within ±15 dB of
 * the fundamental. The smallest here, 0.25, is −12 dB. For 880 Hz the 5th
 * harmonic (4400 Hz) falls outside 300–4000 Hz, leaving exactly 4 in range.
 */
export const HARMONICS: readonly number[] = [1, 0.7, 0.5, 0.35, 0.25];
export const IEC_HARMONIC_BAND_HZ: readonly [number, number] = [300, 4000];
export const IEC_MIN_HARMONICS_IN_BAND = 4;
export const IEC_HARMONIC_MAX_DB_BELOW_F0 = 15;

/** Effective pulse duration td (ms). IEC: high 75–200 ms; medium and low 125–250 ms. */
export const PULSE_MS: Readonly<Record<Priority, number>> = { high: 150, medium: 200, low: 200 };
export const IEC_PULSE_MS: Readonly<Record<Priority, readonly [number, number]>> = {
  high: [75, 200],
  medium: [125, 250],
  low: [125, 250],
};

/**
 * Rise and fall time as a fraction of td, as a linear gain ramp.
 * IEC: rise time tr (10 %–90 %) 10–20 % of td; fall time tf ≤ td − tr.
 * The 10–90 % part of a linear ramp over 15 % of td takes 12 % of td.
 */
export const RAMP_FRACTION = 0.15;

// ---- Burst characteristics (IEC 60601-1-8 Table 4) ----------------------

/**
 * Pulse spacing ts inside a group (ms), end of one pulse to start of the next.
 * IEC: high x = 50–125 ms; medium and low y = 125–250 ms.
 */
export const SPACING_MS: Readonly<Record<Priority, number>> = { high: 100, medium: 200, low: 200 };
export const IEC_SPACING_MS: Readonly<Record<Priority, readonly [number, number]>> = {
  high: [50, 125],
  medium: [125, 250],
  low: [125, 250],
};

/**
 * High priority, 10 pulses grouped 3 + 2, 3 + 2. IEC: the spacing between the
 * 3rd and 4th pulse (and the 8th and 9th) is 2x + td; between the 5th and 6th
 * it is 0.35–1.30 s.
 */
export const HIGH_GROUPS: readonly number[] = [3, 2, 3, 2];
export const HIGH_MID_GAP_MS = 600;
export const IEC_HIGH_MID_GAP_MS: readonly [number, number] = [350, 1300];

/** Pulses per burst. IEC: high 10, medium 3, low 1 or 2. */
export const PULSES: Readonly<Record<Priority, number>> = { high: 10, medium: 3, low: 2 };

/**
 * Interburst interval tb (ms), end of a burst's last pulse to the start of the
 * next burst. IEC: high 2.5–15 s; medium 2.5–30 s; low more than 15 s.
 * (With tb measured this way the high burst, 3.3 s long, repeats every 8.3 s;
 * a 5 s start-to-start period would leave only 1.7 s, below the IEC minimum.)
 */
export const INTERBURST_MS: Readonly<Record<Priority, number>> = { high: 5_000, medium: 8_000, low: 20_000 };
export const IEC_INTERBURST_MS: Readonly<Record<Priority, readonly [number, number]>> = {
  high: [2_500, 15_000],
  medium: [2_500, 30_000],
  low: [15_000, Number.POSITIVE_INFINITY],
};

// ---- Pure part ----------------------------------------------------------

/** One pulse of a burst, relative to the burst start (effective values, ms / Hz). */
export interface Pulse {
  start: number;
  duration: number;
  frequency: number;
}

/** Whether an alarm sounds now. A missing `audible` counts as audible (fail loud). */
export function isAudible(a: AlarmInfo): boolean {
  return a.audible !== false;
}

/**
 * The priority to sound: the highest among the audible alarms, or null for silence.
 * An audible alarm with a priority this UI does not know sounds as high.
 */
export function soundingPriority(alarms: readonly AlarmInfo[]): Priority | null {
  let best: Priority | null = null;
  for (const a of alarms) {
    if (!isAudible(a)) continue;
    const p: Priority = Object.prototype.hasOwnProperty.call(PRIORITY_RANK, a.priority) ? a.priority : 'high';
    if (best === null || PRIORITY_RANK[p] > PRIORITY_RANK[best]) best = p;
  }
  return best;
}

/** The pulses of one burst of the given priority, in order. */
export function burstSchedule(priority: Priority): Pulse[] {
  const duration = PULSE_MS[priority];
  const frequency = FUNDAMENTAL_HZ[priority];
  const x = SPACING_MS[priority];
  const groups = priority === 'high' ? HIGH_GROUPS : [PULSES[priority]];
  // Gap before each group after the first: 2x + td between 3+2 halves,
  // HIGH_MID_GAP_MS between the two 3+2 sequences.
  const groupGap = (g: number): number => (g % 2 === 1 ? 2 * x + duration : HIGH_MID_GAP_MS);
  const pulses: Pulse[] = [];
  let t = 0;
  groups.forEach((n, g) => {
    if (g > 0) t += groupGap(g) - x;
    for (let i = 0; i < n; i++) {
      pulses.push({ start: t, duration, frequency });
      t += duration + x;
    }
  });
  return pulses;
}

/** From the start of a burst's first pulse to the end of its last (ms). */
export function burstLength(priority: Priority): number {
  const pulses = burstSchedule(priority);
  const last = pulses[pulses.length - 1];
  return last.start + last.duration;
}

/** Start-to-start period of the repeating burst (ms). */
export function burstPeriod(priority: Priority): number {
  return burstLength(priority) + INTERBURST_MS[priority];
}

/**
 * Gain points (ms relative to the burst start, gain 0..1) of one pulse:
 * linear ramps of RAMP_FRACTION·td centred on the pulse's effective start and
 * end, so the 50 % points fall exactly on them.
 */
export function pulseEnvelope(p: Pulse): Array<{ t: number; gain: number }> {
  const half = (RAMP_FRACTION * p.duration) / 2;
  return [
    { t: p.start - half, gain: 0 },
    { t: p.start + half, gain: 1 },
    { t: p.start + p.duration - half, gain: 1 },
    { t: p.start + p.duration + half, gain: 0 },
  ];
}

// ---- Web Audio ----------------------------------------------------------

/** Overall level of the alarm sound (0..1), same for all priorities. */
export const MASTER_GAIN = 0.6;
/** How often the scheduler wakes up (ms). */
export const TICK_MS = 500;
/** Bursts starting within this far ahead of the audio clock are scheduled (s). */
export const LOOKAHEAD_S = 1.5;
/** Delay before a newly started sound's first pulse (s): room for the first ramp. */
export const START_LEAD_S = 0.03;
/** Fade-out when a sound stops or is replaced (s), shorter than any pulse. */
export const STOP_RAMP_S = 0.02;

/** The parts of the Web Audio API used here (a real AudioContext satisfies it). */
export interface AudioParamLike {
  value: number;
  setValueAtTime(value: number, time: number): unknown;
  linearRampToValueAtTime(value: number, time: number): unknown;
  cancelScheduledValues(time: number): unknown;
}
export interface AudioNodeLike {
  connect(destination: AudioNodeLike): unknown;
  disconnect(): void;
}
export interface GainNodeLike extends AudioNodeLike {
  readonly gain: AudioParamLike;
}
export interface OscillatorLike extends AudioNodeLike {
  readonly frequency: AudioParamLike;
  setPeriodicWave(wave: PeriodicWave): void;
  start(when?: number): void;
  stop(when?: number): void;
}
export interface AudioContextLike {
  readonly currentTime: number;
  readonly state: string;
  readonly destination: AudioNodeLike;
  createGain(): GainNodeLike;
  createOscillator(): OscillatorLike;
  createPeriodicWave(real: Float32Array<ArrayBuffer>, imag: Float32Array<ArrayBuffer>): PeriodicWave;
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** 'running': audio plays; 'off': waiting for a user gesture; 'unavailable': no Web Audio. */
export type SoundState = 'running' | 'off' | 'unavailable';

export interface SoundStatus {
  state: SoundState;
  /** The priority that should be sounding now (whether or not audio runs). */
  wanted: Priority | null;
}

/** Header notice for a sound state; null = nothing to show. */
export function soundStateText(state: SoundState): string | null {
  switch (state) {
    case 'running':
      return null;
    case 'off':
      return 'Sound off — click to enable';
    case 'unavailable':
      return 'Sound unavailable';
  }
}

export interface AlarmSoundOptions {
  /** Makes the AudioContext (null or throw = no audio). Default: the browser's. */
  createContext?: () => AudioContextLike | null;
  /** Called whenever the status changes. */
  onStatus?: (status: SoundStatus) => void;
}

/** Events that count as a user gesture for starting audio. */
const GESTURE_EVENTS = ['pointerdown', 'keydown', 'click'] as const;

// Compile-time check that the real thing fits the interface the tests fake.
const _fits: (c: AudioContext) => AudioContextLike = (c) => c;
void _fits;

function browserContext(): AudioContextLike | null {
  const g = globalThis as { AudioContext?: typeof AudioContext; webkitAudioContext?: typeof AudioContext };
  const Ctor = g.AudioContext ?? g.webkitAudioContext;
  return Ctor ? new Ctor({ latencyHint: 'interactive' }) : null;
}

interface Voice {
  osc: OscillatorLike;
  gain: GainNodeLike;
  /** Context time the pulse's sound ends. */
  end: number;
}

/**
 * Plays the repeating IEC burst of the highest audible priority.
 * Sound never gates the visual alarms: without audio this only reports its state.
 */
export class AlarmSound {
  private readonly createContext: () => AudioContextLike | null;
  private readonly onStatus: (status: SoundStatus) => void;
  private ctx: AudioContextLike | null = null;
  private master: GainNodeLike | null = null;
  private waves = new Map<Priority, PeriodicWave>();
  private unavailable = false;
  private disposed = false;
  /** Priority wanted by the last update. */
  private wanted: Priority | null = null;
  /** Priority whose bursts are scheduled now (null = silent). */
  private playing: Priority | null = null;
  /** Context time the next burst starts. */
  private nextBurstAt = 0;
  private voices: Voice[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private target: EventTarget | null = null;
  private lastStatus = '';
  private readonly onGesture = (): void => this.unlock();

  constructor(options: AlarmSoundOptions = {}) {
    this.createContext = options.createContext ?? browserContext;
    this.onStatus = options.onStatus ?? (() => {});
  }

  /** Listens for user gestures on `target` (the document) to start audio. */
  attach(target: EventTarget): void {
    this.target = target;
    for (const type of GESTURE_EVENTS) target.addEventListener(type, this.onGesture, true);
    this.report();
  }

  get status(): SoundStatus {
    let state: SoundState;
    if (this.unavailable) state = 'unavailable';
    else state = this.ctx?.state === 'running' ? 'running' : 'off';
    return { state, wanted: this.wanted };
  }

  /** Creates (if needed) and resumes the audio context. Call from a user gesture. */
  unlock(): void {
    const ctx = this.context();
    if (ctx && ctx.state !== 'running') this.resume(ctx);
    this.sync();
    this.report();
  }

  /** Applies the current alarm list (call whenever it changes). */
  update(alarms: readonly AlarmInfo[]): void {
    if (this.disposed) return;
    this.wanted = soundingPriority(alarms);
    if (this.wanted !== null) {
      const ctx = this.context();
      if (ctx && ctx.state !== 'running') this.resume(ctx);
    }
    this.sync();
    this.report();
  }

  dispose(): void {
    if (this.disposed) return;
    this.silence();
    this.disposed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.target) {
      for (const type of GESTURE_EVENTS) this.target.removeEventListener(type, this.onGesture, true);
      this.target = null;
    }
    const ctx = this.ctx;
    this.ctx = null;
    this.master = null;
    if (ctx) ctx.close().catch(() => {});
  }

  /**
   * Makes the scheduled sound match the wanted priority: a change (up or down)
   * fades the old sound out and starts the new burst at once.
   */
  private sync(): void {
    if (this.wanted === this.playing) return;
    this.silence();
    if (this.wanted !== null && this.ctx) {
      this.playing = this.wanted;
      this.nextBurstAt = this.ctx.currentTime + START_LEAD_S;
      this.scheduleAhead();
    }
  }

  /** The context, created on first use; null when Web Audio is unavailable. */
  private context(): AudioContextLike | null {
    if (this.disposed || this.unavailable) return null;
    if (this.ctx && this.ctx.state === 'closed') {
      // Closed behind our back: start over with a new one.
      this.ctx = null;
      this.master = null;
      this.waves.clear();
      this.voices = [];
      this.playing = null;
    }
    if (this.ctx) return this.ctx;
    try {
      this.ctx = this.createContext();
    } catch {
      this.ctx = null;
    }
    if (!this.ctx) {
      this.unavailable = true;
      return null;
    }
    this.master = this.ctx.createGain();
    this.master.gain.value = MASTER_GAIN;
    this.master.connect(this.ctx.destination);
    this.arm();
    return this.ctx;
  }

  private resume(ctx: AudioContextLike): void {
    ctx.resume().then(
      () => this.afterResume(),
      () => this.report(),
    );
  }

  private afterResume(): void {
    // The clock may have stood still while suspended; never schedule in the past.
    if (this.ctx && this.playing !== null && this.nextBurstAt < this.ctx.currentTime) {
      this.nextBurstAt = this.ctx.currentTime + START_LEAD_S;
    }
    this.scheduleAhead();
    this.report();
  }

  private arm(): void {
    if (this.timer === null && !this.disposed) this.timer = setTimeout(() => this.tick(), TICK_MS);
  }

  private tick(): void {
    this.timer = null;
    if (this.disposed || !this.ctx) return;
    this.scheduleAhead();
    this.report();
    this.arm();
  }

  /** Schedules every burst of the playing priority that starts within the lookahead. */
  private scheduleAhead(): void {
    const ctx = this.ctx;
    const p = this.playing;
    if (!ctx || p === null) return;
    const now = ctx.currentTime;
    this.voices = this.voices.filter((v) => {
      if (v.end > now) return true;
      v.osc.disconnect();
      v.gain.disconnect();
      return false;
    });
    // A late timer (throttled window): restart the rhythm now rather than in the past.
    if (this.nextBurstAt < now) this.nextBurstAt = now + START_LEAD_S;
    while (this.nextBurstAt < now + LOOKAHEAD_S) {
      this.scheduleBurst(ctx, p, this.nextBurstAt);
      this.nextBurstAt += burstPeriod(p) / 1000;
    }
  }

  private scheduleBurst(ctx: AudioContextLike, p: Priority, at: number): void {
    for (const pulse of burstSchedule(p)) {
      const osc = ctx.createOscillator();
      osc.setPeriodicWave(this.wave(ctx, p));
      osc.frequency.value = pulse.frequency;
      const gain = ctx.createGain();
      const env = pulseEnvelope(pulse).map((e) => ({ t: at + e.t / 1000, gain: e.gain }));
      gain.gain.value = 0;
      gain.gain.setValueAtTime(0, env[0].t);
      for (const e of env.slice(1)) gain.gain.linearRampToValueAtTime(e.gain, e.t);
      osc.connect(gain);
      if (this.master) gain.connect(this.master);
      const end = env[env.length - 1].t;
      osc.start(env[0].t);
      osc.stop(end);
      this.voices.push({ osc, gain, end });
    }
  }

  /** Stops the current sound within STOP_RAMP_S and cancels its future pulses. */
  private silence(): void {
    this.playing = null;
    const ctx = this.ctx;
    const voices = this.voices;
    this.voices = [];
    if (!ctx || voices.length === 0) return;
    const now = ctx.currentTime;
    const until = now + STOP_RAMP_S;
    for (const v of voices) {
      if (v.end <= now) continue;
      try {
        v.gain.gain.cancelScheduledValues(now);
        v.gain.gain.setValueAtTime(v.gain.gain.value, now);
        v.gain.gain.linearRampToValueAtTime(0, until);
        v.osc.stop(until);
      } catch {
        // Already stopped: nothing left to silence.
      }
    }
    // Fully detach once the fade is over (a pulse that had not started never sounds).
    setTimeout(() => {
      for (const v of voices) {
        v.osc.disconnect();
        v.gain.disconnect();
      }
    }, STOP_RAMP_S * 1000 + 50);
  }

  private wave(ctx: AudioContextLike, p: Priority): PeriodicWave {
    let w = this.waves.get(p);
    if (!w) {
      // Sine partials: imag[n] = amplitude of harmonic n; real (cosine) terms and DC are 0.
      const real = new Float32Array(HARMONICS.length + 1);
      const imag = new Float32Array(HARMONICS.length + 1);
      HARMONICS.forEach((a, i) => (imag[i + 1] = a));
      w = ctx.createPeriodicWave(real, imag);
      this.waves.set(p, w);
    }
    return w;
  }

  private report(): void {
    const s = this.status;
    const key = `${s.state}/${s.wanted}`;
    if (key === this.lastStatus) return;
    this.lastStatus = key;
    this.onStatus(s);
  }
}
