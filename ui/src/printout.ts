// Printouts and exports from the bed detail: a panel that asks why (recorded in the audit trail
// by the backend), then shows what the station rendered and saved — the preview, the file, and
// a Print button that prints the preview at true size (A4 landscape pages, stacked). Whether
// the session may print or export is decided in the backend; the buttons only follow `can`.

import { api } from './api';
import { apiError, can, type AuthState } from './auth';
import type { ExportOut, PrintOut } from './bindings';
import { field, h, onSubmit, panelForm } from './dom';

/** The printout panel, one at a time; over the bed detail, never over the alarm bar. */
let open: HTMLElement | null = null;

export function closePrintout(): void {
  open?.remove();
  open = null;
  document.body.classList.remove('printing-preview');
}

function panel(id: string, title: string, ...body: HTMLElement[]): HTMLElement {
  closePrintout();
  const close = h('button', { type: 'button', class: 'secondary', id: 'printout-close' }, 'Close');
  close.onclick = closePrintout;
  const root = h(
    'section',
    { id, class: 'printout', role: 'dialog', 'aria-label': title },
    h('div', { class: 'printout-head' }, h('h2', {}, title), close),
    ...body,
  );
  document.body.append(root);
  open = root;
  return root;
}

/** How many A4 pages a preview has, and its size on paper. */
export function previewPages(out: Pick<PrintOut, 'pages'>): string {
  return `${out.pages} page${out.pages === 1 ? '' : 's'}, A4 landscape`;
}

/** Asks for the reason, runs `render`, then shows the preview and where the PDF was saved. */
export function printPanel(title: string, defaultReason: string, render: (reason: string) => Promise<PrintOut>): void {
  const reason = h('input', { id: 'print-reason', value: defaultReason, maxlength: '200', required: true });
  const go = h('button', { type: 'submit', id: 'print-go' }, 'Create');
  const { form, err } = panelForm('print-form', [field('Reason (recorded)', reason)], [go], 'inline');
  const result = h('div', { class: 'printout-result' });
  const root = panel('printout', title, form, result);
  onSubmit(form, err, async () => {
    try {
      const out = await render(reason.value);
      showPreview(result, out);
      root.dataset.saved = out.path;
    } catch (e) {
      err.textContent = apiError(e).message;
    }
  });
}

function showPreview(box: HTMLElement, out: PrintOut): void {
  const img = h('img', { id: 'printout-preview', src: out.preview, alt: 'preview', 'data-dpi': String(out.preview_dpi) });
  const print = h('button', { type: 'button', id: 'printout-print' }, 'Print');
  print.onclick = () => {
    // The stylesheet prints only the preview, 297 mm wide: each page exactly one A4 sheet.
    document.body.classList.add('printing-preview');
    window.print();
    document.body.classList.remove('printing-preview');
  };
  box.replaceChildren(
    h(
      'p',
      { class: 'printout-saved' },
      `Saved as ${out.path} · ${previewPages(out)}`,
      ' ',
      print,
    ),
    h('div', { class: 'printout-scroll' }, img),
  );
}

/** The shift handover of `ward` over the last `hours` (print_report; the backend decides). */
export function handoverPanel(ward: string, hours: number, nowMs: number): void {
  const from = nowMs - hours * 3_600_000;
  printPanel(`Shift handover · ${ward} · last ${hours} h`, 'handover', (reason) =>
    api.printShift(ward, from, nowMs, reason),
  );
}

/** The export form: format, identity (only offered when the session may), waveforms, reason. */
export function exportPanel(bed: string, from: number, to: number, auth: AuthState | null): void {
  const format = h('select', { id: 'export-format' }, h('option', { value: 'fhir' }, 'FHIR R4 (JSON)'), h('option', { value: 'csv' }, 'CSV'));
  const identified = h('input', { id: 'export-identified', type: 'checkbox' });
  const waves = h('input', { id: 'export-waveforms', type: 'checkbox' });
  const reason = h('input', { id: 'export-reason', maxlength: '200', required: true, placeholder: 'study, ethics reference…' });
  const fields: HTMLElement[] = [field('Format', format)];
  if (can(auth, 'export_identified')) fields.push(field('With identity (name, MRN)', identified));
  fields.push(field('Waveforms (up to 24 h)', waves), field('Reason (recorded)', reason));
  const go = h('button', { type: 'submit', id: 'export-go' }, 'Export');
  const { form, err } = panelForm('export-form', fields, [go], 'inline');
  const result = h('p', { class: 'printout-saved', id: 'export-result' });
  panel('export', 'Export for research', h('p', { class: 'hint' }, exportHint(from, to, auth)), form, result);
  onSubmit(form, err, async () => {
    try {
      const out: ExportOut = await api.exportData({
        bed,
        from_ms: from,
        to_ms: to,
        format: format.value === 'csv' ? 'csv' : 'fhir',
        identified: identified.checked,
        waveforms: waves.checked,
        reason: reason.value,
      });
      result.textContent = `Saved as ${out.path} · ${out.readings} readings, ${out.samples} samples · export ${out.export_id}`;
    } catch (e) {
      err.textContent = apiError(e).message;
    }
  });
}

/** What an export will hold, in words. */
export function exportHint(from: number, to: number, auth: AuthState | null): string {
  const hours = Math.round((to - from) / 3_600_000);
  const identity = can(auth, 'export_identified')
    ? 'De-identified unless "With identity" is ticked'
    : 'De-identified: no name, MRN or date of birth; dates shifted';
  return `The trend range shown (${hours} h). ${identity}. Every export is recorded with its reason.`;
}
