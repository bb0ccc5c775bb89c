// Session, users and audit trail as the window sees them: the wire types of the auth
// commands (generated in ./bindings) and pure presentation logic. No DOM here.
//
// The UI never decides who may do what: the backend sends the permissions usable now, the UI
// only hides what they do not list, and every command is refused in Rust anyway.

import type { ApiError, AuditEntry, AuditFilter, AuthStateOut, Permission, Role, UserInfo, VerifyOut } from './bindings';

// The wire types, generated from the Rust types (src-tauri/src/bindings.rs).
export type { ApiError, AuditEntry, AuditFilter, Permission, Role, UserInfo, VerifyOut };
/** `auth_state` (src-tauri/src/commands/auth.rs, AuthStateOut). */
export type AuthState = AuthStateOut;

/** Side-panel contents. */
export type Panel =
  | 'first-run'
  | 'login'
  | 'must-change'
  | 'break-glass'
  | 'emergency-reason'
  | 'change-password'
  | 'admin';

/** What the header, lock banner and side panel show for a state. */
export interface Controls {
  /** Header text: "nurse1 · Nurse", or "Not logged in". */
  userText: string;
  login: boolean;
  lock: boolean;
  logout: boolean;
  breakGlass: boolean;
  changePassword: boolean;
  admin: boolean;
  /** The "Locked — user" banner with its unlock field. */
  lockBanner: boolean;
  /** A panel the state imposes (first run, required password change); null: the user's choice. */
  forced: Panel | null;
  /** Break-glass in force: shown in the header. */
  breakGlassActive: boolean;
}

export const ROLE_LABELS: Record<Role, string> = {
  nurse: 'Nurse',
  'charge-nurse': 'Charge nurse',
  admin: 'Admin',
};

export function roleLabel(role: Role | null | undefined): string {
  return role ? ROLE_LABELS[role] ?? role : '';
}

export function can(s: AuthState | null, p: Permission): boolean {
  return !!s && s.permissions.includes(p);
}

/** The visible controls for an auth state (null: not known yet, nothing offered). */
export function controlsFor(s: AuthState | null): Controls {
  const none: Controls = {
    userText: 'Not logged in',
    login: false,
    lock: false,
    logout: false,
    breakGlass: false,
    changePassword: false,
    admin: false,
    lockBanner: false,
    forced: null,
    breakGlassActive: false,
  };
  if (!s) return { ...none, userText: '' };
  if (s.first_run) return { ...none, forced: 'first-run' };
  if (!s.user) return { ...none, login: true };
  const bg = s.break_glass_until_ms !== null && s.effective_role !== s.role;
  const userText = `${s.user} · ${roleLabel(s.effective_role ?? s.role)}${bg ? ' (emergency)' : ''}`;
  if (s.locked) {
    // One-tap emergency access from the locked screen (the reason is asked afterwards).
    return { ...none, userText, logout: true, lockBanner: true, breakGlass: s.role !== 'admin' };
  }
  if (s.reason_pending && !s.must_change_password) {
    return { ...none, userText, lock: true, logout: true, forced: 'emergency-reason', breakGlassActive: bg };
  }
  if (s.must_change_password) {
    return { ...none, userText, logout: true, lock: true, forced: 'must-change' };
  }
  return {
    ...none,
    userText,
    lock: true,
    logout: true,
    // Break-glass is only offered where it would change something: a nurse, not yet in force.
    breakGlass: can(s, 'break_glass') && s.role === 'nurse' && !bg,
    changePassword: can(s, 'change_own_password'),
    admin: can(s, 'manage_users') || can(s, 'view_audit_log'),
    breakGlassActive: bg,
  };
}

/** The panel to show: the forced one, else the user's choice if still allowed, else none. */
export function panelFor(s: AuthState | null, chosen: Panel | null): Panel | null {
  const c = controlsFor(s);
  if (c.forced) return c.forced;
  switch (chosen) {
    case 'login':
      // Also from the locked screen: another person logs in (the locked session ends).
      return s && !s.first_run && (!s.user || s.locked) ? 'login' : null;
    case 'break-glass':
      return c.breakGlass ? chosen : null;
    case 'change-password':
      return c.changePassword ? chosen : null;
    case 'admin':
      return c.admin ? chosen : null;
    default:
      return null;
  }
}

