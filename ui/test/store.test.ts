import { describe, expect, it } from 'vitest';
import type { AlarmInfo, BedInfo, DeviceStatus, Frame, VitalUpdate, WaveChunk } from '../src/frames';
import { Store, type WaveTarget } from '../src/store';
import { alarmInfo } from './support';

const bed = (n: number): BedInfo => ({ key: `icu/${n}`, ward: 'icu', bed: String(n), label: `Bed ${n}`, remote: false });

const frame = (f: Partial<Frame> = {}): Frame => ({ t: 1_700_000_000_000, waves: [], vitals: [], ...f });

const first = (): Frame =>
  frame({
    engine: { ward: 'icu', broker: '127.0.0.1:1883', connected: true, mode: 'embedded' },
    beds: [bed(1), bed(2)],
  });

const vital = (b: string, code: string, value: number | null, t = 1000): VitalUpdate => ({
  bed: b,
  code,
  mdc: 0,
  unit: '/min',
  value,
  t,
});

const alarm = (b: string, code: string, priority: AlarmInfo['priority'], since = 0): AlarmInfo =>
  alarmInfo({ id: `${b}:${code}`, bed: b, code, label: code.replace('_', ' '), priority, since });

const device = (b: string, name: string, online: boolean, conditions: string[] = []): DeviceStatus => ({
  bed: b,
  device: name,
  online,
  conditions,
  t: 0,
});

const chunk = (b: string, channel: string, seq: number, data: number[]): WaveChunk => ({
  bed: b,
  channel,
  rate: 500,
  t0: 0,
  seq,
  origin: -5,
  factor: 0.01,
  n: data.length,
  data,
});

class RecordingTarget implements WaveTarget {
  pushes: Array<{ values: number[]; rate: number; gap: boolean }> = [];
  push(values: ArrayLike<number>, rate: number, gapBefore: boolean): void {
    this.pushes.push({ values: Array.from(values), rate, gap: gapBefore });
  }
}

