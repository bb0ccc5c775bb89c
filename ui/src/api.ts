// Typed wrappers of the auth and admin commands (src-tauri/src/commands/mod.rs). Every call
// rejects with `{code, message}` (see auth.ts `apiError`).

import { invoke } from '@tauri-apps/api/core';
import type { AuditEntry, AuditQuery, AuthState, Role, UserInfo, VerifyOut } from './auth';

export const api = {
  authState: () => invoke<AuthState>('auth_state'),
  createFirstAdmin: (name: string, password: string) => invoke<AuthState>('create_first_admin', { name, password }),
  login: (name: string, password: string) => invoke<AuthState>('login', { name, password }),
  logout: () => invoke<AuthState>('logout'),
  lockScreen: () => invoke<AuthState>('lock_screen'),
  unlock: (password: string) => invoke<AuthState>('unlock', { password }),
  changePassword: (currentPassword: string, newPassword: string) =>
    invoke<AuthState>('change_password', { currentPassword, newPassword }),
  breakGlass: (reason: string) => invoke<AuthState>('break_glass', { reason }),
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
};