/** A command's rejection as `{code, message}`, whatever was thrown. */
export function apiError(e: unknown): ApiError {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const o = e as { code: unknown; message: unknown };
    return { code: String(o.code), message: String(o.message) };
  }
  if (e instanceof Error) return { code: 'error', message: e.message };
  return { code: 'error', message: String(e) };
}

/** "Locked — nurse1". */
export function lockBannerText(s: AuthState): string {
  return `Locked — ${s.user ?? ''}`;
}

/** Minutes (rounded up) until the idle lock, or null. */
export function idleMinutesLeft(s: AuthState, nowMs: number): number | null {
  if (s.idle_lock_at_ms === null) return null;
  return Math.max(0, Math.ceil((s.idle_lock_at_ms - nowMs) / 60_000));
}

/** Two password fields must agree (a typo check; the policy is the backend's). */
export function passwordsMismatch(a: string, b: string): string | null {
  return a === b ? null : 'The two passwords differ.';
}

/**
 * A local date and time typed as `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS`
 * (a `T` may replace the space) as ms since the epoch; undefined when blank or not a valid time.
 */
export function localInputToMs(v: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(v.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const date = new Date(y!, mo! - 1, d!, h!, mi!, se!);
  // Reject rollovers such as 2024-02-31 or 25:00.
  if (date.getMonth() !== mo! - 1 || date.getDate() !== d! || date.getHours() !== h! || date.getMinutes() !== mi!) {
    return undefined;
  }
  return date.getTime();
}

/** A bad time in the audit filter, for the form to show; null when both are fine. */
export function auditTimeError(from: string, to: string): string | null {
  for (const [label, v] of [
    ['From', from],
    ['To', to],
  ] as const) {
    if (v.trim() && localInputToMs(v) === undefined) return `${label}: use YYYY-MM-DD or YYYY-MM-DD HH:MM`;
  }
  return null;
}

/** The audit viewer's form values as the query the backend takes (blank = any). */
export function auditQueryFrom(form: { actor: string; action: string; from: string; to: string }): AuditFilter {
  const q: AuditFilter = {};
  if (form.actor.trim()) q.actor = form.actor.trim();
  if (form.action.trim()) q.action = form.action.trim();
  const from = localInputToMs(form.from);
  const to = localInputToMs(form.to);
  if (from !== undefined) q.from_ms = from;
  if (to !== undefined) q.to_ms = to;
  return q;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Local date and time, "2024-05-01 12:00:00". */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}`;
}

/** File name for an audit export: "vigil-audit-20240501-120000.csv" (local time). */
export function csvFileName(ms: number): string {
  const d = new Date(ms);
  return `vigil-audit-${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-${pad(d.getHours())}${pad(
    d.getMinutes(),
  )}${pad(d.getSeconds())}.csv`;
}

/** A user's status for the users table. */
export function userStatus(u: UserInfo, nowMs: number): string {
  const parts: string[] = [];
  parts.push(u.enabled ? 'enabled' : 'disabled');
  if (u.locked_until_ms !== null && u.locked_until_ms > nowMs) parts.push('locked out');
  if (u.must_change_password) parts.push('must change password');
  return parts.join(', ');
}

export type UserAction = 'disable' | 'enable' | 'reset' | 'unlock' | 'role';

/** The actions offered on a user row (the backend still refuses, e.g., the last admin). */
export function userActions(u: UserInfo, nowMs: number): UserAction[] {
  const out: UserAction[] = [u.enabled ? 'disable' : 'enable', 'reset'];
  if ((u.locked_until_ms !== null && u.locked_until_ms > nowMs) || u.failed_count > 0) out.push('unlock');
  out.push('role');
  return out;
}

/** The audit actions the viewer's filter offers (docs/security.md). */
export const AUDIT_ACTIONS = [
  'login',
  'login_failed',
  'lockout',
  'logout',
  'lock',
  'unlock',
  'unlock_failed',
  'break_glass',
  'break_glass_end',
  'password_change',
  'user_create',
  'user_disable',
  'user_enable',
  'user_reset_password',
  'user_role_change',
  'user_unlock',
  'audit_export',
  'phi_read',
  'phi_read_summary',
  'security_ack',
  'security_export',
] as const;
