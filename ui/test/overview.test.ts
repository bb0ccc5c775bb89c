import { describe, expect, it } from 'vitest';
import type { AlarmInfo } from '../src/frames';
import { blockAlarmPriority, gridShape, isCompact } from '../src/overview';
import { alarmInfo } from './support';

describe('gridShape', () => {
  // The grid area of a 1280×800 window: minus the 44 px header and 6 px padding.
  const W = 1268;
  const H = 744;

  it('lays 8 beds out 4×2 on a 1280×800 window', () => {
    expect(gridShape(8, W, H)).toEqual({ cols: 4, rows: 2 });
  });

  it('adapts to the bed count', () => {
    expect(gridShape(1, W, H)).toEqual({ cols: 1, rows: 1 });
    expect(gridShape(4, W, H)).toEqual({ cols: 2, rows: 2 });
    expect(gridShape(6, W, H)).toEqual({ cols: 3, rows: 2 });
    expect(gridShape(12, W, H)).toEqual({ cols: 4, rows: 3 });
    expect(gridShape(0, W, H)).toEqual({ cols: 1, rows: 1 });
  });

  it('adapts to the window shape', () => {
    expect(gridShape(8, 800, 1280)).toEqual({ cols: 2, rows: 4 });
  });
});

describe('blockAlarmPriority', () => {
  const a = (code: string, priority: AlarmInfo['priority']): AlarmInfo => alarmInfo({ id: code, code, label: code, priority });

  it('highlights a numeric with the highest priority among its alarms', () => {
    const alarms = [a('HR_HIGH', 'low'), a('SPO2_LOW', 'high'), a('HR_LOW', 'medium')];
    expect(blockAlarmPriority(alarms, ['HR'])).toBe('medium');
    expect(blockAlarmPriority(alarms, ['SPO2'])).toBe('high');
    expect(blockAlarmPriority(alarms, ['RR'])).toBeNull();
  });

  it('leaves a value that is back inside its limits unmarked (latched or unreviewed alarm)', () => {
    const gone = { ...a('SPO2_LOW', 'high'), state: 'unreviewed' as const };
    const latched = { ...a('SPO2_LOW', 'high'), state: 'latched' as const };
    expect(blockAlarmPriority([gone], ['SPO2'])).toBeNull();
    expect(blockAlarmPriority([latched, a('SPO2_LOW', 'medium')], ['SPO2'])).toBe('medium');
  });

  it('matches whole vital codes only', () => {
    expect(blockAlarmPriority([a('NIBP_SYS_HIGH', 'medium')], ['NIBP_SYS', 'NIBP_DIA'])).toBe('medium');
    // An alarm on HRV must not highlight HR.
    expect(blockAlarmPriority([a('HRV_LOW', 'high')], ['HR'])).toBeNull();
  });
});

describe('isCompact', () => {
  it('uses the compact tile for 32 beds on a 1280×800 window, not for 8', () => {
    // 32 beds: 8 × 4 tiles in 1280 × 716.
    expect(isCompact(1280 / 8, 716 / 4)).toBe(true);
    // 8 beds: 4 × 2.
    expect(isCompact(1280 / 4, 716 / 2)).toBe(false);
  });
});
