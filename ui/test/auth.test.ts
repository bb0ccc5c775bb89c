import { describe, expect, it } from 'vitest';
import {
  apiError,
  auditQueryFrom,
  auditTimeError,
  controlsFor,
  csvFileName,
  idleMinutesLeft,
  localInputToMs,
  lockBannerText,
  panelFor,
  passwordsMismatch,
  roleLabel,
  userActions,
  userStatus,
  type AuthState,
  type Permission,
  type UserInfo,
} from '../src/auth';

const NURSE: Permission[] = ['view_ward', 'view_history', 'audio_pause', 'break_glass', 'change_own_password'];
const ADMIN: Permission[] = [
  'change_own_password',
  'manage_users',
  'manage_devices',
  'manage_ward_profiles',
  'broker_settings',
  'view_audit_log',
  'export_audit_log',
];

const state = (s: Partial<AuthState>): AuthState => ({
  first_run: false,
  user: null,
  role: null,
  effective_role: null,
  locked: false,
  must_change_password: false,
  break_glass_until_ms: null,
  reason_pending: false,
  masked: true,
  actions_enabled: false,
  alarms_shown: true,
  permissions: [],
  idle_lock_ms: 600_000,
  idle_lock_at_ms: null,
  now_ms: 0,
  ...s,
});

const nurse = state({ user: 'nurse1', role: 'nurse', effective_role: 'nurse', masked: false, actions_enabled: true, permissions: NURSE });
const charge = state({
  user: 'charge1',
  role: 'charge-nurse',
  effective_role: 'charge-nurse',
  masked: false,
  actions_enabled: true,
  permissions: [...NURSE, 'acknowledge_alarm', 'change_patient_limits', 'admit_discharge_transfer'],
});
const admin = state({ user: 'it1', role: 'admin', effective_role: 'admin', actions_enabled: true, permissions: ADMIN });

/** The visible header buttons, in order. */
const visible = (s: AuthState | null) => {
  const c = controlsFor(s);
  return (['login', 'breakGlass', 'changePassword', 'admin', 'lock', 'logout', 'lockBanner'] as const).filter((k) => c[k]);
};

describe('controlsFor', () => {
  it('offers nothing before the state is known', () => {
    expect(visible(null)).toEqual([]);
    expect(controlsFor(null).forced).toBeNull();
  });

  it('forces the first-admin dialog on an empty station, with no other control', () => {
    const c = controlsFor(state({ first_run: true }));
    expect(c.forced).toBe('first-run');
    expect(visible(state({ first_run: true }))).toEqual([]);
    expect(c.userText).toBe('Not logged in');
  });

  it('offers only log-in with no session', () => {
    expect(visible(state({}))).toEqual(['login']);
    expect(controlsFor(state({})).userText).toBe('Not logged in');
  });

  it('per role: nurse, charge nurse, admin', () => {
    expect(visible(nurse)).toEqual(['breakGlass', 'changePassword', 'lock', 'logout']);
    expect(visible(charge)).toEqual(['changePassword', 'lock', 'logout']);
    expect(visible(admin)).toEqual(['changePassword', 'admin', 'lock', 'logout']);
    expect(controlsFor(nurse).userText).toBe('nurse1 · Nurse');
    expect(controlsFor(charge).userText).toBe('charge1 · Charge nurse');
    expect(controlsFor(admin).userText).toBe('it1 · Admin');
  });

  it('hides admin controls when the backend does not list the permissions', () => {
    // A nurse whose state claims the admin role but lacks the permissions: still no Admin button.
    expect(controlsFor({ ...nurse, role: 'admin', effective_role: 'admin' }).admin).toBe(false);
    expect(controlsFor({ ...admin, permissions: ['view_audit_log'] }).admin).toBe(true);
  });

  it('locked: banner, log out (switch user), nothing else', () => {
    const locked = { ...admin, locked: true, permissions: [], actions_enabled: false, masked: true };
    expect(visible(locked)).toEqual(['logout', 'lockBanner']);
    expect(lockBannerText(locked)).toBe('Locked — it1');
  });

  it('forces the password change after a reset', () => {
    const mc = { ...nurse, must_change_password: true, permissions: ['change_own_password'] as Permission[] };
    expect(controlsFor(mc).forced).toBe('must-change');
    expect(visible(mc)).toEqual(['lock', 'logout']);
  });

  it('shows break-glass in force and stops offering it', () => {
    const bg = { ...nurse, effective_role: 'charge-nurse' as const, break_glass_until_ms: 1000 };
    const c = controlsFor(bg);
    expect(c.breakGlassActive).toBe(true);
    expect(c.breakGlass).toBe(false);
    expect(c.userText).toBe('nurse1 · Charge nurse (emergency)');
  });
});

