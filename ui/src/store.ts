// Client-side state of the ward, built up from the frames the engine sends.
// `apply` is the only way in; views read through the accessors and are told
// what changed through `subscribe`.

import type {
  AlarmInfo,
  BedInfo,
  DeviceStatus,
  EngineState,
  Frame,
  News2Info,
  PauseInfo,
  Priority,
  SoundInfo,
  VitalUpdate,
  WaveChunk,
} from './frames';

/** Higher rank = more urgent. */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { high: 3, medium: 2, low: 1 };

/** Where the samples of one bed's channel go (a SweepRenderer in the app). */
export interface WaveTarget {
  /** Physical values; NaN marks a missing sample. `gapBefore`: a chunk was missed. */
  push(values: ArrayLike<number>, rate: number, gapBefore: boolean): void;
}

/** Finds the target for a bed's channel; undefined = channel not displayed. */
export type WaveResolver = (bed: string, channel: string) => WaveTarget | undefined;

/** What one frame changed. */
export interface Changes {
  engine: boolean;
  beds: boolean;
  alarms: boolean;
  devices: boolean;
  news2: boolean;
  pauses: boolean;
  standby: boolean;
  sound: boolean;
  /** Keys of the beds whose numerics changed. */
  vitals: Set<string>;
}

interface BedState {
  info: BedInfo;
  /** Latest reading per vital code. */
  vitals: Map<string, VitalUpdate>;
  /** The last late reading received per vital code, with when it was received (station clock). */
  late: Map<string, LateReading>;
  /** Active alarms of this bed, most urgent first. */
  alarms: AlarmInfo[];
  /** Latest status per device. */
  devices: Map<string, DeviceStatus>;
}

/** A late reading as received: history only, never the current value. */
export interface LateReading {
  reading: VitalUpdate;
  /** When the station received it (its clock, ms). */
  received: number;
}

export class Store {
  private engineState: EngineState | null = null;
  private bedList: BedInfo[] = [];
  private byKey = new Map<string, BedState>();
  /** The full active-alarm list as last sent, including beds not (yet) known. */
  private sentAlarms: AlarmInfo[] = [];
  /** Last sequence number per "bed\0channel", to detect missed chunks. */
  private lastSeq = new Map<string, number>();
  private listeners: Array<(changes: Changes) => void> = [];
  private news2ByBed = new Map<string, News2Info>();
  private pauseList: PauseInfo[] = [];
  private standbySet = new Set<string>();
  private soundInfo: SoundInfo | null = null;
  /** Station clock minus this clock, from the last frame (for pause countdowns). */
  private clockOffset = 0;

  constructor(private readonly resolveWave: WaveResolver = () => undefined) {}

  /** Applies one frame from the engine and notifies subscribers. */
  apply(frame: Frame): Changes {
    const changes: Changes = {
      engine: false,
      beds: false,
      alarms: false,
      devices: false,
      news2: false,
      pauses: false,
      standby: false,
      sound: false,
      vitals: new Set(),
    };
    if (frame.standby) {
      this.standbySet = new Set(frame.standby);
      changes.standby = true;
    }
    if (frame.sound) {
      this.soundInfo = frame.sound;
      changes.sound = true;
    }
    if (typeof frame.t === 'number') this.clockOffset = frame.t - Date.now();
    if (frame.news2) {
      this.news2ByBed = new Map(frame.news2.map((n) => [n.bed, n]));
      changes.news2 = true;
    }
    if (frame.pauses) {
      this.pauseList = frame.pauses;
      changes.pauses = true;
    }
    if (frame.engine) {
      this.engineState = frame.engine;
      changes.engine = true;
    }
    // Beds first, so data for a newly added bed in the same frame is kept.
    if (frame.beds) {
      this.setBeds(frame.beds);
      changes.beds = true;
    }
    if (frame.devices) {
      // The full list: a device no longer in it is gone.
      for (const bed of this.byKey.values()) bed.devices = new Map();
      for (const d of frame.devices) this.byKey.get(d.bed)?.devices.set(d.device, d);
      changes.devices = true;
    }
    if (frame.alarms) {
      this.sentAlarms = frame.alarms;
      changes.alarms = true;
    }
    if (changes.alarms || changes.beds) this.distributeAlarms();
    for (const v of frame.vitals ?? []) {
      const bed = this.byKey.get(v.bed);
      if (!bed) continue;
      if (v.late) {
        // Said as late next to the current value; never replaces it.
        bed.late.set(v.code, { reading: v, received: frame.t });
        changes.vitals.add(v.bed);
        continue;
      }
      const prev = bed.vitals.get(v.code);
      // Readings can arrive out of order; an older one never replaces a newer one.
      if (prev && prev.t > v.t) continue;
      bed.vitals.set(v.code, v);
      changes.vitals.add(v.bed);
    }
    for (const w of frame.waves ?? []) this.feedWave(w);
    for (const fn of this.listeners) fn(changes);
    return changes;
  }

  /** Calls `fn` after every applied frame. */
  subscribe(fn: (changes: Changes) => void): void {
    this.listeners.push(fn);
  }

  get engine(): EngineState | null {
    return this.engineState;
  }

  get beds(): readonly BedInfo[] {
    return this.bedList;
  }

  vital(bed: string, code: string): VitalUpdate | undefined {
    return this.byKey.get(bed)?.vitals.get(code);
  }

