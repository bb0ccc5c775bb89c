// Builders shared by the unit tests.

import type { AlarmInfo } from '../src/frames';

/** An active, audible high-priority SpO2 LOW alarm on icu/1 with no value; `over` changes any field. */
export const alarmInfo = (over: Partial<AlarmInfo> = {}): AlarmInfo => ({
  id: 'icu/1/SPO2_LOW',
  bed: 'icu/1',
  code: 'SPO2_LOW',
  label: 'SpO2 LOW',
  priority: 'high',
  since: 0,
  value: null,
  limit: null,
  state: 'active',
  audible: true,
  escalation: 0,
  latched: false,
  technical: false,
  ...over,
});
