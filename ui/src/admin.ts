// The admin panel: users (create, disable, enable, reset, unlock, role) and the audit trail
// (filter, verify, export CSV). Shown only when the backend lists the permissions; every
// command is refused in Rust anyway.

import { api } from './api';
import {
  apiError,
  AUDIT_ACTIONS,
  auditQueryFrom,
  auditTimeError,
  can,
  csvFileName,
  formatDateTime,
  passwordsMismatch,
  ROLE_LABELS,
  roleLabel,
  userActions,
  userStatus,
  type AuditFilter,
  type AuthState,
  type Role,
  type UserAction,
  type UserInfo,
} from './auth';
import { busy, field, h, onSubmit, panelForm, table, value } from './dom';
import { showSecurity } from './security';
import { showBroker, showDevices, showWard } from './stationadmin';

type Tab = 'users' | 'audit' | 'devices' | 'ward' | 'broker' | 'security';

function roleSelect(id: string | undefined, selected: Role): HTMLSelectElement {
  const sel = h('select', { id, class: 'role-select' });
  for (const r of Object.keys(ROLE_LABELS) as Role[]) {
    sel.append(h('option', { value: r, selected: r === selected }, ROLE_LABELS[r]));
  }
  return sel;
}

/** The user actions that are a button: its label and class, and the command, which says what it did. */
const USER_BUTTONS: Readonly<Record<Exclude<UserAction, 'role'>, [string, string, (name: string) => Promise<string>]>> = {
  disable: ['Disable', 'act-disable', (name) => api.disableUser(name).then(() => `${name} disabled.`)],
  enable: ['Enable', 'act-enable', (name) => api.enableUser(name).then(() => `${name} enabled.`)],
  reset: [
    'Reset password',
    'act-reset',
    (name) =>
      api
        .resetPassword(name)
        .then((temp) => `Temporary password for ${name}: ${temp} — give it to them in person; they must change it at log-in.`),
  ],
  unlock: ['Unlock', 'act-unlock', (name) => api.unlockUser(name).then(() => `${name} unlocked.`)],
};

export class AdminPanel {
  private tab: Tab;
  private readonly body = h('div', { class: 'admin-body' });
  private readonly msg = h('p', { id: 'admin-msg', class: 'admin-msg', role: 'status' });
  private exportUrl: string | null = null;
  private query: AuditFilter = {};
  private from = '';
  private to = '';

  constructor(
    private readonly root: HTMLElement,
    private readonly state: AuthState,
    private readonly changed: () => void,
  ) {
    const tabs: [Tab, string, boolean][] = [
      ['users', 'Users', can(state, 'manage_users')],
      ['devices', 'Devices', can(state, 'manage_devices')],
      ['ward', 'Ward & alarms', can(state, 'manage_ward_profiles')],
      ['broker', 'Broker', can(state, 'broker_settings')],
      ['audit', 'Audit log', can(state, 'view_audit_log')],
      ['security', 'Security', can(state, 'view_audit_log')],
    ];
    const allowed = tabs.filter((t) => t[2]);
    this.tab = allowed[0]?.[0] ?? 'users';
    const bar = h('nav', { class: 'tabs' });
    for (const [t, label] of allowed) {
      const b = h('button', { id: `tab-${t}`, type: 'button', class: 'tab' }, label);
      b.onclick = () => {
        this.tab = t;
        this.msg.textContent = '';
        this.msg.className = 'admin-msg';
        void this.show();
      };
      bar.append(b);
    }
    root.append(h('h2', {}, 'Administration'), bar, this.msg, this.body);
    void this.show();
  }

  dispose(): void {
    if (this.exportUrl) URL.revokeObjectURL(this.exportUrl);
  }

  private say(text: string, kind: 'ok' | 'error' = 'ok'): void {
    this.msg.textContent = text;
    this.msg.className = `admin-msg ${kind}`;
  }