  /** The last late reading of a vital received for a bed (see `VitalUpdate.late`). */
  lateVital(bed: string, code: string): LateReading | undefined {
    return this.byKey.get(bed)?.late.get(code);
  }

  /** Active alarms of a bed, most urgent first (then most recent first). */
  alarmsFor(bed: string): readonly AlarmInfo[] {
    return this.byKey.get(bed)?.alarms ?? [];
  }

  /** The highest priority among a bed's active alarms, or null. */
  highestPriority(bed: string): Priority | null {
    return this.alarmsFor(bed)[0]?.priority ?? null;
  }

  /** The full active-alarm list as last sent, including alarms of beds not (yet) in the bed list. */
  get allAlarms(): readonly AlarmInfo[] {
    return this.sentAlarms;
  }

  /** Active alarms on the displayed beds. */
  get activeAlarms(): AlarmInfo[] {
    return this.bedList.flatMap((b) => this.alarmsFor(b.key));
  }

  /** A bed's NEWS2, if the engine has one (every vital seen). */
  news2(bed: string): News2Info | undefined {
    return this.news2ByBed.get(bed);
  }

  /** Whether a bed is in standby (no patient: physiological alarms off). */
  isStandby(bed: string): boolean {
    return this.standbySet.has(bed);
  }

  /** The station's alarm sound as last sent (null before the first report). */
  get sound(): SoundInfo | null {
    return this.soundInfo;
  }

  /** Audio pauses in force, as last sent. */
  get pauses(): readonly PauseInfo[] {
    return this.pauseList;
  }

  /** Station time now (this clock corrected by the last frame's time stamp). */
  stationNow(now = Date.now()): number {
    return now + this.clockOffset;
  }

  /**
   * The pause silencing `bed` (its own or the station-wide one; the later ending
   * wins) and its remaining time, or null when none is running.
   */
  pauseFor(bed: string, now = Date.now()): { pause: PauseInfo; remainingMs: number } | null {
    const t = this.stationNow(now);
    let best: PauseInfo | null = null;
    for (const p of this.pauseList) {
      if ((p.bed === bed || p.bed === '*') && p.until > t && (!best || p.until > best.until)) best = p;
    }
    return best ? { pause: best, remainingMs: best.until - t } : null;
  }

  /** The station-wide pause, if one is running. */
  stationPause(now = Date.now()): { pause: PauseInfo; remainingMs: number } | null {
    const t = this.stationNow(now);
    const p = this.pauseList.find((q) => q.bed === '*' && q.until > t);
    return p ? { pause: p, remainingMs: p.until - t } : null;
  }

  /** True when a bed has reported devices and every one of them is offline. */
  commLost(bed: string): boolean {
    const devices = this.byKey.get(bed)?.devices;
    if (!devices || devices.size === 0) return false;
    for (const d of devices.values()) if (d.online) return false;
    return true;
  }

  /** Technical conditions (e.g. LEADS_OFF) reported by a bed's online devices. */
  conditions(bed: string): string[] {
    const devices = this.byKey.get(bed)?.devices;
    if (!devices) return [];
    const out: string[] = [];
    for (const d of devices.values()) {
      if (!d.online) continue;
      for (const c of d.conditions) if (!out.includes(c)) out.push(c);
    }
    return out;
  }

  private setBeds(beds: BedInfo[]): void {
    const next = new Map<string, BedState>();
    for (const info of beds) {
      const old = this.byKey.get(info.key);
      next.set(info.key, {
        info,
        vitals: old?.vitals ?? new Map(),
        late: old?.late ?? new Map(),
        alarms: [],
        devices: old?.devices ?? new Map(),
      });
    }
    for (const k of this.lastSeq.keys()) {
      if (!next.has(k.slice(0, k.indexOf('\0')))) this.lastSeq.delete(k);
    }
    // Remote patients (home, mobile clinic) are on the remote worklist, not tiles of the ward;
    // their alarms are still kept by bed (the alarm bar shows every alarm of the station).
    this.bedList = beds.filter((b) => !b.remote);
    this.byKey = next;
  }

  private distributeAlarms(): void {
    for (const bed of this.byKey.values()) bed.alarms = [];
    for (const a of this.sentAlarms) this.byKey.get(a.bed)?.alarms.push(a);
    for (const bed of this.byKey.values()) {
      bed.alarms.sort(
        (a, b) => (PRIORITY_RANK[b.priority] ?? 0) - (PRIORITY_RANK[a.priority] ?? 0) || b.since - a.since,
      );
    }
  }

  private feedWave(w: WaveChunk): void {
    if (!this.byKey.has(w.bed)) return;
    const target = this.resolveWave(w.bed, w.channel);
    if (!target) return;
    const key = `${w.bed}\0${w.channel}`;
    const prev = this.lastSeq.get(key);
    this.lastSeq.set(key, w.seq);
    const gap = prev !== undefined && w.seq !== prev + 1;
    const values = new Float64Array(w.data.length);
    for (let i = 0; i < w.data.length; i++) {
      const d = w.data[i];
      // A non-numeric sample (e.g. JSON null) becomes a gap, never a value.
      values[i] = typeof d === 'number' ? w.origin + w.factor * d : Number.NaN;
    }
    target.push(values, w.rate, gap);
  }
}
