// The Security screen for hospital IT (admin panel tab): security events aggregated by the
// backend (one row per event that grows), filtered by kind, severity and state, acknowledged
// with a note, exported as CSV. Pure helpers are exported for the unit tests; every command is
// checked (and acknowledgements and exports audited) in Rust.

import { api } from './api';
import { apiError, csvFileName, formatDateTime } from './auth';
import type { SecurityEvent, SecurityFilter, SecurityOut } from './bindings';
import { busy, field, h, table, value } from './dom';

type Say = (text: string, kind?: 'ok' | 'error') => void;

// The wire types, generated from the Rust types (src-tauri/src/bindings.rs).
export type { SecurityEvent, SecurityFilter, SecurityOut };

/** "unknown_device" → "Unknown device". */
export function kindLabel(kind: string): string {
  const t = kind.replace(/_/g, ' ');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** Where an event came from, in one line: "bed 4W/01 · device mon-7 · peer 10.0.0.5". */
export function sourceText(s: SecurityEvent['source']): string {
  const parts: string[] = [];
  if (s.bed) parts.push(`bed ${s.bed}`);
  if (s.device) parts.push(`device ${s.device}`);
  if (s.peer) parts.push(`peer ${s.peer}`);
  if (s.user) parts.push(`user ${s.user}`);
  return parts.length ? parts.join(' · ') : 'station';
}

/** "12×, 10:01 – 10:07" or "once, 10:01". */
export function countText(e: Pick<SecurityEvent, 'count' | 'first_ms' | 'last_ms'>): string {
  if (e.count <= 1) return `once, ${formatDateTime(e.first_ms)}`;
  return `${e.count}×, ${formatDateTime(e.first_ms)} – ${formatDateTime(e.last_ms)}`;
}

/** The header summary of open events: "2 high, 1 medium open" or "no open events". */
export function openSummary(open: [string, number][]): string {
  const order = ['critical', 'high', 'medium', 'low', 'info'];
  const parts = [...open]
    .filter(([, n]) => n > 0)
    .sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))
    .map(([s, n]) => `${n} ${s}`);
  return parts.length ? `${parts.join(', ')} open` : 'no open events';
}

let exportUrl: string | null = null;
let filter: SecurityFilter = { open_only: false };

export async function showSecurity(body: HTMLElement, say: Say, again: () => void): Promise<void> {
  const out: SecurityOut = await api.securityEvents(filter);
  const kindSel = h('select', { id: 'sf-kind' }, h('option', { value: '' }, 'any kind'));
  for (const k of out.kinds) kindSel.append(h('option', { value: k, selected: filter.kind === k }, kindLabel(k)));
  const sevSel = h('select', { id: 'sf-severity' }, h('option', { value: '' }, 'any severity'));
  for (const s of out.severities) sevSel.append(h('option', { value: s, selected: filter.min_severity === s }, `${s} or worse`));
  const filters = h(
    'form',
    { id: 'security-filter', class: 'filters' },
    field('Kind', kindSel),
    field('Severity', sevSel),
    field('Only open', h('input', { id: 'sf-open', type: 'checkbox', checked: !!filter.open_only })),
    h(
      'div',
      { class: 'actions' },
      h('button', { id: 'sf-apply', type: 'submit' }, 'Filter'),
      h('button', { id: 'sf-export', type: 'button', class: 'secondary' }, 'Export CSV'),
    ),
  );
  const download = h('p', { id: 'security-download', class: 'download' });
  const tbody = h('tbody', {});
  for (const e of out.events) {
    const state = h('td', { class: 'ack' });
    if (e.ack_ms !== null) {
      state.append(`acknowledged by ${e.ack_by ?? '?'} ${formatDateTime(e.ack_ms)}: ${e.ack_note ?? ''}`);
    } else {
      const note = h('input', { class: 'ack-note', placeholder: 'note: what was found, what was done', maxlength: '1000' });
      const btn = h('button', { type: 'button', class: 'small act-ack' }, 'Acknowledge');
      btn.onclick = () =>
        void api.securityAcknowledge(e.id, note.value).then(
          () => {
            say(`Security event ${e.id} acknowledged.`);
            again();
          },
          (ex) => say(apiError(ex).message, 'error'),
        );
      state.append(note, btn);
    }
    tbody.append(
      h(
        'tr',
        { 'data-event': String(e.id), 'data-kind': e.kind, 'data-severity': e.severity, class: `sev-${e.severity}${e.ack_ms === null ? ' open' : ''}` },
        h('td', { class: 'num' }, String(e.id)),
        h('td', { class: 'severity' }, e.severity.toUpperCase()),
        h('td', {}, kindLabel(e.kind)),
        h('td', { class: 'source' }, sourceText(e.source)),
        h('td', { class: 'count' }, countText(e)),
        h('td', { class: 'detail', title: e.detail }, e.detail),
        state,
      ),
    );
  }
  body.replaceChildren(
    h('p', { id: 'security-open', class: 'security-open' }, openSummary(out.open)),
    filters,
    download,
    h('h3', {}, `Security events (${out.events.length}, most recent first)`),
    table({ id: 'security-table', class: 'data security' }, ['#', 'Severity', 'Kind', 'Source', 'Seen', 'Latest', 'State'], tbody),
  );
  filters.onsubmit = (ev) => {
    ev.preventDefault();
    filter = {
      kind: value(filters, '#sf-kind') || undefined,
      min_severity: value(filters, '#sf-severity') || undefined,
      open_only: filters.querySelector<HTMLInputElement>('#sf-open')?.checked ?? false,
    };
    again();
  };
  filters.querySelector<HTMLButtonElement>('#sf-export')!.onclick = () =>
    void busy(filters, download, async () => {
      try {
        const csv = await api.securityExportCsv(filter);
        if (exportUrl) URL.revokeObjectURL(exportUrl);
        exportUrl = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
        const name = csvFileName(Date.now()).replace('audit', 'security');
        const rows = Math.max(0, csv.split('\r\n').length - 2);
        const a = h('a', { id: 'security-csv-link', href: exportUrl, download: name }, `Save ${name}`);
        download.replaceChildren(`Exported ${rows} events (the export is recorded in the audit trail). `, a);
        download.className = 'download ok';
      } catch (ex) {
        download.textContent = apiError(ex).message;
        download.className = 'download error';
      }
    });
}
