// Data contract between the Rust engine and the UI.
//
// The backend sends one binary `Frame` per message on the Tauri Channel handed
// to the `subscribe_ward` command, roughly 20 messages per second: a JSON part
// and the waveform samples as little-endian i32 (layout in
// src-tauri/src/frames.rs; `decodeFrame` reads it). The JSON part's types are
// generated from the Rust ones (./bindings).

import type {
  AlarmOut,
  BedInfo,
  DeviceOut,
  EngineState,
  Frame as FrameJson,
  News2Band,
  News2Out,
  PauseOut,
  Priority,
  SoundOut,
  VitalOut,
  WaveOut,
} from './bindings';

// The JSON part's types, generated from the Rust ones (src-tauri/src/frames.rs, sound.rs), under
// the names the UI uses.
export type {
  AlarmOut as AlarmInfo,
  BedInfo,
  DeviceOut as DeviceStatus,
  EngineState,
  News2Band,
  News2Out as News2Info,
  PauseOut as PauseInfo,
  Priority,
  SoundOut as SoundInfo,
  VitalOut as VitalUpdate,
};

/** A waveform chunk as `decodeFrame` hands it on: its description and its samples. */
export type WaveChunk = WaveOut & {
  /** Raw sample values (physical value = origin + factor * data[i]); a view into the frame's binary part. */
  data: ArrayLike<number>;
};

/** One decoded frame: the JSON part, each chunk with its samples. */
export type Frame = Omit<FrameJson, 'waves'> & {
  /** Waveform chunks received since the previous frame (may be empty). */
  waves: WaveChunk[];
};

/** Magic and version at the start of every binary frame. */
export const FRAME_MAGIC = 'VGF1';

/** Why a message from the engine could not be read. */
export class FrameError extends Error {}

/**
 * Reads one binary frame: "VGF1", u32 LE JSON length, the JSON, padding to a
 * multiple of 4, then every chunk's samples as i32 LE in the order of `waves`.
 * The sample arrays are views into `buf` (no copy).
 */
export function decodeFrame(buf: ArrayBuffer): Frame {
  if (buf.byteLength < 8) throw new FrameError(`frame too short (${buf.byteLength} bytes)`);
  const head = new Uint8Array(buf, 0, 4);
  const magic = String.fromCharCode(head[0], head[1], head[2], head[3]);
  if (magic !== FRAME_MAGIC) throw new FrameError(`not a Vigil frame (magic ${JSON.stringify(magic)})`);
  const jsonLen = new DataView(buf).getUint32(4, true);
  if (8 + jsonLen > buf.byteLength) throw new FrameError('frame truncated in its JSON part');
  const frame = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, jsonLen))) as Frame;
  let offset = Math.ceil((8 + jsonLen) / 4) * 4;
  // Little-endian on every platform Vigil runs on; an Int32Array view is then exact.
  for (const w of frame.waves ?? []) {
    const n = w.n ?? 0;
    if (offset + 4 * n > buf.byteLength) throw new FrameError('frame truncated in its samples');
    w.data = new Int32Array(buf, offset, n);
    offset += 4 * n;
  }
  if (offset !== buf.byteLength) throw new FrameError('frame has trailing bytes');
  return frame;
}
