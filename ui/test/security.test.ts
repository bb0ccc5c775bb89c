import { describe, expect, it } from 'vitest';
import { countText, kindLabel, openSummary, sourceText } from '../src/security';

describe('security screen texts', () => {
  it('labels kinds and sources', () => {
    expect(kindLabel('unknown_device')).toBe('Unknown device');
    expect(sourceText({ bed: '4W/01', device: '', peer: '10.0.0.5:4000', user: '' })).toBe(
      'bed 4W/01 · peer 10.0.0.5:4000',
    );
    expect(sourceText({ bed: '', device: '', peer: '', user: '' })).toBe('station');
  });

  it('says how often and orders the open summary by severity', () => {
    expect(countText({ count: 1, first_ms: 0, last_ms: 0 })).toMatch(/^once, /);
    expect(countText({ count: 1000, first_ms: 0, last_ms: 60_000 })).toMatch(/^1000×, .* – /);
    expect(openSummary([['medium', 1], ['critical', 2], ['low', 0]])).toBe('2 critical, 1 medium open');
    expect(openSummary([])).toBe('no open events');
  });
});