describe('Store.apply', () => {
  it('takes engine state and the bed list from the first frame', () => {
    const s = new Store();
    const c = s.apply(first());
    expect(c.engine).toBe(true);
    expect(c.beds).toBe(true);
    expect(s.engine?.ward).toBe('icu');
    expect(s.beds.map((b) => b.key)).toEqual(['icu/1', 'icu/2']);
  });

  it('keeps the latest reading per bed and code, and null stays null', () => {
    const s = new Store();
    s.apply(first());
    const c = s.apply(frame({ vitals: [vital('icu/1', 'HR', 72), vital('icu/2', 'SPO2', null)] }));
    expect([...c.vitals].sort()).toEqual(['icu/1', 'icu/2']);
    expect(s.vital('icu/1', 'HR')?.value).toBe(72);
    expect(s.vital('icu/2', 'SPO2')?.value).toBeNull();
    s.apply(frame({ vitals: [vital('icu/1', 'HR', 80, 2000)] }));
    expect(s.vital('icu/1', 'HR')?.value).toBe(80);
  });

  it('never lets an older reading replace a newer one', () => {
    const s = new Store();
    s.apply(first());
    s.apply(frame({ vitals: [vital('icu/1', 'HR', 80, 2000)] }));
    const c = s.apply(frame({ vitals: [vital('icu/1', 'HR', 60, 1500)] }));
    expect(s.vital('icu/1', 'HR')?.value).toBe(80);
    expect(c.vitals.size).toBe(0);
  });

  it('keeps a late reading apart: said as late, never the current value', () => {
    const s = new Store();
    s.apply(first());
    s.apply(frame({ vitals: [vital('icu/1', 'SPO2', 97, 2000)] }));
    // Taken earlier, or long ago: history only, even when it is the newest seen.
    const c = s.apply(frame({ t: 5000, vitals: [{ ...vital('icu/1', 'SPO2', 84, 1500), late: true }] }));
    s.apply(frame({ t: 6000, vitals: [{ ...vital('icu/1', 'HR', 70, 9000), late: true }] }));
    expect(s.vital('icu/1', 'SPO2')?.value).toBe(97);
    expect(s.vital('icu/1', 'HR')).toBeUndefined();
    expect(s.lateVital('icu/1', 'SPO2')).toEqual({ reading: { ...vital('icu/1', 'SPO2', 84, 1500), late: true }, received: 5000 });
    expect(s.lateVital('icu/1', 'HR')?.reading.value).toBe(70);
    expect([...c.vitals]).toEqual(['icu/1']);
  });

  it('ignores data for unknown beds without failing', () => {
    const target = new RecordingTarget();
    const s = new Store(() => target);
    s.apply(first());
    const c = s.apply(
      frame({
        vitals: [vital('icu/9', 'HR', 50)],
        waves: [chunk('icu/9', 'ECG_II', 1, [1])],
        alarms: [alarm('icu/9', 'HR_LOW', 'high')],
        devices: [device('icu/9', 'mon', false)],
      }),
    );
    expect(c.vitals.size).toBe(0);
    expect(s.vital('icu/9', 'HR')).toBeUndefined();
    expect(s.alarmsFor('icu/9')).toEqual([]);
    expect(s.highestPriority('icu/9')).toBeNull();
    expect(s.commLost('icu/9')).toBe(false);
    expect(s.commLost('icu/1')).toBe(false);
    expect(s.activeAlarms).toEqual([]);
    expect(target.pushes).toEqual([]);
  });

  it('computes the highest active priority per bed', () => {
    const s = new Store();
    s.apply(first());
    s.apply(
      frame({
        alarms: [
          alarm('icu/1', 'RR_HIGH', 'low'),
          alarm('icu/1', 'SPO2_LOW', 'high'),
          alarm('icu/1', 'HR_HIGH', 'medium'),
          alarm('icu/2', 'TEMP_HIGH', 'low'),
        ],
      }),
    );
    expect(s.highestPriority('icu/1')).toBe('high');
    expect(s.highestPriority('icu/2')).toBe('low');
    expect(s.alarmsFor('icu/1').map((a) => a.priority)).toEqual(['high', 'medium', 'low']);
    expect(s.activeAlarms).toHaveLength(4);
  });

  it('orders equal priorities most recent first', () => {
    const s = new Store();
    s.apply(first());
    s.apply(frame({ alarms: [alarm('icu/1', 'HR_HIGH', 'medium', 10), alarm('icu/1', 'RR_LOW', 'medium', 20)] }));
    expect(s.alarmsFor('icu/1').map((a) => a.code)).toEqual(['RR_LOW', 'HR_HIGH']);
  });

  it('treats alarms as the full list: absent = unchanged, empty = all cleared', () => {
    const s = new Store();
    s.apply(first());
    s.apply(frame({ alarms: [alarm('icu/1', 'HR_HIGH', 'medium')] }));
    const c = s.apply(frame());
    expect(c.alarms).toBe(false);
    expect(s.highestPriority('icu/1')).toBe('medium');
    s.apply(frame({ alarms: [alarm('icu/2', 'HR_LOW', 'high')] }));
    expect(s.highestPriority('icu/1')).toBeNull();
    expect(s.highestPriority('icu/2')).toBe('high');
    s.apply(frame({ alarms: [] }));
    expect(s.activeAlarms).toEqual([]);
  });

  it('shows alarms that arrived before their bed once the bed appears', () => {
    const s = new Store();
    s.apply(first());
    s.apply(frame({ alarms: [alarm('icu/3', 'SPO2_LOW', 'high')] }));
    expect(s.highestPriority('icu/3')).toBeNull();
    s.apply(frame({ beds: [bed(1), bed(2), bed(3)] }));
    expect(s.highestPriority('icu/3')).toBe('high');
  });

  it('keeps the data of beds that stay and drops beds that leave', () => {
    const s = new Store();
    s.apply(first());
    s.apply(frame({ vitals: [vital('icu/1', 'HR', 70), vital('icu/2', 'HR', 90)] }));
    s.apply(frame({ beds: [bed(2)] }));
    expect(s.vital('icu/2', 'HR')?.value).toBe(90);
    expect(s.vital('icu/1', 'HR')).toBeUndefined();
  });

  it('feeds waveform chunks as physical values to the right target', () => {
    const targets = new Map<string, RecordingTarget>();
    const s = new Store((b, ch) => {
      if (ch !== 'ECG_II') return undefined;
      const t = targets.get(b) ?? new RecordingTarget();
      targets.set(b, t);
      return t;
    });
    s.apply(first());
    s.apply(frame({ waves: [chunk('icu/2', 'ECG_II', 7, [500, 600]), chunk('icu/2', 'CO2', 1, [1])] }));
    expect(targets.get('icu/1')).toBeUndefined();
    const t = targets.get('icu/2')!;
    expect(t.pushes).toHaveLength(1);
    expect(t.pushes[0].rate).toBe(500);
    expect(t.pushes[0].gap).toBe(false);
    expect(t.pushes[0].values[0]).toBeCloseTo(0); // -5 + 0.01 × 500
    expect(t.pushes[0].values[1]).toBeCloseTo(1);
  });

  it('flags a gap when a chunk sequence number is skipped', () => {
    const t = new RecordingTarget();
    const s = new Store(() => t);
    s.apply(first());
    s.apply(frame({ waves: [chunk('icu/1', 'ECG_II', 1, [0]), chunk('icu/1', 'ECG_II', 2, [0])] }));
    s.apply(frame({ waves: [chunk('icu/1', 'ECG_II', 5, [0])] }));
    // Sequence numbers are per channel: another channel does not interfere.
    s.apply(frame({ waves: [chunk('icu/1', 'PLETH', 1, [0]), chunk('icu/1', 'ECG_II', 6, [0])] }));
    expect(t.pushes.map((p) => p.gap)).toEqual([false, false, true, false, false]);
  });

  it('turns non-numeric samples into gaps, never into values', () => {
    const t = new RecordingTarget();
    const s = new Store(() => t);
    s.apply(first());
    const c = chunk('icu/1', 'PLETH', 1, [100]);
    (c.data as unknown[]).push(null);
    s.apply(frame({ waves: [c] }));
    expect(t.pushes[0].values[1]).toBeNaN();
  });

  it('reports COMM LOST only when every known device of a bed is offline', () => {
    const s = new Store();
    s.apply(first());
    expect(s.commLost('icu/1')).toBe(false); // nothing known yet
    // Conditions of an offline device are stale and not shown.
    s.apply(
      frame({ devices: [device('icu/1', 'mon', false, ['BATTERY_LOW']), device('icu/1', 'pump', true, ['LEADS_OFF'])] }),
    );
    expect(s.commLost('icu/1')).toBe(false);
    expect(s.conditions('icu/1')).toEqual(['LEADS_OFF']);
    const c = s.apply(frame({ devices: [device('icu/1', 'mon', false), device('icu/1', 'pump', false)] }));
    expect(c.devices).toBe(true);
    expect(s.commLost('icu/1')).toBe(true);
    expect(s.conditions('icu/1')).toEqual([]);
  });

  it('treats devices as the full list: a device left out is gone', () => {
    const s = new Store();
    s.apply(first());
    s.apply(frame({ devices: [device('icu/1', 'mon', false), device('icu/2', 'mon', true)] }));
    expect(s.commLost('icu/1')).toBe(true);
    s.apply(frame({ devices: [device('icu/2', 'mon', true)] }));
    expect(s.commLost('icu/1')).toBe(false); // nothing known about bed 1 any more
    const c = s.apply(frame());
    expect(c.devices).toBe(false);
    expect(s.commLost('icu/2')).toBe(false);
  });

  it('notifies subscribers with what changed', () => {
    const s = new Store();
    const seen: boolean[] = [];
    s.subscribe((c) => seen.push(c.beds));
    s.apply(first());
    s.apply(frame());
    expect(seen).toEqual([true, false]);
  });
});