  private async show(): Promise<void> {
    for (const b of this.root.querySelectorAll('.tab')) b.classList.toggle('active', b.id === `tab-${this.tab}`);
    try {
      const say = (t: string, k: 'ok' | 'error' = 'ok') => this.say(t, k);
      if (this.tab === 'users') await this.showUsers();
      else if (this.tab === 'devices') await showDevices(this.body, say, () => void this.show());
      else if (this.tab === 'ward') await showWard(this.body, say);
      else if (this.tab === 'broker') await showBroker(this.body, say);
      else if (this.tab === 'security') await showSecurity(this.body, say, () => void this.show());
      else await this.showAudit();
    } catch (e) {
      this.say(apiError(e).message, 'error');
      this.changed();
    }
  }

  // ----- users -----

  private async showUsers(): Promise<void> {
    const users = await api.listUsers();
    const now = Date.now();
    const rows = users.map((u) => this.userRow(u, now));
    this.body.replaceChildren(
      h('h3', {}, `Users (${users.length})`),
      table({ id: 'users-table', class: 'data' }, ['User', 'Role', 'Status', 'Actions'], h('tbody', {}, ...rows)),
      this.createForm(),
    );
  }

  private userRow(u: UserInfo, now: number): HTMLTableRowElement {
    const actions = h('td', { class: 'row-actions' });
    let role: HTMLElement = h('td', {}, roleLabel(u.role));
    for (const a of userActions(u, now)) {
      if (a === 'role') {
        const sel = roleSelect(undefined, u.role);
        sel.onchange = () =>
          void this.userAction(async () => {
            const r = sel.value as Role;
            await api.setRole(u.name, r);
            return `${u.name} is now ${roleLabel(r)}.`;
          });
        role = h('td', {}, sel);
      } else {
        const [label, cls, work] = USER_BUTTONS[a];
        const b = h('button', { type: 'button', class: `small ${cls}` }, label);
        b.onclick = () => void this.userAction(() => work(u.name));
        actions.append(b);
      }
    }
    return h(
      'tr',
      { 'data-user': u.name, class: u.enabled ? '' : 'disabled' },
      h('td', { class: 'user-name' }, u.name),
      role,
      h('td', { class: 'user-status' }, userStatus(u, now)),
      actions,
    );
  }

  private async userAction(work: () => Promise<string>): Promise<void> {
    let text: string;
    let kind: 'ok' | 'error' = 'ok';
    try {
      text = await work();
    } catch (e) {
      text = apiError(e).message;
      kind = 'error';
    }
    await this.show();
    this.say(text, kind);
    this.changed();
  }

  private createForm(): HTMLFormElement {
    const { form, err } = panelForm(
      'new-user',
      [
        h('h3', {}, 'New user'),
        h(
          'div',
          { class: 'grid2' },
          field('User name', h('input', { id: 'nu-name', required: true, maxlength: '64', autocomplete: 'off' })),
          field('Role', roleSelect('nu-role', 'nurse')),
          field('Password', h('input', { id: 'nu-pw', type: 'password', required: true, autocomplete: 'new-password' })),
          field('Repeat password', h('input', { id: 'nu-pw2', type: 'password', required: true, autocomplete: 'new-password' })),
        ),
      ],
      [h('button', { id: 'nu-submit', type: 'submit' }, 'Create user')],
      'inline',
    );
    onSubmit(
      form,
      err,
      async () => {
        try {
          const u = await api.createUser(value(form, '#nu-name'), value(form, '#nu-role') as Role, value(form, '#nu-pw'));
          await this.show();
          this.say(`User ${u.name} (${roleLabel(u.role)}) created.`);
        } catch (ex) {
          err.textContent = apiError(ex).message;
          this.changed();
        }
      },
      () => passwordsMismatch(value(form, '#nu-pw'), value(form, '#nu-pw2')),
    );
    return form;
  }

  // ----- audit trail -----

