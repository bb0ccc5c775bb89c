// Typed wrappers of the window's commands (src-tauri/src/commands/mod.rs): their argument and
// result types are generated from the Rust ones (./bindings, `Commands`). Every call rejects
// with `{code, message}` (see auth.ts `apiError`).

import { invoke } from '@tauri-apps/api/core';
import type { AdmitIn, AuditFilter, Commands, ExportIn, Role, SecurityFilter, ThresholdChange } from './bindings';

/** Invokes `cmd` with the argument and result types generated from its Rust signature. */
function call<K extends keyof Commands>(cmd: K, args: Commands[K]['args']): Promise<Commands[K]['result']> {
  return invoke<Commands[K]['result']>(cmd, args);
}

export const api = {
  authState: () => call('auth_state', {}),
  createFirstAdmin: (name: string, password: string) => call('create_first_admin', { name, password }),
  login: (name: string, password: string) => call('login', { name, password }),
  logout: () => call('logout', {}),
  lockScreen: () => call('lock_screen', {}),
  unlock: (password: string) => call('unlock', { password }),
  changePassword: (currentPassword: string, newPassword: string) =>
    call('change_password', { currentPassword, newPassword }),
  /** Emergency access: the password again; the reason is asked afterwards. */
  emergencyAccess: (password: string) => call('emergency_access', { password }),
  emergencyReason: (reason: string) => call('emergency_reason', { reason }),
  setAlarmVolume: (percent: number) => call('set_alarm_volume', { percent }),
  setStandby: (bed: string, on: boolean) => call('set_standby', { bed, on }),
  setLatchHigh: (on: boolean) => call('set_latch_high', { on }),
  setNursesAcknowledge: (on: boolean) => call('set_nurses_acknowledge', { on }),
  touch: () => call('touch', {}),
  listUsers: () => call('list_users', {}),
  createUser: (name: string, role: Role, password: string) => call('create_user', { name, role, password }),
  disableUser: (name: string) => call('disable_user', { name }),
  enableUser: (name: string) => call('enable_user', { name }),
  resetPassword: (name: string) => call('reset_password', { name }),
  unlockUser: (name: string) => call('unlock_user', { name }),
  setRole: (name: string, role: Role) => call('set_role', { name, role }),
  auditList: (filter: AuditFilter) => call('audit_list', { filter }),
  auditExportCsv: (filter: AuditFilter) => call('audit_export_csv', { filter }),
  auditVerify: () => call('audit_verify', {}),
  acknowledgeAlarm: (id: string) => call('acknowledge_alarm', { id }),
  /** `bed` = "ward/bed", or null for every bed of the station. */
  audioPause: (bed: string | null) => call('audio_pause', { bed }),
  endAudioPause: (bed: string | null) => call('end_audio_pause', { bed }),
  listDevices: () => call('list_devices', {}),
  registerDevice: (device: string, bed: string, label: string) =>
    call('register_device', { device, bed, label }),
  removeDevice: (device: string) => call('remove_device', { device }),
  wardSettings: () => call('ward_settings', {}),
  setWardProfile: (profile: string) => call('set_ward_profile', { profile }),
  setLatching: (code: string, latching: boolean) => call('set_latching', { code, latching }),
  brokerSettings: () => call('broker_settings', {}),
  testBroker: (url: string) => call('test_broker', { url }),
  saveBroker: (url: string | null, ward: string | null) => call('save_broker', { url, ward }),
  // Bed detail (src-tauri/src/commands/detail.rs).
  bedLimits: (bed: string) => call('bed_limits', { bed }),
  setBedLimits: (bed: string, changes: ThresholdChange[]) => call('set_bed_limits', { bed, changes }),
  trend: (bed: string, vital: string, fromMs: number, toMs: number, buckets: number) =>
    call('trend', { bed, vital, fromMs, toMs, buckets }),
  samples: (bed: string, channel: string, fromMs: number, toMs: number) =>
    call('samples', { bed, channel, fromMs, toMs }),
  alarmHistory: (bed: string, fromMs: number, toMs: number) =>
    call('alarm_history', { bed, fromMs, toMs }),
  listPatients: () => call('list_patients', {}),
  // Printouts and exports (src-tauri/src/commands/reports.rs).
  printStrip: (bed: string, alarmId: string, onsetMs: number, reason: string) =>
    call('print_strip', { bed, alarmId, onsetMs, reason }),
  printTrend: (bed: string, fromMs: number, toMs: number, intervalMs: number, reason: string) =>
    call('print_trend', { bed, fromMs, toMs, intervalMs, reason }),
  printShift: (ward: string, fromMs: number, toMs: number, reason: string) =>
    call('print_shift', { ward, fromMs, toMs, reason }),
  exportData: (request: ExportIn) => call('export_data', { request }),
  admitPatient: (bed: string, patient: AdmitIn) => call('admit_patient', { bed, patient }),
  dischargePatient: (bed: string) => call('discharge_patient', { bed }),
  transferPatient: (fromBed: string, toBed: string) => call('transfer_patient', { fromBed, toBed }),
  // Remote patients (src-tauri/src/commands/remote.rs).
  remoteWorklist: (escalatedOnly: boolean) => call('remote_worklist', { escalatedOnly }),
  remoteRecord: (bed: string, days: number) => call('remote_record', { bed, days }),
  remoteReview: (bed: string, action: string, note: string) => call('remote_review', { bed, action, note }),
  remoteMessage: (bed: string, text: string) => call('remote_message', { bed, text }),
  remoteRecordOpen: (bed: string) => call('remote_record_open', { bed }),
  remoteRecordClose: (view: number) => call('remote_record_close', { view }),
  // The Security screen (src-tauri/src/commands/security.rs).
  securityEvents: (filter: SecurityFilter) => call('security_events', { filter }),
  securityAcknowledge: (id: number, note: string) => call('security_acknowledge', { id, note }),
  securityExportCsv: (filter: SecurityFilter) => call('security_export_csv', { filter }),
};

// The wire types of the station settings commands (src-tauri/src/commands/station_admin.rs).
export type { BrokerOut, DeviceRow, WardSettingsOut as WardSettings } from './bindings';
