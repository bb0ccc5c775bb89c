import { describe, expect, it } from 'vitest';
import type { EngineState } from '../src/frames';
import {
  formatAlarmCount,
  formatAlarmSummary,
  formatAlarmText,
  formatBrokerWarnings,
  formatClock,
  formatCondition,
  formatConnState,
  formatError,
  formatNibp,
  formatTime,
  formatUnit,
  formatValue,
  LATE_NOTE_MS,
  lateNote,
  NO_READING,
  priorityMarker,
} from '../src/format';
import { alarmInfo } from './support';

describe('formatValue', () => {
  it('shows the no-reading glyph for a missing value, never 0', () => {
    expect(NO_READING).toBe('-?-');
    expect(formatValue(null)).toBe('-?-');
    expect(formatValue(undefined)).toBe('-?-');
    expect(formatValue(Number.NaN)).toBe('-?-');
  });

  it('formats real readings, including a real 0', () => {
    expect(formatValue(72)).toBe('72');
    expect(formatValue(71.6)).toBe('72');
    expect(formatValue(36.84, 1)).toBe('36.8');
    expect(formatValue(0)).toBe('0');
  });
});

describe('formatNibp', () => {
  it('is sys/dia (mean)', () => {
    expect(formatNibp(120, 80, 93)).toBe('120/80 (93)');
  });

  it('marks missing parts and collapses when there is no cuff at all', () => {
    expect(formatNibp(120, null, 93)).toBe('120/-?- (93)');
    expect(formatNibp(null, null, null)).toBe('-?-');
    expect(formatNibp(undefined, undefined, undefined)).toBe('-?-');
  });
});

describe('times', () => {
  const t = new Date(2024, 0, 2, 9, 5, 3).getTime();
  it('formats local clock and HH:MM', () => {
    expect(formatClock(t)).toBe('09:05:03');
    expect(formatTime(t)).toBe('09:05');
    expect(formatTime(null)).toBe('-?-');
  });
});

describe('alarm text', () => {
  it('carries the priority as a text marker', () => {
    expect(priorityMarker('high')).toBe('***');
    expect(priorityMarker('medium')).toBe('**');
    expect(priorityMarker('low')).toBe('*');
  });

  it('reads "marker label value unit (limit …)", like the engine writes it', () => {
    expect(formatAlarmText(alarmInfo({ value: 84, limit: 90, unit: '%' }))).toBe('*** SpO2 LOW 84 % (limit 90)');
    expect(
      formatAlarmText(alarmInfo({ code: 'HR_LOW', label: 'HR LOW', priority: 'medium', value: 67, limit: 70, unit: '/min' })),
    ).toBe('** HR LOW 67 /min (limit 70)');
    expect(formatAlarmText(alarmInfo({ label: 'Temp HIGH', priority: 'low', value: 38.9, limit: 38.5, unit: '°C' }))).toBe(
      '* Temp HIGH 38.9 °C (limit 38.5)',
    );
  });

  it('omits what is missing', () => {
    expect(formatAlarmText(alarmInfo({}))).toBe('*** SpO2 LOW');
    expect(formatAlarmText(alarmInfo({ value: 84 }))).toBe('*** SpO2 LOW 84');
    expect(formatAlarmText(alarmInfo({ limit: 90 }))).toBe('*** SpO2 LOW');
  });

  it('summarises a bed: top alarm plus how many more, in words', () => {
    expect(formatAlarmSummary([])).toBe('');
    const a = alarmInfo({ value: 84, limit: 90, unit: '%' });
    const b = alarmInfo({ label: 'HR HIGH', priority: 'medium' });
    expect(formatAlarmSummary([a])).toBe('*** SpO2 LOW 84 % (limit 90)');
    expect(formatAlarmSummary([a, b])).toBe('*** SpO2 LOW 84 % (limit 90) · +1 more alarm');
    expect(formatAlarmSummary([a, b, b])).toBe('*** SpO2 LOW 84 % (limit 90) · +2 more alarms');
  });

  it('counts alarms in words', () => {
    expect(formatAlarmCount(0)).toBe('No alarms');
    expect(formatAlarmCount(1)).toBe('1 alarm');
    expect(formatAlarmCount(4)).toBe('4 alarms');
  });
});