  private async showAudit(): Promise<void> {
    const actionSel = h('select', { id: 'af-action' }, h('option', { value: '' }, 'any action'));
    for (const a of AUDIT_ACTIONS) actionSel.append(h('option', { value: a, selected: this.query.action === a }, a));
    const filters = h(
      'form',
      { id: 'audit-filter', class: 'filters' },
      field('Actor', h('input', { id: 'af-actor', value: this.query.actor ?? '', placeholder: 'any', autocomplete: 'off' })),
      field('Action', actionSel),
      field('From (local time)', h('input', { id: 'af-from', placeholder: 'YYYY-MM-DD HH:MM', value: this.from, autocomplete: 'off' })),
      field('To (local time)', h('input', { id: 'af-to', placeholder: 'YYYY-MM-DD HH:MM', value: this.to, autocomplete: 'off' })),
      h(
        'div',
        { class: 'actions' },
        h('button', { id: 'af-apply', type: 'submit' }, 'Filter'),
        h('button', { id: 'af-verify', type: 'button', class: 'secondary' }, 'Verify chain'),
        h('button', { id: 'af-export', type: 'button', class: 'secondary', hidden: !can(this.state, 'export_audit_log') }, 'Export CSV'),
      ),
    );
    const verify = h('p', { id: 'audit-verify', class: 'verify' });
    const download = h('p', { id: 'audit-download', class: 'download' });
    const entries = await api.auditList(this.query);
    const trail = table(
      { id: 'audit-table', class: 'data audit' },
      ['#', 'Time', 'Actor', 'Action', 'Target', 'Detail'],
      h(
        'tbody',
        {},
        // Newest first on screen.
        ...entries
          .slice()
          .reverse()
          .map((e) =>
            h(
              'tr',
              { 'data-action': e.action, class: e.action.startsWith('break_glass') || e.detail.startsWith('[break-glass]') ? 'flag' : '' },
              h('td', { class: 'num' }, String(e.id)),
              h('td', { class: 'time' }, formatDateTime(e.t_ms)),
              h('td', {}, e.actor),
              h('td', {}, e.action),
              h('td', {}, e.target),
              h('td', { class: 'detail', title: e.detail }, e.detail),
            ),
          ),
      ),
    );
    this.body.replaceChildren(filters, verify, download, h('h3', {}, `Entries (${entries.length}, newest first)`), trail);

    filters.onsubmit = (e) => {
      e.preventDefault();
      this.from = value(filters, '#af-from');
      this.to = value(filters, '#af-to');
      const bad = auditTimeError(this.from, this.to);
      if (bad) {
        verify.textContent = bad;
        verify.className = 'verify error';
        return;
      }
      this.query = auditQueryFrom({
        actor: value(filters, '#af-actor'),
        action: value(filters, '#af-action'),
        from: value(filters, '#af-from'),
        to: value(filters, '#af-to'),
      });
      void this.show();
    };
    filters.querySelector<HTMLButtonElement>('#af-verify')!.onclick = () =>
      void busy(filters, verify, async () => {
        try {
          const r = await api.auditVerify();
          verify.textContent = `${r.summary}${r.last_id !== null ? ` · head #${r.last_id} ${r.head_hash.slice(0, 16)}…` : ''}`;
          verify.className = r.intact ? 'verify ok' : 'verify error';
        } catch (ex) {
          verify.textContent = apiError(ex).message;
          verify.className = 'verify error';
        }
      });
    filters.querySelector<HTMLButtonElement>('#af-export')!.onclick = () =>
      void busy(filters, download, async () => {
        try {
          const csv = await api.auditExportCsv(this.query);
          if (this.exportUrl) URL.revokeObjectURL(this.exportUrl);
          this.exportUrl = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
          const name = csvFileName(Date.now());
          const rows = Math.max(0, csv.split('\r\n').length - 2);
          const a = h('a', { id: 'audit-csv-link', href: this.exportUrl, download: name }, `Save ${name}`);
          download.replaceChildren(`Exported ${rows} entries (the export is recorded in the trail). `, a);
          download.className = 'download ok';
        } catch (ex) {
          download.textContent = apiError(ex).message;
          download.className = 'download error';
        }
      });
  }
}
