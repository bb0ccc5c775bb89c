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
