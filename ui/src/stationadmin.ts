// Hospital IT's station settings in the admin panel: devices and their beds, the ward profile
// and latching alarms, and the broker. Each view reads from and writes through the backend,
// which checks the administrator's rights and audits every change.

import { api, type BrokerOut, type DeviceRow } from './api';
import { apiError } from './auth';
import { busy, field, h, value } from './dom';

type Say = (text: string, kind?: 'ok' | 'error') => void;

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
        f.querySelector<HTMLInputElement>('#dv-device')!.value = d.device;
        f.querySelector<HTMLInputElement>('#dv-bed')!.value = d.bed;
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
  const table = h(
    'table',
    { id: 'devices-table', class: 'data' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'Bed'), h('th', {}, 'Label'), h('th', {}, 'State'), h('th', {}, ''))),
    tbody,
  );
  const err = h('p', { class: 'panel-error', role: 'alert' });
  const form = h(
    'form',
    { id: 'device-form', class: 'panel-form inline' },
    h('h3', {}, 'Register a device (or move it to another bed)'),
    field('Device id', h('input', { id: 'dv-device', required: true, maxlength: '64' })),
    field('Bed (ward/bed)', h('input', { id: 'dv-bed', required: true, maxlength: '100', placeholder: 'icu/03' })),
    field('Label', h('input', { id: 'dv-label', maxlength: '100' })),
    err,
    h('div', { class: 'actions' }, h('button', { id: 'dv-submit', type: 'submit' }, 'Register')),
  );
  form.onsubmit = (e) => {
    e.preventDefault();
    void busy(form, err, async () => {
      try {
        const device = value(form, '#dv-device');
        await api.registerDevice(device, value(form, '#dv-bed'), value(form, '#dv-label'));
        say(`Device ${device} registered to ${value(form, '#dv-bed')}.`);
        again();
      } catch (ex) {
        err.textContent = apiError(ex).message;
      }
    });
  };
  body.replaceChildren(
    h('h3', {}, `Devices (${rows.filter((r) => r.registered).length} registered)`),
    h(
      'p',
      { class: 'hint' },
      'With a hospital broker the station refuses data from unregistered devices; devices heard but not registered are listed so they can be mapped to their bed.',
    ),
    table,
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
  const list = h('div', { id: 'latching-list', class: 'latching' });
  for (const code of s.latchable) {
    const box = h('input', { type: 'checkbox', 'data-code': code, checked: s.latching.includes(code) });
    box.onchange = () =>
      void api.setLatching(code, box.checked).then(
        () => say(`${codeLabel(code)} ${box.checked ? 'now latches' : 'no longer latches'}.`),
        (e) => {
          box.checked = !box.checked;
          say(apiError(e).message, 'error');
        },
      );
    list.append(h('label', { class: 'check' }, box, ` ${codeLabel(code)}`));
  }
  body.replaceChildren(
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
  const err = h('p', { class: 'panel-error', role: 'alert' });
  const form = h(
    'form',
    { id: 'broker-form', class: 'panel-form' },
    h('h3', {}, 'Hospital broker'),
    h(
      'p',
      { class: 'hint' },
      'mqtts://host:8883 with the CA bundle and client certificate of the config file. Leave empty for the embedded broker and simulated ward. Saved to the config file; takes effect when the station restarts.',
    ),
    field('Broker URL', h('input', { id: 'br-url', value: b.configured_url ?? '', placeholder: 'mqtts://broker.hospital:8883' })),
    field('Ward (empty: all wards)', h('input', { id: 'br-ward', value: b.ward ?? '' })),
    err,
    h(
      'div',
      { class: 'actions' },
      h('button', { id: 'br-test', type: 'button', class: 'secondary' }, 'Test connection'),
      h('button', { id: 'br-save', type: 'submit' }, 'Save'),
    ),
  );
  form.querySelector<HTMLButtonElement>('#br-test')!.onclick = () =>
    void busy(form, err, async () => {
      try {
        say(await api.testBroker(value(form, '#br-url')));
      } catch (ex) {
        err.textContent = apiError(ex).message;
      }
    });
  form.onsubmit = (e) => {
    e.preventDefault();
    void busy(form, err, async () => {
      try {
        const path = await api.saveBroker(value(form, '#br-url') || null, value(form, '#br-ward') || null);
        say(`Saved to ${path}. Restart the station to use it.`);
      } catch (ex) {
        err.textContent = apiError(ex).message;
      }
    });
  };
  body.replaceChildren(h('h3', {}, 'Broker'), dl, form);
}
