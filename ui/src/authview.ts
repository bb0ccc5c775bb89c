// Header user controls, the lock banner and the side panel (first run, log-in, password change,
// break-glass, admin). The ward overview stays visible and live beside all of them.

import { AdminPanel } from './admin';
import { api } from './api';
import {
  apiError,
  controlsFor,
  lockBannerText,
  panelFor,
  passwordsMismatch,
  type AuthState,
  type Panel,
} from './auth';
import { busy, field, h, onSubmit, panelForm, value } from './dom';
import { session, type SessionSnapshot } from './session';

/** Activity is reported at most this often. */
const TOUCH_EVERY_MS = 15_000;

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing from index.html`);
  return e;
}

export class AuthView {
  private state: AuthState | null = null;
  private chosen: Panel | null = null;
  private shown: Panel | null = null;
  private admin: AdminPanel | null = null;
  private lastTouch = 0;

  private readonly user = byId('auth-user');
  private readonly panel = byId('side-panel');
  private readonly banner = byId('lock-banner');
  private readonly buttons = {
    login: byId('btn-login'),
    breakGlass: byId('btn-breakglass'),
    changePassword: byId('btn-password'),
    admin: byId('btn-admin'),
    lock: byId('btn-lock'),
    logout: byId('btn-logout'),
  };

  start(): void {
    this.buttons.login.onclick = () => this.choose('login');
    // Emergency access: the password only (one field); the reason is asked right after (a
    // forced panel).
    this.buttons.breakGlass.onclick = () => this.choose('break-glass');
    this.buttons.changePassword.onclick = () => this.choose('change-password');
    this.buttons.admin.onclick = () => this.choose(this.shown === 'admin' ? null : 'admin');
    this.buttons.lock.onclick = () => void this.run(api.lockScreen());
    this.buttons.logout.onclick = () => void this.run(api.logout());
    this.buildBanner();
    for (const ev of ['pointerdown', 'keydown'] as const) {
      window.addEventListener(ev, () => this.activity(), { passive: true, capture: true });
    }
    session.subscribe((s) => this.apply(s));
  }

  /** Run a command that returns the new state; show its error in the panel or banner. */
  private async run(p: Promise<AuthState>, errorBox?: HTMLElement): Promise<boolean> {
    try {
      await session.command(p);
      return true;
    } catch (e) {
      const err = apiError(e);
      const box = errorBox ?? this.panel.querySelector<HTMLElement>('.panel-error');
      if (box) box.textContent = err.message;
      return false;
    }
  }

  private activity(): void {
    const s = this.state;
    if (!s || !s.user || s.locked) return;
    const now = Date.now();
    if (now - this.lastTouch < TOUCH_EVERY_MS) return;
    this.lastTouch = now;
    api.touch().catch(() => void session.refresh());
  }

  private choose(p: Panel | null): void {
    this.chosen = p;
    this.render();
  }

  private apply({ state, error }: SessionSnapshot): void {
    if (error) {
      this.user.textContent = `Session state unavailable: ${error.message}`;
      return;
    }
    this.state = state;
    this.render();
  }

  private render(): void {
    const s = this.state;
    const c = controlsFor(s);
    document.body.classList.toggle('identity-masked', s?.masked ?? true);
    document.body.classList.toggle('session-locked', c.lockBanner);
    this.user.textContent = c.userText;
    this.user.className = c.breakGlassActive ? 'auth-user break-glass' : s?.user ? 'auth-user' : 'auth-user none';
    this.user.title = s?.break_glass_until_ms
      ? `Emergency access until ${new Date(s.break_glass_until_ms).toLocaleTimeString()}`
      : '';
    this.buttons.login.hidden = !c.login;
    this.buttons.breakGlass.hidden = !c.breakGlass || c.lockBanner;
    this.buttons.changePassword.hidden = !c.changePassword;
    this.buttons.admin.hidden = !c.admin;
    this.buttons.lock.hidden = !c.lock;
    this.buttons.logout.hidden = !c.logout;

    this.banner.hidden = !c.lockBanner;
    const emergency = this.banner.querySelector<HTMLElement>('#lock-emergency');
    if (emergency) emergency.hidden = !c.breakGlass;
    if (s && c.lockBanner) {
      byId('lock-user').textContent = lockBannerText(s);
    }

    const want = panelFor(s, this.chosen);
    if (this.chosen !== null && want !== this.chosen) this.chosen = null;
    if (want !== this.shown) this.showPanel(want);
    this.buttons.admin.classList.toggle('active', this.shown === 'admin');
  }

  private showPanel(p: Panel | null): void {
    this.admin?.dispose();
    this.admin = null;
    this.shown = p;
    this.panel.replaceChildren();
    this.panel.className = p === 'admin' ? 'wide' : '';
    this.panel.hidden = p === null;
    if (!p) return;
    if (p === 'admin') {
      if (this.state) this.admin = new AdminPanel(this.panel, this.state, () => void session.refresh());
      return;
    }
    const form = this.form(p);
    this.panel.append(form);
    form.querySelector<HTMLInputElement>('input, textarea')?.focus();
  }

  private form(p: Exclude<Panel, 'admin'>): HTMLFormElement {
    const cancel = (): HTMLButtonElement => {
      const b = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
      b.onclick = () => this.choose(null);
      return b;
    };
    const pw = (id: string, autocomplete: string) =>
      h('input', { id, type: 'password', autocomplete, required: true, maxlength: '128' });
    switch (p) {
      case 'first-run': {
        const { form, err } = panelForm(
          'first-run',
          [
            h('h2', {}, 'Create the first administrator'),
            h(
              'p',
              { class: 'hint' },
              'No user exists on this station yet. The administrator (hospital IT) creates the nurses’ and charge nurses’ accounts. ',
              'Passwords: at least 12 characters, not a common password, not containing the user name. Passphrases are welcome.',
            ),
            field('User name', h('input', { id: 'fr-name', autocomplete: 'username', required: true, maxlength: '64' })),
            field('Password', pw('fr-pw', 'new-password')),
            field('Repeat password', pw('fr-pw2', 'new-password')),
          ],
          [h('button', { id: 'fr-submit', type: 'submit' }, 'Create administrator')],
        );
        onSubmit(
          form,
          err,
          async () => {
            await this.run(api.createFirstAdmin(value(form, '#fr-name'), value(form, '#fr-pw')), err);
          },
          () => passwordsMismatch(value(form, '#fr-pw'), value(form, '#fr-pw2')),
        );
        return form;
      }
      case 'login': {
        const { form, err } = panelForm(
          'login',
          [
            h('h2', {}, 'Log in'),
            this.state?.locked
              ? h('p', { class: 'hint' }, `Logging in ends ${this.state.user}’s locked session.`)
              : null,
            field('User name', h('input', { id: 'login-name', autocomplete: 'username', required: true, maxlength: '64' })),
            field('Password', pw('login-pw', 'current-password')),
          ],
          [h('button', { id: 'login-submit', type: 'submit' }, 'Log in'), cancel()],
        );
        onSubmit(form, err, async () => {
          if (await this.run(api.login(value(form, '#login-name'), value(form, '#login-pw')), err)) this.chosen = null;
          else form.querySelector<HTMLInputElement>('#login-pw')!.value = '';
        });
        return form;
      }
      case 'must-change':
      case 'change-password': {
        const forced = p === 'must-change';
        const { form, err } = panelForm(
          'change-password',
          [
            h('h2', {}, forced ? 'Choose a new password' : 'Change your password'),
            forced
              ? h('p', { class: 'hint' }, 'Your password was reset. Choose your own before doing anything else.')
              : null,
            field(forced ? 'Temporary password' : 'Current password', pw('mc-current', 'current-password')),
            field('New password', pw('mc-new', 'new-password')),
            field('Repeat new password', pw('mc-new2', 'new-password')),
          ],
          [h('button', { id: 'mc-submit', type: 'submit' }, 'Change password'), forced ? null : cancel()],
        );
        onSubmit(
          form,
          err,
          async () => {
            if (await this.run(api.changePassword(value(form, '#mc-current'), value(form, '#mc-new')), err)) {
              this.choose(null);
            }
          },
          () => passwordsMismatch(value(form, '#mc-new'), value(form, '#mc-new2')),
        );
        return form;
      }
      case 'emergency-reason': {
        const { form, err } = panelForm(
          'emergency-reason',
          [
            h('h2', {}, 'Emergency access: why?'),
            h(
              'p',
              { class: 'hint' },
              'You took emergency access. Say why (at least 10 characters); it is recorded in the audit trail ',
              'and reviewed by your supervisor. The ward stays live and you can act meanwhile.',
            ),
            field('Reason', h('textarea', { id: 'er-reason', rows: '3', required: true })),
          ],
          [h('button', { id: 'er-submit', type: 'submit' }, 'Record the reason')],
        );
        onSubmit(form, err, async () => {
          await this.run(api.emergencyReason(value(form, '#er-reason')), err);
        });
        return form;
      }
      case 'break-glass': {
        const { form, err } = panelForm(
          'break-glass',
          [
            h('h2', {}, 'Emergency access'),
            h(
              'p',
              { class: 'hint' },
              'Take charge-nurse rights for 30 minutes when no charge nurse can act: your password, then act at once; ',
              'the reason is asked afterwards. This is flagged in the audit trail, reviewed by your supervisor, ',
              'and the charge nurses\' stations are told.',
            ),
            field('Your password', h('input', { id: 'bg-pw', type: 'password', required: true, autocomplete: 'current-password' })),
          ],
          [h('button', { id: 'bg-submit', type: 'submit', class: 'danger' }, 'Take emergency access'), cancel()],
        );
        onSubmit(form, err, async () => {
          if (await this.run(api.emergencyAccess(value(form, '#bg-pw')), err)) this.choose(null);
        });
        return form;
      }
    }
  }

  private buildBanner(): void {
    const form = h(
      'form',
      { id: 'unlock-form' },
      h('input', {
        id: 'unlock-pw',
        type: 'password',
        placeholder: 'Password to unlock',
        autocomplete: 'current-password',
        maxlength: '128',
      }),
      h('button', { id: 'unlock-submit', type: 'submit' }, 'Unlock'),
      h('button', { id: 'lock-switch', type: 'button', class: 'secondary' }, 'Switch user'),
    );
    const err = h('span', { id: 'unlock-error', class: 'banner-error', role: 'alert' });
    this.banner.replaceChildren(
      h('span', { id: 'lock-user' }),
      h('span', { class: 'lock-note' }, 'Alarms and vitals stay live · audio pause needs no log-in'),
      form,
      h('button', { id: 'lock-emergency', type: 'button', class: 'danger' }, 'Emergency access'),
      err,
    );
    const input = form.querySelector<HTMLInputElement>('#unlock-pw')!;
    // Run a command with the password typed, then clear the field.
    const withPassword = (command: (password: string) => Promise<AuthState>) => async () => {
      await this.run(command(input.value), err);
      input.value = '';
    };
    // Emergency access from the locked screen: the password typed in the unlock field, nothing
    // else; the reason is asked right after.
    this.banner.querySelector<HTMLButtonElement>('#lock-emergency')!.onclick = () => {
      if (!input.value) {
        err.textContent = 'Type your password, then Emergency access';
        input.focus();
        return;
      }
      void busy(form, err, withPassword((password) => api.emergencyAccess(password)));
    };
    onSubmit(form, err, withPassword((password) => api.unlock(password)));
    form.querySelector<HTMLButtonElement>('#lock-switch')!.onclick = () => this.choose('login');
  }
}
