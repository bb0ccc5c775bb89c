import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// The backend: `auth_state` answers what the test says; `auth-changed` is fired by hand.
vi.mock('@tauri-apps/api/core', () => ({ invoke: vi.fn() }));
vi.mock('@tauri-apps/api/event', () => ({ listen: vi.fn() }));

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type { AuthState } from '../src/auth';
import { Session, SESSION_POLL_MS, type SessionSnapshot } from '../src/session';

const invokeMock = vi.mocked(invoke);
const listenMock = vi.mocked(listen);

function state(user: string | null, extra: Partial<AuthState> = {}): AuthState {
  return {
    first_run: false,
    user,
    role: user ? 'nurse' : null,
    effective_role: user ? 'nurse' : null,
    locked: false,
    must_change_password: false,
    break_glass_until_ms: null,
    reason_pending: false,
    masked: !user,
    actions_enabled: !!user,
    alarms_shown: true,
    permissions: user ? ['view_ward', 'view_history'] : ['view_ward'],
    idle_lock_ms: 300_000,
    idle_lock_at_ms: null,
    now_ms: 1_700_000_000_000,
    ...extra,
  };
}

/** `auth_state` answers these, one a call (an Error rejects as the backend does). */
function authStateAnswers(...answers: (AuthState | { code: string; message: string })[]): void {
  invokeMock.mockImplementation((cmd: string) => {
    if (cmd !== 'auth_state') return Promise.reject(new Error(`unexpected command ${cmd}`));
    const a = answers.shift();
    if (!a) return Promise.reject(new Error('no answer left'));
    return 'code' in a ? Promise.reject(a) : Promise.resolve(a);
  });
}

function authStateCalls(): number {
  return invokeMock.mock.calls.filter(([cmd]) => cmd === 'auth_state').length;
}

function recorder(): { seen: SessionSnapshot[]; listener: (s: SessionSnapshot) => void } {
  const seen: SessionSnapshot[] = [];
  return { seen, listener: (s) => seen.push(s) };
}

beforeEach(() => {
  invokeMock.mockReset();
  listenMock.mockReset();
});

describe('Session subscribe', () => {
  it('calls a new subscriber only once a state is known, then at once', async () => {
    const s = new Session();
    const early = recorder();
    s.subscribe(early.listener);
    expect(early.seen).toEqual([]);
    expect(s.current).toBeNull();

    const nurse = state('nurse1');
    authStateAnswers(nurse);
    await s.refresh();
    expect(early.seen).toEqual([{ state: nurse, error: null }]);

    const late = recorder();
    s.subscribe(late.listener);
    expect(late.seen).toEqual([{ state: nurse, error: null }]);
    expect(authStateCalls()).toBe(1);
  });

  it('tells every subscriber of each new state, and no one after unsubscribing', async () => {
    const s = new Session();
    const a = recorder();
    const b = recorder();
    const offA = s.subscribe(a.listener);
    s.subscribe(b.listener);
    const out = state(null);
    const nurse = state('nurse1');
    const locked = state('nurse1', { locked: true, masked: true });
    authStateAnswers(out, nurse, locked);

    await s.refresh();
    await s.refresh();
    expect(a.seen.map((x) => x.state)).toEqual([out, nurse]);
    expect(b.seen.map((x) => x.state)).toEqual([out, nurse]);

    offA();
    offA();
    await s.refresh();
    expect(a.seen).toHaveLength(2);
    expect(b.seen.map((x) => x.state)).toEqual([out, nurse, locked]);
    expect(s.current).toEqual({ state: locked, error: null });
  });

  it('keeps a second subscription of the same function when the first ends', async () => {
    const s = new Session();
    const a = recorder();
    const off = s.subscribe(a.listener);
    s.subscribe(a.listener);
    off();
    s.push(state('nurse1'));
    expect(a.seen).toHaveLength(1);
  });

  it('does not call a listener another one unsubscribed during the same change', () => {
    const s = new Session();
    const b = recorder();
    let offB = (): void => undefined;
    s.subscribe(() => offB());
    offB = s.subscribe(b.listener);
    s.push(state('nurse1'));
    expect(b.seen).toEqual([]);
  });

  it('still tells the others when one listener throws', () => {
    const s = new Session();
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const b = recorder();
    s.subscribe(() => {
      throw new Error('view broke');
    });
    s.subscribe(b.listener);
    s.push(state('nurse1'));
    expect(b.seen).toHaveLength(1);
    expect(errors).toHaveBeenCalledOnce();
    errors.mockRestore();
  });
});

