// Data contract between the Rust engine and the UI.
//
// The backend sends one binary `Frame` per message on the Tauri Channel handed
// to the `subscribe_ward` command, roughly 20 messages per second: a JSON part
// and the waveform samples as little-endian i32 (layout in
// src-tauri/src/frames.rs; `decodeFrame` reads it). Keep this file in step
// with the Rust side.

export type Priority = 'high' | 'medium' | 'low';

export interface Frame {
  /** Station wall clock, ms since Unix epoch, when the frame was sent. */
  t: number;
  /** Present when it changed (always in the first frame). */
  engine?: EngineState;
  /** Full bed list, present when it changed (always in the first frame). */
  beds?: BedInfo[];
  /** Waveform chunks received since the previous frame (may be empty). */
  waves: WaveChunk[];
  /** Numerics received since the previous frame (may be empty). */
  vitals: VitalUpdate[];
  /** The FULL list of currently active alarms, present when it changed. */
  alarms?: AlarmInfo[];
  /** Status of every known device (the full list, as the engine sends it), present when changed. */
  devices?: DeviceStatus[];
  /** NEWS2 of every bed that has one (the full list), present when changed. */
  news2?: News2Info[];
  /** Audio pauses in force (the full list), present when changed. */
  pauses?: PauseInfo[];
  /** Keys of the beds in standby (physiological alarms off; the full list), present when changed. */
  standby?: string[];
  /** The station's alarm sound (played by the backend), present when changed. */
  sound?: SoundInfo;
}

/** The alarm sound as the station plays it (src-tauri/src/sound.rs). */
export interface SoundInfo {
  /** 'ready': an output device plays the alarms; 'failed': alarms cannot be heard. */
  state: 'starting' | 'ready' | 'failed';
  error?: string;
  device?: string;
  /** Percent; never below min_volume. */
  volume: number;
  min_volume: number;
  /** The priority sounding now. */
  priority?: Priority;
  /** Bursts played since the station started. */
  bursts: number;
}

export type News2Band = 'zero' | 'low' | 'low-medium' | 'medium' | 'high';

export interface News2Info {
  bed: string;
  total: number;
  band: News2Band;
}

export interface PauseInfo {
  /** Bed key, or '*' for every bed of the station. */
  bed: string;
  /** Station clock (ms epoch) when the pause ends; count down against `Frame.t`. */
  until: number;
  by: string;
  /** The station where the user paused, when another one (a remote pause). */
  station?: string;
}

export interface EngineState {
  ward: string;
  broker: string;
  connected: boolean;
  mode: 'embedded' | 'external';
  /** Last error of the broker link, if any (sent by the engine; may outlive a reconnect). */
  error?: string;
  /** Standing broker-trust warnings (an insecure broker allowed by `insecure = true`, a broker
   * that lets the station write a device's topic); absent when there are none. */
  warnings?: string[];
}

export interface BedInfo {
  /** "ward/bed" */
  key: string;
  ward: string;
  bed: string;
  label: string;
}

export interface WaveChunk {
  /** BedInfo.key */
  bed: string;
  /** 'ECG_II' | 'ECG_V5' | 'PLETH' | 'RESP'; unknown channels are ignored. */
  channel: string;
  /** Samples per second (ECG 500, PLETH 125, RESP 62.5). */
  rate: number;
  /** ms epoch of the first sample. */
  t0: number;
  /** Per-channel sequence number (a gap means a missed chunk). */
  seq: number;
  /** Physical value = origin + factor * data[i] (FHIR SampledData). ECG in mV, pleth/resp arbitrary units. */
  origin: number;
  factor: number;
  /** Number of samples (the binary part holds them). */
  n?: number;
  /** Raw sample values; a view into the frame's binary part. */
  data: ArrayLike<number>;
}

export interface VitalUpdate {
  bed: string;
  /** 'HR' | 'PR' | 'SPO2' | 'RR' | 'NIBP_SYS' | 'NIBP_DIA' | 'NIBP_MEAN' | 'TEMP' | 'ETCO2' */
  code: string;
  mdc: number;
  /** UCUM unit, e.g. '/min', '%', 'mm[Hg]', 'Cel'. */
  unit: string;
  /** null = no reading (sensor off, not measured) — never shown as 0. */
  value: number | null;
  /** ms epoch of the measurement. */
  t: number;
  /**
   * A late reading: taken before the device's last one of the vital, or longer ago than the
   * live window. History only: it changed no alarm and is not the current value.
   */
  late?: boolean;
}

export interface AlarmInfo {
  id: string;
  bed: string;
  /** e.g. 'SPO2_LOW', 'HR_HIGH' */
  code: string;
  /** e.g. 'SpO2 LOW' */
  label: string;
  priority: Priority;
  /** ms epoch raised. */
  since: number;
  value: number | null;
  limit: number | null;
  /**
   * Alarm-system state (IEC 60601-1-8 inactivation states). 'unreviewed': a high-priority
   * alarm cleared before anyone acknowledged it; silent, shown until reviewed.
   */
  state?: 'active' | 'acknowledged' | 'audio-paused' | 'latched' | 'unreviewed';
  /** Unit of value and limit as shown ('/min', '%', 'mmHg', '°C'). */
  unit?: string;
  /** ms epoch the condition cleared (latched or unreviewed alarms). */
  cleared?: number;
  /** Whether the alarm sounds now (false while acknowledged or paused, except comm lost). */
  audible?: boolean;
  /** Escalation level: 0 until the alarm goes unacknowledged past its escalation time. */
  escalation?: number;
  latched?: boolean;
  /** Technical alarm (comm lost, leads off, ...) rather than a physiological one. */
  technical?: boolean;
  ack_by?: string;
  /** The station where it was acknowledged, when another one. */
  ack_station?: string;
  pause_remaining_ms?: number;
}

export interface DeviceStatus {
  bed: string;
  device: string;
  online: boolean;
  conditions: string[];
  t: number;
}

/** Magic and version at the start of every binary frame. */
export const FRAME_MAGIC = 'VGF1';

/** Why a message from the engine could not be read. */
export class FrameError extends Error {}

/**
 * Reads one binary frame: "VGF1", u32 LE JSON length, the JSON, padding to a
 * multiple of 4, then every chunk's samples as i32 LE in the order of `waves`.
 * The sample arrays are views into `buf` (no copy).
 */
export function decodeFrame(buf: ArrayBuffer): Frame {
  if (buf.byteLength < 8) throw new FrameError(`frame too short (${buf.byteLength} bytes)`);
  const head = new Uint8Array(buf, 0, 4);
  const magic = String.fromCharCode(head[0], head[1], head[2], head[3]);
  if (magic !== FRAME_MAGIC) throw new FrameError(`not a Vigil frame (magic ${JSON.stringify(magic)})`);
  const jsonLen = new DataView(buf).getUint32(4, true);
  if (8 + jsonLen > buf.byteLength) throw new FrameError('frame truncated in its JSON part');
  const frame = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, jsonLen))) as Frame;
  let offset = Math.ceil((8 + jsonLen) / 4) * 4;
  // Little-endian on every platform Vigil runs on; an Int32Array view is then exact.
  for (const w of frame.waves ?? []) {
    const n = w.n ?? 0;
    if (offset + 4 * n > buf.byteLength) throw new FrameError('frame truncated in its samples');
    w.data = new Int32Array(buf, offset, n);
    offset += 4 * n;
  }
  if (offset !== buf.byteLength) throw new FrameError('frame has trailing bytes');
  return frame;
}
