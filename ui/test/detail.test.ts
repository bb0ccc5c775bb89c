import { describe, expect, it } from 'vitest';
import {
  checkLimitForm,
  clampStart,
  customRange,
  fanOut,
  isDiscrete,
  keyStep,
  limitsText,
  maxJoinMs,
  moveCursor,
  panWindow,
  presetRange,
  sampleRange,
  showNum,
  stripPolylines,
  timeAtX,
  trendData,
  validLocale,
  valueAt,
  xAtTime,
  type LimitInfo,
  type SamplesOut,
  type TrendOut,
} from '../src/detailmath';
import type { WaveTarget } from '../src/store';

const H = 3_600_000;

function recorder(): WaveTarget & { got: number[][] } {
  const got: number[][] = [];
  return { got, push: (v) => got.push(Array.from(v)) };
}

describe('fanOut', () => {
  it('feeds every target and is undefined without one', () => {
    expect(fanOut(undefined, undefined)).toBeUndefined();
    const a = recorder();
    expect(fanOut(a, undefined)).toBe(a);
    const b = recorder();
    fanOut(a, b)?.push([1, 2], 500, false);
    expect(a.got).toEqual([[1, 2]]);
    expect(b.got).toEqual([[1, 2]]);
  });
});

describe('trend ranges', () => {
  it('presets end now', () => {
    expect(presetRange('1h', 10 * H)).toEqual({ from: 9 * H, to: 10 * H });
    expect(presetRange('72h', 100 * H)).toEqual({ from: 28 * H, to: 100 * H });
  });

  it('custom ranges are checked', () => {
    expect(customRange('', '2024-05-01T12:00')).toEqual({ error: 'Enter both a start and an end time.' });
    expect(customRange('2024-05-01T12:00', '2024-05-01T11:00')).toEqual({ error: 'The end must be after the start.' });
    expect(customRange('2024-01-01T00:00', '2024-03-01T00:00')).toEqual({ error: 'At most 31 days at once.' });
    const r = customRange('2024-05-01T10:00', '2024-05-01T12:30');
    expect('error' in r).toBe(false);
    if (!('error' in r)) expect(r.to - r.from).toBe(2.5 * H);
  });
});

function trend(vital: string, bucket: number, ts: number[]): TrendOut {
  return {
    vital,
    unit: '/min',
    from_ms: 0,
    to_ms: 10 * H,
    bucket_ms: bucket,
    points: ts.map((t, i) => ({ t, min: 60 + i, max: 70 + i, mean: 65 + i, n: 3 })),
  };
}

describe('trend data', () => {
  it('breaks the line where readings are missing', () => {
    // 10 s buckets; readings at 0, 10 s, 20 s, then none until 120 s.
    const d = trendData([trend('HR', 10_000, [0, 10_000, 20_000, 120_000])]);
    const [x, min, max, mean] = d;
    expect(x).toEqual([0, 10, 20, 25, 120]);
    expect(mean).toEqual([65, 66, 67, null, 68]);
    expect(min[3]).toBeNull();
    expect(max[4]).toBe(73);
  });

  it('joins NIBP measurements minutes apart, but not hours apart', () => {
    expect(maxJoinMs('NIBP_SYS', 10_000)).toBe(20 * 60_000);
    expect(maxJoinMs('HR', 60_000)).toBe(150_000);
    const d = trendData([trend('NIBP_SYS', 10_000, [0, 180_000, 360_000, 3 * H])]);
    expect(d[3]).toEqual([65, 66, 67, null, 68]);
  });

  it('joins daily home readings and draws them as points', () => {
    expect(maxJoinMs('WEIGHT', 60_000)).toBe(36 * H);
    expect(maxJoinMs('GLUCOSE', 60_000)).toBe(36 * H);
    const d = trendData([trend('WEIGHT', 60_000, [0, 24 * H, 48 * H, 96 * H])]);
    expect(d[3]).toEqual([65, 66, 67, null, 68]);
    expect(isDiscrete('WEIGHT') && isDiscrete('GLUCOSE') && isDiscrete('NIBP_SYS')).toBe(true);
    expect(isDiscrete('HR')).toBe(false);
  });

  it('aligns series on one axis without breaking them at the other series times', () => {
    const d = trendData([trend('NIBP_SYS', 10_000, [0, 180_000]), trend('NIBP_DIA', 10_000, [1_000, 181_000])]);
    expect(d[0]).toEqual([0, 1, 180, 181]);
    // Sys mean: value, skipped (undefined: joined), value, nothing after (null).
    expect(d[3]).toEqual([65, undefined, 66, null]);
    expect(d[6]).toEqual([null, 65, undefined, 66]);
  });
});

