import { describe, expect, it } from 'vitest';
import type { AlarmInfo } from '../src/frames';
import {
  alarmFlash,
  alarmLine,
  alarmStateText,
  alarmVisual,
  canAcknowledge,
  formatCountdown,
  news2Badge,
  offPagePriority,
  pageOf,
  parseLayout,
  pausedBy,
  sortForBar,
} from '../src/alarmstate';
import { alarmInfo } from './support';

const alarm = (over: Partial<AlarmInfo> = {}): AlarmInfo =>
  alarmInfo({ id: 'sim/03/SPO2_LOW', bed: 'sim/03', since: 1000, value: 84, limit: 90, ...over });

describe('alarm state presentation', () => {
  it('names each IEC 60601-1-8 inactivation state', () => {
    expect(alarmVisual(alarm(), null)).toBe('active');
    expect(alarmVisual(alarm({ state: 'acknowledged', audible: false }), null)).toBe('acknowledged');
    expect(alarmVisual(alarm({ state: 'latched' }), 60_000)).toBe('latched');
    expect(alarmVisual(alarm({ state: 'audio-paused', audible: false }), 90_000)).toBe('audio-paused');
    // A pause covering the bed that silences the alarm shows even if the state lags.
    expect(alarmVisual(alarm({ audible: false }), 30_000)).toBe('audio-paused');
    // A pause that does not silence it (e.g. comm lost breaks through) is not shown as one.
    expect(alarmVisual(alarm({ audible: true }), 30_000)).toBe('active');
  });

  it('flashes high at 2 Hz and medium at 0.5 Hz, low and handled alarms steady', () => {
    expect(alarmFlash('high', 'active')).toBe('flash-2hz');
    expect(alarmFlash('medium', 'active')).toBe('flash-05hz');
    expect(alarmFlash('low', 'active')).toBe('steady');
    expect(alarmFlash('high', 'audio-paused')).toBe('flash-2hz');
    expect(alarmFlash('high', 'acknowledged')).toBe('steady');
    expect(alarmFlash('medium', 'latched')).toBe('steady');
  });

  it('says the state in words, so colour is never the only cue', () => {
    expect(alarmLine(alarm(), 'active', null)).toBe('*** SpO2 LOW 84 (limit 90)');
    expect(alarmStateText(alarm({ ack_by: 'carl' }), 'acknowledged', null)).toBe('ACK carl');
    // Another station's acknowledgement and pause name that station and its user.
    expect(alarmStateText(alarm({ ack_by: 'alice', ack_station: 'ST-2' }), 'acknowledged', null)).toBe(
      'ACK alice at station ST-2',
    );
    const remote = { bed: 'sim/03', until: 0, by: 'alice', station: 'ST-2' };
    expect(alarmLine(alarm({ priority: 'medium' }), 'audio-paused', 119_001, remote)).toBe(
      '** SpO2 LOW 84 (limit 90) · AUDIO PAUSED 2:00 paused by alice at station ST-2',
    );
    expect(pausedBy({ bed: '*', until: 0, by: 'carl' })).toBe('paused by carl');
    expect(alarmLine(alarm({ priority: 'medium' }), 'audio-paused', 119_001)).toBe(
      '** SpO2 LOW 84 (limit 90) · AUDIO PAUSED 2:00',
    );
    expect(alarmStateText(alarm(), 'latched', null)).toBe('LATCHED');
    expect(alarmStateText(alarm({ escalation: 1 }), 'active', null)).toBe('ESCALATED');
  });

  it('counts down in m:ss, rounding up', () => {
    expect(formatCountdown(120_000)).toBe('2:00');
    expect(formatCountdown(61_001)).toBe('1:02');
    expect(formatCountdown(999)).toBe('0:01');
    expect(formatCountdown(-5)).toBe('0:00');
  });

  it('orders the bar by priority, open before acknowledged, newest first', () => {
    const list = [
      alarm({ id: 'a', priority: 'low', since: 9 }),
      alarm({ id: 'b', priority: 'high', since: 1, state: 'acknowledged' }),
      alarm({ id: 'c', priority: 'high', since: 2 }),
      alarm({ id: 'd', priority: 'medium', since: 5 }),
      alarm({ id: 'e', priority: 'high', since: 3 }),
    ];
    expect(sortForBar(list).map((a) => a.id)).toEqual(['e', 'c', 'b', 'd', 'a']);
    expect(canAcknowledge(list[1])).toBe(false);
    expect(canAcknowledge(list[2])).toBe(true);
  });

  it('shows NEWS2 by its response band', () => {
    expect(news2Badge(undefined)).toEqual({ text: 'NEWS2 –', cls: 'news2 news2-none' });
    expect(news2Badge({ total: 7, band: 'high' })).toEqual({ text: 'NEWS2 7', cls: 'news2 news2-high' });
    expect(news2Badge({ total: 3, band: 'low-medium' }).cls).toBe('news2 news2-low-medium');
  });
});

