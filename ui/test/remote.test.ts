import { describe, expect, it } from 'vitest';
import {
  alertsText,
  attentionLabel,
  doseText,
  findingsText,
  messageLabel,
  messageState,
  percent,
  readingSeries,
  reviewText,
  scheduleRows,
  slotText,
  uploadedLater,
  windowText,
  xOf,
  type SlotOut,
} from '../src/remote';

const slot = (over: Partial<SlotOut> = {}): SlotOut => ({
  item: 'bp',
  measure: 'NIBP_SYS',
  from_ms: Date.UTC(2026, 5, 1, 6),
  to_ms: Date.UTC(2026, 5, 1, 9),
  state: 'missed',
  level: 'urgent',
  taken_ms: null,
  ...over,
});

describe('remote worklist texts', () => {
  it('names what each row needs, most urgent first as the backend sorts', () => {
    expect(['urgent', 'missed', 'findings', 'adherence', 'none'].map(attentionLabel)).toEqual([
      'URGENT',
      'Missed',
      'To review',
      'Adherence',
      'OK',
    ]);
  });

  it('sums up alerts and findings, silence and late uploads included', () => {
    expect(alertsText({ urgent: 2, warning: 1, silent: true })).toBe('2 urgent, 1 missed · devices silent');
    expect(alertsText({ urgent: 0, warning: 0, silent: true })).toBe('devices silent');
    expect(alertsText({ urgent: 0, warning: 0, silent: false })).toBe('none');
    expect(findingsText({ findings: 3, stale_findings: 2, newest_finding: 'SpO2 LOW 86 % (limit 90)' })).toBe(
      '3 to review (2 received late): SpO2 LOW 86 % (limit 90)',
    );
    expect(findingsText({ findings: 0, stale_findings: 0, newest_finding: null })).toBe('none');
  });

  it('shows adherence as a percentage, nothing due as a dash', () => {
    expect(percent(0.834)).toBe('83 %');
    expect(percent(1)).toBe('100 %');
    expect(percent(null)).toBe('—');
    expect(percent(Number.NaN)).toBe('—');
  });

  it('says who reviewed, how and how many findings', () => {
    expect(reviewText(null)).toBe('never reviewed');
    const t = reviewText({ action: 'called_patient', note: '', at_ms: 0, by: 'nina', findings: 2 });
    expect(t).toMatch(/^Called patient — nina, .* \(2 findings\)$/);
    expect(reviewText({ action: 'escalated', note: '', at_ms: 0, by: 'carl', findings: 1 })).toMatch(/\(1 finding\)$/);
  });
});

describe('remote record drawing', () => {
  it('writes a window with its end time, or its end date when it ends another day', () => {
    const at = (d: number, h: number) => new Date(2026, 5, d, h).getTime();
    expect(windowText(at(1, 7), at(1, 10))).toBe('2026-06-01 07:00–10:00');
    expect(windowText(at(1, 22), at(2, 2))).toBe('2026-06-01 22:00–2026-06-02 02:00');
  });

  it('places instants on the time axis, clamped to it', () => {
    expect(xOf(50, 0, 100, 900)).toBe(450);
    expect(xOf(-10, 0, 100, 900)).toBe(0);
    expect(xOf(200, 0, 100, 900)).toBe(900);
    expect(xOf(5, 10, 10, 900)).toBe(0);
  });

  it('draws one row per plan item and says what each slot became', () => {
    const rows = scheduleRows([slot(), slot({ item: 'weight', measure: 'WEIGHT' }), slot({ state: 'on_time', level: null })]);
    expect(rows.map((r) => [r.item, r.slots.length])).toEqual([
      ['bp', 2],
      ['weight', 1],
    ]);
    expect(slotText(slot())).toMatch(/^bp .* missed \(urgent\)$/);
    expect(slotText(slot({ state: 'received_late', level: 'warning', taken_ms: Date.UTC(2026, 5, 1, 7) }))).toMatch(
      /received late, taken /,
    );
  });

  it('groups readings by vital in time order and marks late uploads', () => {
    const s = readingSeries([
      { code: 'WEIGHT', t_ms: 2_000_000, received_ms: 2_000_000, value: 81, unit: 'kg' },
      { code: 'WEIGHT', t_ms: 1_000_000, received_ms: 9_000_000, value: 80, unit: 'kg' },
      { code: 'SPO2', t_ms: 1_500_000, received_ms: 1_500_000, value: 96, unit: '%' },
    ]);
    expect([...s.keys()]).toEqual(['WEIGHT', 'SPO2']);
    expect(s.get('WEIGHT')?.points).toEqual([
      { t: 1_000_000, v: 80, late: true },
      { t: 2_000_000, v: 81, late: false },
    ]);
  });
});

describe('messages to the patient', () => {
  it('say how far each got', () => {
    expect(messageState({ sent_ms: null, delivered_ms: null })).toBe('not sent yet');
    expect(messageState({ sent_ms: 0, delivered_ms: null })).toMatch(/^sent .*, not confirmed by the patient's app$/);
    expect(messageState({ sent_ms: 0, delivered_ms: 60_000 })).toMatch(/^sent .*, delivered /);
    expect(messageLabel({ kind: 'reminder', reason: 'missed', item: 'weight', by: 'station' })).toBe('Reminder (missed) · weight');
    expect(messageLabel({ kind: 'message', reason: '', item: '', by: 'nina' })).toBe('Message from nina');
  });
});

describe('dose history', () => {
  it('says what the dispenser reported, with the time it was due when given', () => {
    expect(doseText({ event: 'taken', due_ms: null })).toBe('taken');
    expect(doseText({ event: 'late', due_ms: null })).toBe("taken after the dispenser's window");
    expect(doseText({ event: 'missed', due_ms: null })).toBe("not taken (the dispenser's window closed)");
    const due = Date.UTC(2026, 5, 1, 7);
    expect(doseText({ event: 'taken', due_ms: due })).toMatch(/^taken; due \d{4}-\d{2}-\d{2} \d{2}:\d{2}/);
  });

  it('tells a buffered upload from an event sent at once', () => {
    expect(uploadedLater(0, 60_000)).toBe(false);
    expect(uploadedLater(0, 60_001)).toBe(true);
  });
});