describe('full-disclosure window and cursor', () => {
  const W = 10_000;
  const b = { min: 0, max: 100_000 };

  it('the cursor moving left of the window scrolls it back', () => {
    let s = { start: 50_000, cursor: 50_400 };
    s = moveCursor(s, -200, W, b);
    expect(s).toEqual({ start: 50_000, cursor: 50_200 });
    s = moveCursor(s, -1000, W, b);
    expect(s).toEqual({ start: 49_200, cursor: 49_200 });
    // Never before the oldest time, never after the newest.
    expect(moveCursor({ start: 0, cursor: 100 }, -5000, W, b)).toEqual({ start: 0, cursor: 0 });
    expect(moveCursor({ start: 90_000, cursor: 99_900 }, 5000, W, b)).toEqual({ start: 90_000, cursor: 100_000 });
  });

  it('panning keeps the cursor on screen and the window in bounds', () => {
    expect(panWindow({ start: 50_000, cursor: 55_000 }, -10_000, W, b)).toEqual({ start: 40_000, cursor: 45_000 });
    expect(panWindow({ start: 5_000, cursor: 6_000 }, -10_000, W, b)).toEqual({ start: 0, cursor: 1_000 });
    expect(clampStart(95_000, W, b)).toBe(90_000);
  });

  it('keys', () => {
    expect(keyStep('ArrowLeft', false, W)).toEqual({ cursor: -200 });
    expect(keyStep('ArrowRight', true, W)).toEqual({ cursor: 1000 });
    expect(keyStep('PageUp', false, W)).toEqual({ pan: -W });
    expect(keyStep('a', false, W)).toBeNull();
  });

  it('x and time convert both ways', () => {
    expect(timeAtX(250, 1000, 50_000, W)).toBe(52_500);
    expect(xAtTime(52_500, 1000, 50_000, W)).toBe(250);
  });
});