describe('beds per screen', () => {
  it('fits every bed automatically up to 32, then pages', () => {
    expect(pageOf(8, 'auto', 0)).toMatchObject({ slots: 8, start: 0, end: 8, pages: 1 });
    expect(pageOf(5, 'auto', 0)).toMatchObject({ slots: 5, pages: 1 });
    expect(pageOf(40, 'auto', 1)).toMatchObject({ slots: 32, start: 32, end: 40, page: 1, pages: 2 });
  });

  it('keeps a fixed layout’s cell count on the last page and clamps the page', () => {
    expect(pageOf(10, 4, 2)).toEqual({ slots: 4, start: 8, end: 10, page: 2, pages: 3 });
    expect(pageOf(10, 4, 9)).toMatchObject({ page: 2 });
    expect(pageOf(10, 4, -1)).toMatchObject({ page: 0, start: 0, end: 4 });
    expect(pageOf(0, 16, 0)).toMatchObject({ pages: 1, start: 0, end: 0 });
  });

  it('parses stored choices, anything else is auto', () => {
    expect(parseLayout('16')).toBe(16);
    expect(parseLayout('7')).toBe('auto');
    expect(parseLayout(null)).toBe('auto');
  });

  it('flags the most urgent alarm on beds not on screen', () => {
    const keys = ['a', 'b', 'c', 'd'];
    const pr = { a: 'low', b: null, c: 'medium', d: 'high' } as const;
    expect(offPagePriority(keys, 0, 2, (k) => pr[k as keyof typeof pr])).toBe('high');
    expect(offPagePriority(keys, 2, 4, (k) => pr[k as keyof typeof pr])).toBe('low');
    expect(offPagePriority(keys, 0, 4, (k) => pr[k as keyof typeof pr])).toBe(null);
  });
});

