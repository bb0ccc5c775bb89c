// Data contract between the Rust engine and the UI.
//
// The backend sends one `Frame` (JSON) per message on the Tauri Channel handed
// to the `subscribe_ward` command, roughly 20 messages per second. Keep this
// file in step with the Rust side; it only holds types.

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
}

export interface EngineState {
  ward: string;
  broker: string;
  connected: boolean;
  mode: 'embedded' | 'external';
  /** Last error of the broker link, if any (sent by the engine; may outlive a reconnect). */
  error?: string;
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
  data: number[];
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
  /** Alarm-system state (IEC 60601-1-8 inactivation states). */
  state?: 'active' | 'acknowledged' | 'audio-paused' | 'latched';
  /** Whether the alarm sounds now (false while acknowledged or paused, except comm lost). */
  audible?: boolean;
  /** Escalation level: 0 until the alarm goes unacknowledged past its escalation time. */
  escalation?: number;
  latched?: boolean;
  /** Technical alarm (comm lost, leads off, ...) rather than a physiological one. */
  technical?: boolean;
  ack_by?: string;
  pause_remaining_ms?: number;
}

export interface DeviceStatus {
  bed: string;
  device: string;
  online: boolean;
  conditions: string[];
  t: number;
}