describe('Session commands', () => {
  it('pushes the state a command returns to every view, without reading it again', async () => {
    const s = new Session();
    const a = recorder();
    const b = recorder();
    s.subscribe(a.listener);
    s.subscribe(b.listener);
    const nurse = state('nurse1');
    await expect(s.command(Promise.resolve(nurse))).resolves.toBe(nurse);
    expect(a.seen).toEqual([{ state: nurse, error: null }]);
    expect(b.seen).toEqual([{ state: nurse, error: null }]);
    expect(s.current?.state).toBe(nurse);
    expect(authStateCalls()).toBe(0);
  });

  it('reads the state again when a command fails, and throws the error on', async () => {
    const s = new Session();
    const a = recorder();
    s.subscribe(a.listener);
    const lockedOut = state(null);
    authStateAnswers(lockedOut);
    const refused = { code: 'auth', message: 'wrong password' };
    await expect(s.command(Promise.reject(refused))).rejects.toBe(refused);
    await vi.waitFor(() => expect(a.seen).toHaveLength(1));
    expect(authStateCalls()).toBe(1);
    expect(a.seen[0]).toEqual({ state: lockedOut, error: null });
  });

  it('drops a read that started before a command result arrived', async () => {
    const s = new Session();
    const a = recorder();
    s.subscribe(a.listener);
    let answer: (st: AuthState) => void = () => undefined;
    invokeMock.mockImplementation(() => new Promise((resolve) => (answer = resolve as (st: AuthState) => void)));
    const poll = s.refresh();
    const loggedIn = state('nurse1');
    s.push(loggedIn);
    answer(state(null));
    await poll;
    expect(a.seen).toEqual([{ state: loggedIn, error: null }]);
    expect(s.current?.state).toBe(loggedIn);
  });

  it('applies a read that started after a command result', async () => {
    const s = new Session();
    s.push(state('nurse1'));
    const locked = state('nurse1', { locked: true });
    authStateAnswers(locked);
    await s.refresh();
    expect(s.current?.state).toBe(locked);
  });
});

describe('Session errors', () => {
  it('reports a failed read with the last state known', async () => {
    const s = new Session();
    const a = recorder();
    s.subscribe(a.listener);
    const nurse = state('nurse1');
    const down = { code: 'internal', message: 'database unavailable' };
    authStateAnswers(nurse, down, nurse);
    await s.refresh();
    await s.refresh();
    expect(a.seen[1]).toEqual({ state: nurse, error: down });
    await s.refresh();
    expect(a.seen[2]).toEqual({ state: nurse, error: null });
  });

  it('reports a failure before any state with a null state, also to late subscribers', async () => {
    const s = new Session();
    authStateAnswers({ code: 'internal', message: 'not ready' });
    await s.refresh();
    const a = recorder();
    s.subscribe(a.listener);
    expect(a.seen).toEqual([{ state: null, error: { code: 'internal', message: 'not ready' } }]);
  });

  it('turns whatever is thrown into {code, message}', async () => {
    const s = new Session();
    invokeMock.mockRejectedValue(new Error('IPC closed'));
    await s.refresh();
    expect(s.current?.error).toEqual({ code: 'error', message: 'IPC closed' });
  });
});

describe('Session poll and event', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads at start, on every poll and on auth-changed, until stopped', async () => {
    vi.useFakeTimers();
    let fire: () => void = () => undefined;
    const unlisten = vi.fn();
    listenMock.mockImplementation((event, handler) => {
      expect(event).toBe('auth-changed');
      fire = () => void handler({ event: 'auth-changed', id: 1, payload: undefined });
      return Promise.resolve(unlisten);
    });
    invokeMock.mockImplementation(() => Promise.resolve(state('nurse1')));
    const s = new Session();
    const a = recorder();
    s.subscribe(a.listener);

    s.start();
    s.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(authStateCalls()).toBe(1);
    expect(listenMock).toHaveBeenCalledOnce();
    expect(a.seen).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(SESSION_POLL_MS * 2);
    expect(authStateCalls()).toBe(3);

    fire();
    await vi.advanceTimersByTimeAsync(0);
    expect(authStateCalls()).toBe(4);
    expect(a.seen).toHaveLength(4);

    s.stop();
    await vi.advanceTimersByTimeAsync(SESSION_POLL_MS * 3);
    expect(authStateCalls()).toBe(4);
    expect(unlisten).toHaveBeenCalledOnce();
  });

  it('polls even where the event cannot be subscribed to', async () => {
    vi.useFakeTimers();
    listenMock.mockRejectedValue(new Error('no event bus'));
    invokeMock.mockImplementation(() => Promise.resolve(state(null)));
    const s = new Session();
    s.start();
    await vi.advanceTimersByTimeAsync(SESSION_POLL_MS);
    expect(authStateCalls()).toBe(2);
    s.stop();
  });
});