describe('panelFor', () => {
  it('lets forced panels win over the user’s choice', () => {
    expect(panelFor(state({ first_run: true }), 'login')).toBe('first-run');
    expect(panelFor({ ...nurse, must_change_password: true }, 'break-glass')).toBe('must-change');
  });

  it('closes panels the state no longer allows', () => {
    expect(panelFor(admin, 'admin')).toBe('admin');
    expect(panelFor({ ...admin, locked: true, permissions: [] }, 'admin')).toBeNull();
    expect(panelFor(nurse, 'admin')).toBeNull();
    expect(panelFor(nurse, 'break-glass')).toBe('break-glass');
    expect(panelFor(charge, 'break-glass')).toBeNull();
    expect(panelFor(state({}), 'login')).toBe('login');
    expect(panelFor(nurse, 'login')).toBeNull();
    expect(panelFor({ ...nurse, locked: true }, 'login')).toBe('login');
    expect(panelFor(state({}), null)).toBeNull();
  });
});

describe('helpers', () => {
  it('reads command errors', () => {
    expect(apiError({ code: 'locked', message: 'session locked' })).toEqual({ code: 'locked', message: 'session locked' });
    expect(apiError(new Error('boom'))).toEqual({ code: 'error', message: 'boom' });
    expect(apiError('text')).toEqual({ code: 'error', message: 'text' });
  });

  it('checks the two passwords agree', () => {
    expect(passwordsMismatch('a', 'a')).toBeNull();
    expect(passwordsMismatch('a', 'b')).toMatch(/differ/);
  });

  it('counts down to the idle lock', () => {
    expect(idleMinutesLeft({ ...nurse, idle_lock_at_ms: 600_000 }, 0)).toBe(10);
    expect(idleMinutesLeft({ ...nurse, idle_lock_at_ms: 600_000 }, 599_000)).toBe(1);
    expect(idleMinutesLeft({ ...nurse, idle_lock_at_ms: 600_000 }, 700_000)).toBe(0);
    expect(idleMinutesLeft(nurse, 0)).toBeNull();
  });

  it('builds the audit query, blanks meaning any', () => {
    expect(auditQueryFrom({ actor: ' ', action: '', from: '', to: '' })).toEqual({});
    const q = auditQueryFrom({ actor: ' it1 ', action: 'login', from: '2024-05-01 08:00', to: '2024-05-02' });
    expect(q).toEqual({
      actor: 'it1',
      action: 'login',
      from_ms: new Date(2024, 4, 1, 8, 0).getTime(),
      to_ms: new Date(2024, 4, 2).getTime(),
    });
  });

  it('parses typed local times strictly', () => {
    expect(localInputToMs('2024-05-01T08:00:30')).toBe(new Date(2024, 4, 1, 8, 0, 30).getTime());
    expect(localInputToMs('nonsense')).toBeUndefined();
    expect(localInputToMs('2024-02-31')).toBeUndefined();
    expect(localInputToMs('2024-05-01 25:00')).toBeUndefined();
    expect(localInputToMs('  ')).toBeUndefined();
    expect(auditTimeError('', '')).toBeNull();
    expect(auditTimeError('2024-05-01', 'tomorrow')).toMatch(/^To:/);
  });

  it('names the export file by local time', () => {
    const t = new Date(2024, 4, 1, 8, 5, 9).getTime();
    expect(csvFileName(t)).toBe('vigil-audit-20240501-080509.csv');
  });

  it('describes users and offers actions', () => {
    const u: UserInfo = {
      id: 1,
      name: 'n',
      role: 'nurse',
      enabled: true,
      must_change_password: false,
      failed_count: 0,
      locked_until_ms: null,
      created_ms: 0,
      updated_ms: 0,
    };
    expect(userStatus(u, 0)).toBe('enabled');
    expect(userActions(u, 0)).toEqual(['disable', 'reset', 'role']);
    const locked = { ...u, enabled: false, locked_until_ms: 100, must_change_password: true };
    expect(userStatus(locked, 50)).toBe('disabled, locked out, must change password');
    expect(userActions(locked, 50)).toEqual(['enable', 'reset', 'unlock', 'role']);
    expect(userActions({ ...u, failed_count: 2 }, 0)).toContain('unlock');
    expect(roleLabel('charge-nurse')).toBe('Charge nurse');
    expect(roleLabel(null)).toBe('');
  });
});
