// @vitest-environment happy-dom
// The bed detail's history panes when the screen moves from one bed to another: nothing of the
// first patient may stay on the second's screen (a wrong-patient display), and the controls
// must say what is shown.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

vi.mock('../src/api', () => ({
  api: { samples: vi.fn(), alarmHistory: vi.fn(), trend: vi.fn() },
}));

import { api } from '../src/api';
import type { AlarmHistoryEntry, SamplesOut } from '../src/detailmath';
import { AlarmsPane } from '../src/detail/alarms';
import type { DetailContext, Tab } from '../src/detail/pane';
import { ReviewPane } from '../src/detail/review';
import { TrendsPane } from '../src/detail/trends';

const samples = vi.mocked(api.samples);
const alarmHistory = vi.mocked(api.alarmHistory);
const trend = vi.mocked(api.trend);

/** The screen around a pane: one open bed at a time, the pane's tab shown. */
function screen(tab: Tab): { ctx: DetailContext; bed: { current: string | null } } {
  const bed = { current: null as string | null };
  const ctx: DetailContext = {
    bed: () => bed.current,
    tab: () => tab,
    auth: () => null,
    store: () => null,
    limits: () => [],
    reloadLimits: () => Promise.resolve(),
    applyRights: () => undefined,
    render: () => undefined,
    setPatientLine: () => undefined,
  };
  return { ctx, bed };
}

function strip(channel: string, n: number): SamplesOut {
  return {
    channel,
    unit: 'mV',
    from_ms: 0,
    to_ms: 10_000,
    segments: [{ t0: 0, rate: 500, values: Array.from({ length: n }, () => 0.1) }],
    gaps: [],
  };
}

/** Let the promises the pane awaits settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function leadCounts(root: HTMLElement): string[] {
  return [...root.querySelectorAll<HTMLCanvasElement>('canvas.review-lead')].map((c) => c.dataset.samples ?? '');
}

beforeEach(() => {
  vi.useFakeTimers();
  samples.mockReset();
  alarmHistory.mockReset();
  trend.mockReset();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('review pane', () => {
  it("never draws the previous bed's other leads on the next bed", async () => {
    const { ctx, bed } = screen('review');
    const pane = new ReviewPane(ctx);
    document.body.replaceChildren(pane.root);
    bed.current = 'W1/1';
    samples.mockImplementation((_bed, channel) => Promise.resolve(strip(channel, 7)));
    pane.open();
    pane.show();
    await vi.advanceTimersByTimeAsync(200);
    await settle();
    expect(leadCounts(pane.root)).toEqual(['7', '7', '7']);

    pane.close();
    bed.current = 'W1/2';
    // The next bed's chosen lead cannot be read: its other leads must not be the last bed's.
    samples.mockImplementation(() => Promise.reject({ code: 'internal', message: 'no data' }));
    pane.open();
    pane.show();
    expect(leadCounts(pane.root)).toEqual(['0', '0', '0']);
    await vi.advanceTimersByTimeAsync(200);
    await settle();
    expect(leadCounts(pane.root)).toEqual(['0', '0', '0']);
  });

  it('says beside a lead why it could not be loaded, and still draws the others', async () => {
    const { ctx, bed } = screen('review');
    const pane = new ReviewPane(ctx);
    document.body.replaceChildren(pane.root);
    bed.current = 'W1/1';
    samples.mockImplementation((_bed, channel) =>
      channel === 'PLETH'
        ? Promise.reject({ code: 'internal', message: 'database is locked' })
        : Promise.resolve(strip(channel, 7)),
    );
    pane.open();
    pane.show();
    await vi.advanceTimersByTimeAsync(200);
    await settle();
    expect(leadCounts(pane.root)).toEqual(['7', '0', '7']);
    const pleth = pane.root.querySelector<HTMLCanvasElement>('canvas[data-channel="PLETH"]');
    expect(pleth?.dataset.error).toBe('database is locked');
    const label = pleth?.parentElement?.querySelector('.review-lead-label');
    expect(label?.textContent).toBe('Pleth — not loaded: database is locked');
    expect(label?.classList.contains('error')).toBe(true);

    // The next window loads: the lead's error goes with it.
    samples.mockImplementation((_bed, channel) => Promise.resolve(strip(channel, 7)));
    pane.root.querySelector<HTMLButtonElement>('#review-back')?.click();
    await vi.advanceTimersByTimeAsync(200);
    await settle();
    expect(leadCounts(pane.root)).toEqual(['7', '7', '7']);
    expect(pleth?.dataset.error).toBe('');
    expect(label?.textContent).toBe('Pleth');
  });
});

describe('alarm history pane', () => {
  const row: AlarmHistoryEntry = {
    t_ms: 1_700_000_000_000,
    alarm_id: 'HR_HIGH',
    code: 'HR_HIGH',
    priority: 'high',
    marker: '***',
    technical: false,
    message: 'HR HIGH 150 /min (limit 120)',
    value: 150,
    limit: 120,
    acknowledged_by: null,
    acknowledged_ms: null,
    resolved_ms: null,
  };

  it("shows none of the previous bed's alarms while the next bed's are loading", async () => {
    const { ctx, bed } = screen('alarms');
    const pane = new AlarmsPane(ctx);
    document.body.replaceChildren(pane.root);
    bed.current = 'W1/1';
    alarmHistory.mockResolvedValue([row]);
    pane.open();
    pane.show();
    await settle();
    expect(pane.root.textContent).toContain('HR HIGH 150');

    pane.close();
    bed.current = 'W1/2';
    alarmHistory.mockReturnValue(new Promise(() => undefined)); // still loading
    pane.open();
    pane.show();
    await settle();
    expect(pane.root.textContent).not.toContain('HR HIGH 150');
  });
});

describe('trends pane', () => {
  it('starts the next bed on the last hour, with the 1 h button marked', () => {
    const { ctx, bed } = screen('trends');
    const pane = new TrendsPane(ctx);
    document.body.replaceChildren(pane.root);
    trend.mockReturnValue(new Promise(() => undefined));
    alarmHistory.mockReturnValue(new Promise(() => undefined));
    bed.current = 'W1/1';
    pane.open();
    pane.show();
    pane.root.querySelector<HTMLButtonElement>('[data-range="8h"]')?.click();
    const active = () =>
      [...pane.root.querySelectorAll<HTMLButtonElement>('[data-range].active')].map((b) => b.dataset.range);
    expect(active()).toEqual(['8h']);

    pane.close();
    bed.current = 'W1/2';
    pane.open();
    pane.show();
    expect(active()).toEqual(['1h']);
  });
});
