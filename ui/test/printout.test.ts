// @vitest-environment happy-dom
// The printout panel: the reason goes to the backend as typed, the saved file and the preview are
// shown, an error is said; the export form offers identity only to a session that may have it
// (the backend decides either way).

import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('../src/api', () => ({ api: { exportData: vi.fn() } }));

import { api } from '../src/api';
import type { AuthState, Permission } from '../src/auth';
import type { PrintOut } from '../src/bindings';
import { closePrintout, exportHint, exportPanel, previewPages, printPanel } from '../src/printout';

const session = (permissions: Permission[]): AuthState => ({
  first_run: false,
  user: 'u',
  role: 'nurse',
  effective_role: 'nurse',
  locked: false,
  must_change_password: false,
  break_glass_until_ms: null,
  reason_pending: false,
  masked: false,
  actions_enabled: true,
  alarms_shown: true,
  permissions,
  idle_lock_ms: 600_000,
  idle_lock_at_ms: null,
  now_ms: 0,
});
const nurse = session(['print_report', 'export_deidentified']);
const charge = session(['print_report', 'export_deidentified', 'export_identified']);

const out: PrintOut = {
  path: '/data/reports/strip_4W_01_20261207T140307Z_HR_HIGH.pdf',
  pages: 2,
  preview: 'data:image/png;base64,iVBORw0KGgo=',
  preview_dpi: 127,
};

const submit = (id: string) => document.querySelector<HTMLFormElement>(`#${id}`)!.requestSubmit();
const settle = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => closePrintout());

describe('printout panel', () => {
  it('sends the reason as typed and shows the saved file and the preview', async () => {
    const render = vi.fn().mockResolvedValue(out);
    printPanel('Alarm strip · 4W/01', 'chart copy', render);
    const reason = document.querySelector<HTMLInputElement>('#print-reason')!;
    expect(reason.value).toBe('chart copy');
    reason.value = 'physician review';
    submit('print-form');
    await settle();
    expect(render).toHaveBeenCalledWith('physician review');
    expect(document.querySelector('#printout .printout-saved')!.textContent).toContain(
      'Saved as /data/reports/strip_4W_01_20261207T140307Z_HR_HIGH.pdf · 2 pages, A4 landscape',
    );
    expect(document.querySelector<HTMLImageElement>('#printout-preview')!.src).toBe(out.preview);
    closePrintout();
    expect(document.querySelector('#printout')).toBeNull();
  });

  it('says why the backend refused', async () => {
    printPanel('Trend report', 'x', () => Promise.reject({ code: 'forbidden', message: 'role admin may not print_report' }));
    submit('print-form');
    await settle();
    expect(document.querySelector('#print-form .panel-error')!.textContent).toBe('role admin may not print_report');
    expect(document.querySelector('#printout-preview')).toBeNull();
  });

  it('one panel at a time', () => {
    printPanel('A', 'r1', vi.fn());
    printPanel('B', 'r2', vi.fn());
    expect(document.querySelectorAll('.printout')).toHaveLength(1);
    expect(previewPages({ pages: 1 })).toBe('1 page, A4 landscape');
  });
});

describe('export form', () => {
  it('offers identity only to a session that may export it, and sends what was chosen', async () => {
    exportPanel('4W/01', 0, 8 * 3_600_000, nurse);
    expect(document.querySelector('#export-identified')).toBeNull();
    expect(exportHint(0, 8 * 3_600_000, nurse)).toContain('De-identified: no name, MRN or date of birth');
    exportPanel('4W/01', 0, 8 * 3_600_000, charge);
    expect(document.querySelector('#export-identified')).not.toBeNull();
    vi.mocked(api.exportData).mockResolvedValue({ path: '/data/exports/e.json', readings: 3, samples: 0, export_id: 'ab12' });
    document.querySelector<HTMLInputElement>('#export-identified')!.checked = true;
    document.querySelector<HTMLInputElement>('#export-reason')!.value = 'study 42';
    submit('export-form');
    await settle();
    expect(api.exportData).toHaveBeenCalledWith({
      bed: '4W/01',
      from_ms: 0,
      to_ms: 8 * 3_600_000,
      format: 'fhir',
      identified: true,
      waveforms: false,
      reason: 'study 42',
    });
    expect(document.querySelector('#export-result')!.textContent).toContain('Saved as /data/exports/e.json · 3 readings');
  });
});
