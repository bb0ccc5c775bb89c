// The session as every view sees it: the one place that reads `auth_state` (a poll, and the
// backend's `auth-changed` event), keeps the last state and tells the views that subscribe.
// Commands that return a new state (log-in, lock, unlock, emergency access…) hand it over here
// so every view changes at once. No other code reads the session on a timer.

import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import { api } from './api';
import { apiError, type ApiError, type AuthState } from './auth';

/** How often the state is re-read even without an event (idle countdown, missed events). */
export const SESSION_POLL_MS = 5000;

/** What subscribers are told after every read or command. */
export type SessionSnapshot =
  | { state: AuthState; error: null }
  /** The last read failed; `state` is the last one known (null if none was). */
  | { state: AuthState | null; error: ApiError };

export type SessionListener = (snapshot: SessionSnapshot) => void;

export class Session {
  private snapshot: SessionSnapshot | null = null;
  /** One entry per subscription (the same function may subscribe twice). */
  private readonly listeners = new Set<{ listener: SessionListener }>();
  /** Reads are numbered when they start, command results when they arrive: an answer older
   * than the state shown (a poll overtaken by a log-in) is dropped. */
  private issued = 0;
  private applied = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private unlisten: Promise<UnlistenFn | undefined> | null = null;

  /** The last snapshot; null before the first read has ended. */
  get current(): SessionSnapshot | null {
    return this.snapshot;
  }

  /** Starts the poll and the event subscription, and reads the state now. */
  start(): void {
    if (this.timer !== undefined) return;
    this.unlisten = listen('auth-changed', () => void this.refresh()).catch(() => undefined);
    this.timer = setInterval(() => void this.refresh(), SESSION_POLL_MS);
    void this.refresh();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    void this.unlisten?.then((off) => off?.());
    this.unlisten = null;
  }

  /** `listener` is called at once with the snapshot if one is known, then after every read
   * or command. Returns the function that ends the subscription. */
  subscribe(listener: SessionListener): () => void {
    const entry = { listener };
    this.listeners.add(entry);
    if (this.snapshot) call(listener, this.snapshot);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /** Reads the state now (after an event, a failed command, a refused activity report). */
  async refresh(): Promise<void> {
    const seq = ++this.issued;
    try {
      const state = await api.authState();
      this.accept(seq, { state, error: null });
    } catch (e) {
      this.accept(seq, { state: this.snapshot?.state ?? null, error: apiError(e) });
    }
  }

  /** A new state from a command: every subscriber is told at once. */
  push(state: AuthState): void {
    this.accept(++this.issued, { state, error: null });
  }

  /**
   * Awaits a command that returns the new state and pushes it. On failure the state is read
   * again (a refused password may have locked the account) and the error is thrown on.
   */
  async command(pending: Promise<AuthState>): Promise<AuthState> {
    try {
      const state = await pending;
      this.push(state);
      return state;
    } catch (e) {
      void this.refresh();
      throw e;
    }
  }

  private accept(seq: number, snapshot: SessionSnapshot): void {
    if (seq < this.applied) return;
    this.applied = seq;
    this.snapshot = snapshot;
    // A copy: a listener may end its own or another subscription (the bed detail closing).
    for (const entry of [...this.listeners]) {
      if (this.listeners.has(entry)) call(entry.listener, snapshot);
    }
  }
}

/** One view failing never keeps the others from hearing of the session. */
function call(listener: SessionListener, snapshot: SessionSnapshot): void {
  try {
    listener(snapshot);
  } catch (e) {
    console.error('session listener failed', e);
  }
}

/** The station's session, started by main.ts. */
export const session = new Session();