describe('NEWS2 and audio pauses', () => {
  it('keeps NEWS2 per bed and counts pauses down on the station clock', () => {
    const s = new Store();
    const t = Date.now();
    s.apply(frame({ ...first(), t }));
    const c = s.apply(
      frame({
        t,
        news2: [{ bed: 'icu/1', total: 6, band: 'medium' }],
        pauses: [
          { bed: '*', until: t + 60_000, by: 'carl' },
          { bed: 'icu/2', until: t + 90_000, by: 'nina' },
        ],
      }),
    );
    expect(c.news2 && c.pauses).toBe(true);
    expect(s.news2('icu/1')).toEqual({ bed: 'icu/1', total: 6, band: 'medium' });
    expect(s.news2('icu/2')).toBeUndefined();
    // Bed 2: its own pause ends later than the station's and wins.
    expect(s.pauseFor('icu/2', Date.now())?.pause.by).toBe('nina');
    expect(s.pauseFor('icu/1', Date.now())?.pause.by).toBe('carl');
    const r = s.pauseFor('icu/1', Date.now())!.remainingMs;
    expect(r).toBeGreaterThan(55_000);
    expect(r).toBeLessThanOrEqual(60_000);
    expect(s.stationPause(Date.now() + 61_000)).toBeNull();
    expect(s.pauseFor('icu/1', Date.now() + 61_000)).toBeNull();
    // The full list replaces the old one.
    s.apply(frame({ t, pauses: [] }));
    expect(s.pauseFor('icu/2', Date.now())).toBeNull();
  });
});

describe('remote patients', () => {
  it('keeps remote beds off the ward tiles, their alarms on the bar', () => {
    const s = new Store(() => undefined);
    const home: BedInfo = { key: 'home/h-01', ward: 'home', bed: 'h-01', label: 'Bed h-01', remote: true };
    s.apply(frame({ beds: [bed(1), home], alarms: [alarmInfo({ id: 'home/h-01/SPO2_LOW', bed: 'home/h-01' })] }));
    expect(s.beds.map((b) => b.key)).toEqual(['icu/1']);
    expect(s.allAlarms.map((a) => a.bed)).toEqual(['home/h-01']);
    expect(s.alarmsFor('home/h-01')).toHaveLength(1);
  });
});
