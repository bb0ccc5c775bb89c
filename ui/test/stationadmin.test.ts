import { describe, expect, it } from 'vitest';
import { codeLabel, deviceLiveText } from '../src/stationadmin';

describe('station administration texts', () => {
  it('says plainly when a device is offline or not registered', () => {
    expect(deviceLiveText({ live: 'online', registered: true, enabled: true })).toBe('online');
    expect(deviceLiveText({ live: 'offline', registered: true, enabled: true })).toBe('OFFLINE');
    expect(deviceLiveText({ live: 'unknown', registered: true, enabled: false })).toBe('not heard yet · disabled');
    expect(deviceLiveText({ live: 'online', registered: false, enabled: false })).toBe('online · NOT REGISTERED');
  });

  it('shows alarm codes as words', () => {
    expect(codeLabel('NIBP_SYS_HIGH')).toBe('NIBP SYS HIGH');
  });
});

describe('device mapping check', () => {
  it('shows the live values to confirm against the bedside monitor', async () => {
    const { liveCheckText } = await import('../src/stationadmin');
    expect(liveCheckText('mon-sim-03', { hr: 84.2, spo2: 97, rr: null })).toBe('HR 84 · SpO2 97 · RR -?- (live now from mon-sim-03)');
    expect(liveCheckText('mon-x', null)).toBe('No live values from mon-x: check it is connected.');
  });
});
