// Hospital IT's station settings in the admin panel: devices and their beds, the ward profile
// and latching alarms, and the broker. Each view reads from and writes through the backend,
// which checks the administrator's rights and audits every change.

import { api, type BrokerOut, type DeviceRow } from './api';
import { apiError } from './auth';
import { busy, field, h, onSubmit, panelForm, table, value } from './dom';

type Say = (text: string, kind?: 'ok' | 'error') => void;

/** What the window knows live of a bed: its beds and latest values (set by main.ts). */
export interface LiveWard {
  beds(): ReadonlyArray<{ key: string; label: string }>;
  /** Latest HR, SpO2, RR of a bed as heard now (null: none). */
  values(bed: string): { hr: number | null; spo2: number | null; rr: number | null };
}
let liveWard: LiveWard | null = null;
export function setLiveWard(w: LiveWard): void {
  liveWard = w;
}

/**
 * The live values a device sends now, to confirm against the bedside monitor before mapping
 * it to a bed: "HR 84 · SpO2 97 · RR 16 (live now from mon-sim-03)".
 */
export function liveCheckText(device: string, v: { hr: number | null; spo2: number | null; rr: number | null } | null): string {
  if (!v || (v.hr === null && v.spo2 === null && v.rr === null)) return `No live values from ${device}: check it is connected.`;
  const f = (x: number | null) => (x === null ? '-?-' : String(Math.round(x)));
  return `HR ${f(v.hr)} · SpO2 ${f(v.spo2)} · RR ${f(v.rr)} (live now from ${device})`;
}

/** Text of a device's live state. */
export function deviceLiveText(d: Pick<DeviceRow, 'live' | 'registered' | 'enabled'>): string {
  const live = d.live === 'online' ? 'online' : d.live === 'offline' ? 'OFFLINE' : 'not heard yet';
  if (!d.registered) return `${live} · NOT REGISTERED`;
  return d.enabled ? live : `${live} · disabled`;
}

/** Label of an alarm code in the latching list: "SPO2_LOW" → "SPO2 LOW". */
export function codeLabel(code: string): string {
  return code.replace(/_/g, ' ');
}

export async function showDevices(body: HTMLElement, say: Say, again: () => void): Promise<void> {
  const rows = await api.listDevices();
  const tbody = h('tbody', {});
  for (const d of rows) {
    const actions = h('td', { class: 'row-actions' });
    if (d.registered) {
      const rm = h('button', { type: 'button', class: 'small secondary act-remove' }, 'Remove');
      rm.onclick = () =>
        void api.removeDevice(d.device).then(
          () => {
            say(`Device ${d.device} removed.`);
            again();
          },
          (e) => say(apiError(e).message, 'error'),
        );
      actions.append(rm);
    } else {
      const reg = h('button', { type: 'button', class: 'small act-register' }, 'Register');
      reg.onclick = () => {
        const f = body.querySelector<HTMLFormElement>('#device-form');
        if (!f) return;
        f.querySelector<HTMLSelectElement>('#dv-device')!.value = d.device;
        const bed = f.querySelector<HTMLSelectElement>('#dv-bed')!;
        if ([...bed.options].some((o) => o.value === d.bed)) bed.value = d.bed;
        f.dispatchEvent(new Event('change'));
        f.querySelector<HTMLInputElement>('#dv-label')!.focus();
      };
      actions.append(reg);
    }
    tbody.append(
      h(
        'tr',
        { 'data-device': d.device, class: d.registered ? '' : 'unregistered' },
        h('td', {}, d.device),
        h('td', {}, d.bed),
        h('td', {}, d.label),
        h('td', { class: `live-${d.live}` }, deviceLiveText(d)),
        actions,
      ),
    );
  }
  // Devices and beds are picked from lists (never typed), and the device's live values are
  // shown to confirm against the bedside monitor before the mapping is saved.
  const deviceSel = h('select', { id: 'dv-device', required: true });
  for (const d of rows) deviceSel.append(h('option', { value: d.device }, `${d.device}${d.registered ? ` (${d.bed})` : ' — not registered'}`));
  const bedSel = h('select', { id: 'dv-bed', required: true });
  const beds = liveWard?.beds() ?? [];
  const bedKeys = new Set(beds.map((b) => b.key));
  for (const b of beds) bedSel.append(h('option', { value: b.key }, `${b.label} (${b.key})`));
  for (const d of rows) {
    if (!bedKeys.has(d.bed)) {
      bedKeys.add(d.bed);
      bedSel.append(h('option', { value: d.bed }, d.bed));
    }
  }
  const live = h('p', { id: 'dv-live', class: 'hint live-check' });
  const confirm = h('input', { id: 'dv-confirm', type: 'checkbox' });
  const showLive = (): void => {
    const row = rows.find((r) => r.device === deviceSel.value);
    live.textContent = row ? liveCheckText(row.device, liveWard?.values(row.bed) ?? null) : '';
    confirm.checked = false;
  };
  deviceSel.onchange = showLive;
  bedSel.onchange = () => (confirm.checked = false);
  const { form, err } = panelForm(
    'device-form',
    [
      h('h3', {}, 'Register a device (or move it to another bed)'),
      field('Device', deviceSel),
      field('Bed', bedSel),
      live,
      h('label', { class: 'check' }, confirm, 'These values match the bedside monitor of this bed'),
      field('Label', h('input', { id: 'dv-label', maxlength: '100' })),
    ],
    [h('button', { id: 'dv-submit', type: 'submit' }, 'Register')],
    'inline',
  );
  form.addEventListener('change', (e) => {
    if (e.target === form) showLive();
  });
  showLive();
  onSubmit(
    form,
    err,
    async () => {
      try {
        const device = value(form, '#dv-device');
        await api.registerDevice(device, value(form, '#dv-bed'), value(form, '#dv-label'));
        say(`Device ${device} registered to ${value(form, '#dv-bed')}.`);
        again();
      } catch (ex) {
        err.textContent = apiError(ex).message;
      }
    },
    () => (confirm.checked ? null : 'Check the live values against the bedside monitor first.'),
  );
  body.replaceChildren(
    h('h3', {}, `Devices (${rows.filter((r) => r.registered).length} registered)`),
    h(
      'p',
      { class: 'hint' },
      'With a hospital broker the station refuses data from unregistered devices; devices heard but not registered are listed so they can be mapped to their bed.',
    ),
    table({ id: 'devices-table', class: 'data' }, ['Device', 'Bed', 'Label', 'State', ''], tbody),
    form,
  );
}