function samples(): SamplesOut {
  return {
    channel: 'ECG_II',
    unit: 'mV',
    from_ms: 0,
    to_ms: 1000,
    // 100 Hz: 0–100 ms, then a gap, then 300–400 ms with a missing sample at 350 ms.
    segments: [
      { t0: 0, rate: 100, values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
      { t0: 300, rate: 100, values: [1, 1, 1, 1, 1, Number.NaN, 2, 2, 2, 2] },
    ],
    gaps: [[100, 300]],
  };
}

describe('full-disclosure drawing', () => {
  it('never joins across a gap or a missing sample', () => {
    const lines = stripPolylines(samples(), 0, 1000, 1000);
    expect(lines.map((l) => l.length)).toEqual([10, 5, 4]);
    expect(lines[0][0]).toEqual([0, 0]);
    expect(lines[1][0]).toEqual([300, 1]);
    expect(lines[2][0]).toEqual([360, 2]);
  });

  it('clips to the window', () => {
    const lines = stripPolylines(samples(), 50, 300, 300);
    expect(lines.map((l) => l.length)).toEqual([5, 5]);
    expect(lines[0][0]).toEqual([0, 5]);
  });

  it('reads the value under the cursor, none in a gap', () => {
    expect(valueAt(samples(), 31)).toBe(3);
    expect(valueAt(samples(), 200)).toBeNull();
    expect(valueAt(samples(), 350)).toBeNull();
    expect(valueAt(null, 0)).toBeNull();
  });

  it('auto range', () => {
    expect(sampleRange(samples())).toEqual({ min: 0, max: 9 });
    expect(sampleRange({ ...samples(), segments: [] })).toBeNull();
  });
});

function limit(code: string, vital: string, direction: 'low' | 'high', threshold: number, hyst = 5): LimitInfo {
  return {
    code,
    vital,
    label: code,
    direction,
    threshold,
    priority: 'medium',
    delay_ms: 0,
    hysteresis: hyst,
    unit: '/min',
    min: 15,
    max: 300,
  };
}

describe('limits form', () => {
  const lo = limit('HR_LOW', 'HR', 'low', 50);
  const hi = limit('HR_HIGH', 'HR', 'high', 120);

  it('only what changed is sent', () => {
    const r = checkLimitForm([
      { limit: lo, text: '45' },
      { limit: hi, text: '120' },
    ]);
    expect(r.errors.size).toBe(0);
    expect(r.changes).toEqual([{ code: 'HR_LOW', threshold: 45 }]);
  });

  it('refuses non-numbers, out-of-range and crossed limits', () => {
    const r = checkLimitForm([
      { limit: lo, text: 'abc' },
      { limit: hi, text: '1200' },
    ]);
    expect(r.errors.get('HR_LOW')).toBe('Enter a number.');
    expect(r.errors.get('HR_HIGH')).toBe('Allowed 15 to 300.');
    expect(r.changes).toEqual([]);
    const crossed = checkLimitForm([
      { limit: lo, text: '130' },
      { limit: hi, text: '120' },
    ]);
    expect(crossed.errors.get('HR_LOW')).toBe('Must be below the high limit.');
    const tight = checkLimitForm([
      { limit: lo, text: '112' },
      { limit: hi, text: '120' },
    ]);
    expect(tight.errors.get('HR_LOW')).toBe('Must be more than 10 below the high limit.');
    expect(checkLimitForm([{ limit: lo, text: ' 47,5 ' }]).changes).toEqual([{ code: 'HR_LOW', threshold: 47.5 }]);
  });

  it('limits text', () => {
    expect(limitsText([lo, hi], 'HR')).toBe('50 – 120');
    expect(limitsText([limit('SPO2_LOW', 'SPO2', 'low', 90)], 'SPO2')).toBe('> 90');
    expect(limitsText([], 'TEMP')).toBe('limits off');
  });
});

describe('locale', () => {
  it('the POSIX locale is no language tag', () => {
    expect(validLocale('C')).toBe(false);
    expect(validLocale('')).toBe(false);
    expect(validLocale(undefined)).toBe(false);
    expect(validLocale('en-GB')).toBe(true);
  });
});

describe('patient header', () => {
  it('shows name, age, sex and pacemaker, and nothing for an empty bed', async () => {
    const { patientHeader } = await import('../src/detailmath');
    const p = { bed: 'sim/03', mrn: 'M1', name: 'Jane Doe', dob: '1950-02-03', age: 76, sex: 'F', pacemaker: true, admitted_ms: 1, masked: false };
    expect(patientHeader(p)).toBe('Jane Doe · 76 y · F · PACER');
    expect(patientHeader({ ...p, name: 'J. D.', age: null, sex: 'U', pacemaker: false, masked: true })).toBe('J. D.');
    expect(patientHeader(undefined)).toBe('');
  });
});

describe('trend scale, limits and alarm marks', () => {
  it('keeps fixed axes per vital and never clips a reading', async () => {
    const { trendAxis } = await import('../src/detailmath');
    expect(trendAxis('RR', 17, 18)).toEqual([0, 40]);
    expect(trendAxis('SPO2', 84, 99)).toEqual([70, 100]);
    expect(trendAxis('SPO2', 62, 99)).toEqual([62, 100]);
    expect(trendAxis('HR', Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)).toEqual([0, 200]);
    expect(trendAxis('GLUCOSE', 37.5, 180)).toEqual([0, 400]);
    expect(trendAxis('GLUCOSE', 60, 512)).toEqual([0, 512]);
  });

  it('scales a weight trend to the patient, so that a kilogram shows', async () => {
    const { trendAxis } = await import('../src/detailmath');
    expect(trendAxis('WEIGHT', 80, 82.4)).toEqual([75, 88]);
    expect(trendAxis('WEIGHT', 2.1, 2.3)).toEqual([0, 8]);
    expect(trendAxis('WEIGHT', Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)).toEqual([0, 150]);
  });

  it('shows a home numeric only while the bed has its reading or alarm', () => {
    const glucose = { codes: ['GLUCOSE'], optional: true };
    expect(showNum({ codes: ['HR'] }, false, false, [])).toBe(true);
    expect(showNum(glucose, false, false, [])).toBe(false);
    expect(showNum(glucose, true, false, [])).toBe(true);
    expect(showNum(glucose, false, true, [])).toBe(true);
    expect(showNum(glucose, false, false, [{ code: 'GLUCOSE_LOW' }])).toBe(true);
    expect(showNum(glucose, false, false, [{ code: 'HR_LOW' }])).toBe(false);
  });

  it('finds the limit band and the alarms of a vital', async () => {
    const { limitBand, alarmMarks } = await import('../src/detailmath');
    const l = (vital: string, direction: 'low' | 'high', threshold: number) => ({
      code: `${vital}_${direction.toUpperCase()}`,
      vital,
      label: '',
      direction,
      threshold,
      priority: 'medium' as const,
      delay_ms: 0,
      hysteresis: 0,
      unit: '',
      min: 0,
      max: 300,
    });
    expect(limitBand([l('HR', 'low', 50), l('HR', 'high', 120), l('RR', 'low', 8)], 'HR')).toEqual({ low: 50, high: 120 });
    expect(limitBand([l('SPO2', 'low', 90)], 'SPO2')).toEqual({ low: 90, high: null });
    const h = (t: number, code: string) => ({
      t_ms: t,
      alarm_id: `sim/03/${code}`,
      code,
      priority: 'high' as const,
      marker: '***',
      technical: false,
      message: `${code} msg`,
      value: null,
      limit: null,
      acknowledged_by: null,
      acknowledged_ms: null,
      resolved_ms: null,
    });
    const marks = alarmMarks([h(30, 'SPO2_LOW'), h(10, 'SPO2_LOW'), h(20, 'HR_HIGH'), h(99, 'SPO2_LOW')], ['SPO2'], 0, 50);
    expect(marks.map((m) => m.t)).toEqual([10, 30]);
    expect(marks[0].text).toBe('*** SPO2_LOW msg');
  });
});

describe('review calipers', () => {
  it('measure the interval and its rate', async () => {
    const { caliperText } = await import('../src/detailmath');
    expect(caliperText(1000, 1800)).toEqual({ ms: 800, rate: 75, text: 'Δ 0.800 s · 75 /min' });
    expect(caliperText(2000, 1500).rate).toBe(120);
    expect(caliperText(5, 5)).toEqual({ ms: 0, rate: null, text: 'Δ 0.000 s' });
  });
});
