// Typed wrappers of the auth and admin commands (src-tauri/src/commands/mod.rs). Every call
// rejects with `{code, message}` (see auth.ts `apiError`).

import { invoke } from '@tauri-apps/api/core';
import type { AuditEntry, AuditQuery, AuthState, Role, UserInfo, VerifyOut } from './auth';
import type {
  AdmitIn,
  AlarmHistoryEntry,
  LimitInfo,
  PatientInfo,
  SamplesOut,
  ThresholdChange,
  TrendOut,
} from './detailmath';
import type { SecurityEvent, SecurityFilter, SecurityOut } from './security';

export const api = {
  authState: () => invoke<AuthState>('auth_state'),
  createFirstAdmin: (name: string, password: string) => invoke<AuthState>('create_first_admin', { name, password }),
  login: (name: string, password: string) => invoke<AuthState>('login', { name, password }),
  logout: () => invoke<AuthState>('logout'),
  lockScreen: () => invoke<AuthState>('lock_screen'),
  unlock: (password: string) => invoke<AuthState>('unlock', { password }),
  changePassword: (currentPassword: string, newPassword: string) =>
    invoke<AuthState>('change_password', { currentPassword, newPassword }),
  /** Emergency access: the password again; the reason is asked afterwards. */
  emergencyAccess: (password: string) => invoke<AuthState>('emergency_access', { password }),
  emergencyReason: (reason: string) => invoke<AuthState>('emergency_reason', { reason }),
  setAlarmVolume: (percent: number) => invoke<number>('set_alarm_volume', { percent }),
  setStandby: (bed: string, on: boolean) => invoke<void>('set_standby', { bed, on }),
  setLatchHigh: (on: boolean) => invoke<void>('set_latch_high', { on }),
  setNursesAcknowledge: (on: boolean) => invoke<void>('set_nurses_acknowledge', { on }),
  touch: () => invoke<void>('touch'),
  listUsers: () => invoke<UserInfo[]>('list_users'),
  createUser: (name: string, role: Role, password: string) => invoke<UserInfo>('create_user', { name, role, password }),
  disableUser: (name: string) => invoke<boolean>('disable_user', { name }),
  enableUser: (name: string) => invoke<boolean>('enable_user', { name }),
  resetPassword: (name: string) => invoke<string>('reset_password', { name }),
  unlockUser: (name: string) => invoke<boolean>('unlock_user', { name }),
  setRole: (name: string, role: Role) => invoke<boolean>('set_role', { name, role }),
  auditList: (filter: AuditQuery) => invoke<AuditEntry[]>('audit_list', { filter }),
  auditExportCsv: (filter: AuditQuery) => invoke<string>('audit_export_csv', { filter }),
  auditVerify: () => invoke<VerifyOut>('audit_verify'),
  acknowledgeAlarm: (id: string) => invoke<void>('acknowledge_alarm', { id }),
  /** `bed` = "ward/bed", or null for every bed of the station. */
  audioPause: (bed: string | null) => invoke<void>('audio_pause', { bed }),
  endAudioPause: (bed: string | null) => invoke<void>('end_audio_pause', { bed }),
  listDevices: () => invoke<DeviceRow[]>('list_devices'),
  registerDevice: (device: string, bed: string, label: string) =>
    invoke<void>('register_device', { device, bed, label }),
  removeDevice: (device: string) => invoke<void>('remove_device', { device }),
  wardSettings: () => invoke<WardSettings>('ward_settings'),
  setWardProfile: (profile: string) => invoke<void>('set_ward_profile', { profile }),
  setLatching: (code: string, latching: boolean) => invoke<void>('set_latching', { code, latching }),
  brokerSettings: () => invoke<BrokerOut>('broker_settings'),
  testBroker: (url: string) => invoke<string>('test_broker', { url }),
  saveBroker: (url: string | null, ward: string | null) => invoke<string>('save_broker', { url, ward }),
  // Bed detail (src-tauri/src/commands/detail.rs).
  bedLimits: (bed: string) => invoke<LimitInfo[]>('bed_limits', { bed }),
  setBedLimits: (bed: string, changes: ThresholdChange[]) => invoke<LimitInfo[]>('set_bed_limits', { bed, changes }),
  trend: (bed: string, vital: string, fromMs: number, toMs: number, buckets: number) =>
    invoke<TrendOut>('trend', { bed, vital, fromMs, toMs, buckets }),
  samples: (bed: string, channel: string, fromMs: number, toMs: number) =>
    invoke<SamplesOut>('samples', { bed, channel, fromMs, toMs }),
  alarmHistory: (bed: string, fromMs: number, toMs: number) =>
    invoke<AlarmHistoryEntry[]>('alarm_history', { bed, fromMs, toMs }),
  listPatients: () => invoke<PatientInfo[]>('list_patients'),
  admitPatient: (bed: string, patient: AdmitIn) => invoke<PatientInfo>('admit_patient', { bed, patient }),
  dischargePatient: (bed: string) => invoke<PatientInfo>('discharge_patient', { bed }),
  transferPatient: (fromBed: string, toBed: string) => invoke<PatientInfo>('transfer_patient', { fromBed, toBed }),
  // The Security screen (src-tauri/src/commands/security.rs).
  securityEvents: (filter: SecurityFilter) => invoke<SecurityOut>('security_events', { filter }),
  securityAcknowledge: (id: number, note: string) => invoke<SecurityEvent>('security_acknowledge', { id, note }),
  securityExportCsv: (filter: SecurityFilter) => invoke<string>('security_export_csv', { filter }),
};

/** `list_devices` rows (src-tauri/src/commands/station_admin.rs). */
export interface DeviceRow {
  device: string;
  bed: string;
  label: string;
  registered: boolean;
  enabled: boolean;
  live: 'online' | 'offline' | 'unknown';
}

export interface WardSettings {
  profile: string;
  profiles: string[];
  latching: string[];
  latchable: string[];
  /** Every high-priority alarm latches. */
  latch_high: boolean;
  /** Nurses may acknowledge alarms. */
  nurses_acknowledge: boolean;
}

export interface BrokerOut {
  mode: 'embedded' | 'external';
  url: string;
  connected: boolean;
  last_error: string | null;
  config_path: string | null;
  configured_url: string | null;
  ward: string | null;
  client_id: string | null;
  ca_file: string | null;
  cert_file: string | null;
  username: string | null;
  password_set: boolean;
}
