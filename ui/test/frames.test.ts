import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeFrame, FrameError } from '../src/frames';

/** Written by the Rust side (src-tauri/src/frames.rs, binary_frame_matches_the_ui_fixture). */
function fixture(): ArrayBuffer {
  const b = readFileSync(new URL('./fixtures/frame-v1.bin', import.meta.url));
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return copy.buffer;
}

describe('decodeFrame', () => {
  it('reads the frame the engine encodes, samples and all', () => {
    const f = decodeFrame(fixture());
    expect(f.t).toBe(1_800_000_000_123);
    expect(f.waves.map((w) => [w.channel, w.n, Array.from(w.data)])).toEqual([
      ['ECG_II', 3, [1, -2, 300_000]],
      ['PLETH', 1, [-7]],
    ]);
    expect(f.waves[0].origin + f.waves[0].factor * f.waves[0].data[2]).toBeCloseTo(299.5);
    expect(f.vitals[0]).toMatchObject({ bed: 'sim/03', code: 'HR', value: 72 });
    expect(f.news2).toEqual([{ bed: 'sim/03', total: 5, band: 'medium' }]);
    expect(f.pauses).toEqual([{ bed: '*', until: 1_800_000_120_000, by: 'carl' }]);
  });

  it('refuses what is not a whole frame', () => {
    const good = fixture();
    expect(() => decodeFrame(good.slice(0, 6))).toThrow(FrameError);
    expect(() => decodeFrame(good.slice(0, good.byteLength - 4))).toThrow(/truncated/);
    const bad = good.slice(0);
    new Uint8Array(bad)[0] = 0x58;
    expect(() => decodeFrame(bad)).toThrow(/not a Vigil frame/);
    const long = new Uint8Array(good.byteLength + 4);
    long.set(new Uint8Array(good));
    expect(() => decodeFrame(long.buffer)).toThrow(/trailing/);
  });
});