describe('alarm bar grouping', () => {
  it('groups per bed, most urgent bed first, and counts what does not fit', async () => {
    const { groupForBar, fitGroups } = await import('../src/alarmstate');
    const list = [
      alarm({ id: 'b/HR_HIGH', bed: 'sim/01', code: 'HR_HIGH', priority: 'medium', since: 5 }),
      alarm({ id: 'c/SPO2_LOW', bed: 'sim/03', priority: 'high', since: 1 }),
      alarm({ id: 'c/HR_HIGH', bed: 'sim/03', code: 'HR_HIGH', priority: 'medium', since: 2 }),
      alarm({ id: 'a/TEMP', bed: 'sim/02', code: 'TEMP_HIGH', priority: 'low', since: 9 }),
    ];
    const g = groupForBar(list);
    expect(g.map((x) => [x.bed, x.alarms.length])).toEqual([
      ['sim/03', 2],
      ['sim/01', 1],
      ['sim/02', 1],
    ]);
    expect(g[0].alarms[0].priority).toBe('high');
    expect(fitGroups(3, 8)).toEqual({ shown: 3, more: 0 });
    // Seven beds, room for six: five shown and "+2 more" (one slot for the note itself).
    expect(fitGroups(7, 6)).toEqual({ shown: 5, more: 2 });
    expect(fitGroups(2, 1)).toEqual({ shown: 1, more: 1 });
  });

  it('holds its entries in place while the pointer is on it', async () => {
    const { groupForBar, layoutBar } = await import('../src/alarmstate');
    const a3 = alarm({ id: 'sim/03/SPO2_LOW', bed: 'sim/03', priority: 'high', since: 1 });
    const a1 = alarm({ id: 'sim/01/HR_HIGH', bed: 'sim/01', code: 'HR_HIGH', priority: 'medium', since: 5 });
    const a2 = alarm({ id: 'sim/02/TEMP_HIGH', bed: 'sim/02', code: 'TEMP_HIGH', priority: 'low', since: 9 });
    const beds = (l: { entries: { bed: string; ended: boolean; alarms: { id: string }[] }[]; more: number }) =>
      [l.entries.map((e) => `${e.bed}${e.ended ? ' ended' : ''}:${e.alarms[0]?.id ?? ''}`), l.more];
    const before = layoutBar(groupForBar([a1, a3, a2]), 3, null);
    expect(beds(before)).toEqual([['sim/03:sim/03/SPO2_LOW', 'sim/01:sim/01/HR_HIGH', 'sim/02:sim/02/TEMP_HIGH'], 0]);
    const hold = before.entries.map((e) => ({ bed: e.bed, lead: e.alarms[0].id }));
    // Meanwhile: bed 01 gets a high alarm (unheld it would lead), bed 03's alarm ends, bed 04 and
    // bed 05 begin alarming. Held: same places, same leading alarms, the ended one kept.
    const h1 = alarm({ id: 'sim/01/SPO2_LOW', bed: 'sim/01', priority: 'high', since: 20 });
    const a4 = alarm({ id: 'sim/04/HR_LOW', bed: 'sim/04', code: 'HR_LOW', priority: 'high', since: 21 });
    const a5 = alarm({ id: 'sim/05/HR_LOW', bed: 'sim/05', code: 'HR_LOW', priority: 'high', since: 22 });
    const now = groupForBar([a1, h1, a2, a4, a5]);
    expect(beds(layoutBar(now, 3, null))).toEqual([['sim/05:sim/05/HR_LOW', 'sim/04:sim/04/HR_LOW'], 2]);
    expect(beds(layoutBar(now, 3, hold))).toEqual([
      ['sim/03 ended:', 'sim/01:sim/01/HR_HIGH', 'sim/02:sim/02/TEMP_HIGH'],
      2,
    ]);
    // With room, new beds come after the held ones.
    expect(beds(layoutBar(now, 8, hold))).toEqual([
      ['sim/03 ended:', 'sim/01:sim/01/HR_HIGH', 'sim/02:sim/02/TEMP_HIGH', 'sim/05:sim/05/HR_LOW', 'sim/04:sim/04/HR_LOW'],
      0,
    ]);
    // The held bed's alarm still there: it stays first in its entry, the others follow.
    expect(layoutBar(now, 8, hold).entries[1].alarms.map((a) => a.id)).toEqual(['sim/01/HR_HIGH', 'sim/01/SPO2_LOW']);
  });

  it('says when the station cannot sound, and when audio is paused', async () => {
    const { soundIndicator, acknowledgeLabel } = await import('../src/alarmstate');
    const s = { state: 'ready' as const, volume: 70, min_volume: 30, bursts: 3 };
    expect(soundIndicator(s, null)).toMatchObject({ text: '♪ Sound 70 %', level: 'on' });
    expect(soundIndicator({ ...s, state: 'failed', error: 'no device' }, null)).toMatchObject({
      text: '✕ NO ALARM SOUND',
      level: 'failed',
    });
    const pause = { pause: { bed: '*', until: 0, by: 'nina' }, remainingMs: 61_000 };
    expect(soundIndicator(s, pause).text).toBe('♪ Paused 1:01');
    expect(acknowledgeLabel(alarm({ state: 'unreviewed' }))).toBe('Reviewed');
    expect(acknowledgeLabel(alarm({}))).toBe('Acknowledge');
  });
});