describe('units and conditions', () => {
  it('maps UCUM codes for display', () => {
    expect(formatUnit('mm[Hg]')).toBe('mmHg');
    expect(formatUnit('Cel')).toBe('°C');
    expect(formatUnit('%')).toBe('%');
    expect(formatUnit('/min')).toBe('/min');
  });

  it('spells condition codes out', () => {
    expect(formatCondition('LEADS_OFF')).toBe('LEADS OFF');
  });
});

describe('formatBrokerWarnings', () => {
  const engine: EngineState = { ward: 'icu', broker: 'mqtt://10.0.0.5:1883', connected: true, mode: 'external' };

  it('shows nothing for a trusted broker', () => {
    expect(formatBrokerWarnings(null)).toBeNull();
    expect(formatBrokerWarnings(engine)).toBeNull();
    expect(formatBrokerWarnings({ ...engine, warnings: [] })).toBeNull();
  });

  it('names every standing warning', () => {
    expect(formatBrokerWarnings({ ...engine, warnings: ['no TLS (insecure = true)', 'anonymous'] })).toBe(
      'BROKER NOT TRUSTWORTHY — no TLS (insecure = true) · anonymous',
    );
  });
});

describe('formatConnState', () => {
  const engine: EngineState = { ward: 'icu', broker: '127.0.0.1:1883', connected: true, mode: 'embedded' };

  it('shows a failed subscribe plainly', () => {
    expect(formatConnState(engine, 'command subscribe_ward not found', 10)).toEqual({
      text: 'Engine error: command subscribe_ward not found',
      level: 'error',
    });
  });

  it('says it is connecting before the first frame', () => {
    expect(formatConnState(null, null, null).level).toBe('warn');
  });

  it('reports the broker link', () => {
    expect(formatConnState(engine, null, 50)).toEqual({
      text: 'Connected — embedded broker 127.0.0.1:1883',
      level: 'ok',
    });
    expect(formatConnState({ ...engine, connected: false }, null, 50)).toEqual({
      text: 'BROKER DISCONNECTED — embedded broker 127.0.0.1:1883',
      level: 'error',
    });
  });

  it('gives the broker-link error when disconnected', () => {
    const down = { ...engine, connected: false, error: 'connection refused' };
    expect(formatConnState(down, null, 50).text).toBe(
      'BROKER DISCONNECTED — embedded broker 127.0.0.1:1883: connection refused',
    );
    // An error left over from before a reconnect is not shown as current.
    expect(formatConnState({ ...down, connected: true }, null, 50).level).toBe('ok');
  });

  it('flags a silent engine', () => {
    expect(formatConnState(engine, null, 7500)).toEqual({ text: 'NO DATA from engine for 7 s', level: 'error' });
  });
});

describe('formatError', () => {
  it('takes the text of errors and rejected commands', () => {
    expect(formatError(new Error('boom'))).toBe('boom');
    expect(formatError('not allowed')).toBe('not allowed');
    expect(formatError({ code: 3 })).toBe('{"code":3}');
  });
});

describe('lateNote', () => {
  it('says a late reading as history, with when it was taken and received, for a while', () => {
    const taken = new Date(2026, 11, 6, 14, 2, 11).getTime();
    const received = new Date(2026, 11, 6, 14, 3, 40).getTime();
    const late = { reading: { value: 84.6, unit: '%', t: taken }, received };
    expect(lateNote(late, 0, received)).toBe('late: 85 % taken 14:02:11 (received 14:03:40)');
    expect(lateNote({ ...late, reading: { value: 37.84, unit: 'Cel', t: taken } }, 1, received)).toBe(
      'late: 37.8 °C taken 14:02:11 (received 14:03:40)',
    );
    expect(lateNote(late, 0, received + LATE_NOTE_MS)).not.toBe('');
    expect(lateNote(late, 0, received + LATE_NOTE_MS + 1)).toBe('');
    expect(lateNote(undefined, 0, received)).toBe('');
  });
});