export async function showWard(body: HTMLElement, say: Say): Promise<void> {
  const s = await api.wardSettings();
  const profile = h('select', { id: 'ward-profile' });
  for (const p of s.profiles) profile.append(h('option', { value: p, selected: p === s.profile }, p));
  profile.onchange = () =>
    void api.setWardProfile(profile.value).then(
      () => say(`Ward profile set to ${profile.value}: new patients get its default limits.`),
      (e) => say(apiError(e).message, 'error'),
    );
  // Yes/no ward settings, each saved and audited at once; a refused change is undone.
  const flag = (
    attrs: Record<string, string>,
    checked: boolean,
    text: string,
    set: (on: boolean) => Promise<unknown>,
    said: (on: boolean) => string,
  ) => {
    const box = h('input', { ...attrs, type: 'checkbox', checked });
    box.onchange = () =>
      void set(box.checked).then(
        () => say(said(box.checked)),
        (e) => {
          box.checked = !box.checked;
          say(apiError(e).message, 'error');
        },
      );
    return h('label', { class: 'check' }, box, ` ${text}`);
  };
  const list = h('div', { id: 'latching-list', class: 'latching' });
  for (const code of s.latchable) {
    list.append(
      flag(
        { 'data-code': code },
        s.latching.includes(code),
        codeLabel(code),
        (on) => api.setLatching(code, on),
        (on) => `${codeLabel(code)} ${on ? 'now latches' : 'no longer latches'}.`,
      ),
    );
  }
  body.replaceChildren(
    h('h3', {}, 'Alarm handling'),
    flag(
      { id: 'ward-latch-high' },
      s.latch_high,
      'Every high-priority alarm latches (recommended)',
      (on) => api.setLatchHigh(on),
      (on) =>
        on
          ? 'High-priority alarms now latch.'
          : 'High-priority alarms no longer latch; one that clears unseen stays marked "not reviewed".',
    ),
    flag(
      { id: 'ward-nurses-ack' },
      s.nurses_acknowledge,
      'Nurses may acknowledge alarms (each acknowledgement is audited)',
      (on) => api.setNursesAcknowledge(on),
      (on) => (on ? 'Nurses may now acknowledge alarms.' : 'Only charge nurses acknowledge alarms now.'),
    ),
    h('h3', {}, 'Ward profile'),
    h('p', { class: 'hint' }, 'The default alarm limits of beds whose limits a charge nurse has not set.'),
    field('Profile', profile),
    h('h3', {}, 'Latching alarms'),
    h(
      'p',
      { class: 'hint' },
      'A latching alarm stays shown after its condition ends until someone acknowledges it.',
    ),
    list,
  );
}

export async function showBroker(body: HTMLElement, say: Say): Promise<void> {
  const b: BrokerOut = await api.brokerSettings();
  const dl = h('dl', { id: 'broker-now', class: 'facts' });
  const fact = (k: string, v: string | null | undefined) => dl.append(h('dt', {}, k), h('dd', {}, v ?? '—'));
  fact('In use', `${b.url} (${b.mode === 'embedded' ? 'embedded broker, simulated ward' : 'hospital broker'})`);
  fact('State', b.connected ? 'connected' : `not connected${b.last_error ? `: ${b.last_error}` : ''}`);
  fact('Config file', b.config_path);
  fact('CA bundle', b.ca_file);
  fact('Client certificate', b.cert_file);
  fact('User', b.username ? `${b.username}${b.password_set ? ' (password set)' : ''}` : null);
  const { form, err } = panelForm(
    'broker-form',
    [
      h('h3', {}, 'Hospital broker'),
      h(
        'p',
        { class: 'hint' },
        'mqtts://host:8883 with the CA bundle and client certificate of the config file. Leave empty for the embedded broker and simulated ward. Saved to the config file; takes effect when the station restarts.',
      ),
      field('Broker URL', h('input', { id: 'br-url', value: b.configured_url ?? '', placeholder: 'mqtts://broker.hospital:8883' })),
      field('Ward (empty: all wards)', h('input', { id: 'br-ward', value: b.ward ?? '' })),
    ],
    [
      h('button', { id: 'br-test', type: 'button', class: 'secondary' }, 'Test connection'),
      h('button', { id: 'br-save', type: 'submit' }, 'Save'),
    ],
  );
  form.querySelector<HTMLButtonElement>('#br-test')!.onclick = () =>
    void busy(form, err, async () => {
      try {
        say(await api.testBroker(value(form, '#br-url')));
      } catch (ex) {
        err.textContent = apiError(ex).message;
      }
    });
  onSubmit(form, err, async () => {
    try {
      const path = await api.saveBroker(value(form, '#br-url') || null, value(form, '#br-ward') || null);
      say(`Saved to ${path}. Restart the station to use it.`);
    } catch (ex) {
      err.textContent = apiError(ex).message;
    }
  });
  body.replaceChildren(h('h3', {}, 'Broker'), dl, form);
}
