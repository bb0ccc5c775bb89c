// The alarm colours as the station's stylesheet has them, checked for people with the two
// common red–green colour-vision deficiencies (Machado, Oliveira & Fernandes 2009, severity 1):
// the three priorities stay apart from each other, low priority stays apart from the SpO2
// cyan, NEWS2 badges are grey (never an alarm colour), and priority is also a shape.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PRIORITY_ICON } from '../src/alarmstate';

const css = new TextDecoder().decode(readFileSync(new URL('../src/style.css', import.meta.url)));

/** The last value the stylesheet gives a custom property (later rules win). */
function cssVar(name: string): string {
  const all = [...css.matchAll(new RegExp(`--${name}:\\s*(#[0-9a-fA-F]{6})`, 'g'))];
  expect(all.length, name).toBeGreaterThan(0);
  return all[all.length - 1][1];
}

/** Colours used by a class's last rule block(s). */
function ruleColours(selector: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`${selector.replace(/[.]/g, '\\.')}\\s*[,{][^}]*}`, 'g');
  for (const m of css.matchAll(re)) for (const c of m[0].matchAll(/#[0-9a-fA-F]{6}\b/g)) out.push(c[0]);
  return out;
}

type Rgb = [number, number, number];
const lin = (c: number): number => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const hex = (h: string): Rgb => [1, 3, 5].map((i) => lin(parseInt(h.slice(i, i + 2), 16) / 255)) as Rgb;

const DEUTERANOPIA = [
  [0.367322, 0.860646, -0.227968],
  [0.280085, 0.672501, 0.047413],
  [-0.01182, 0.04294, 0.968881],
];
const PROTANOPIA = [
  [0.152286, 1.052583, -0.204868],
  [0.114503, 0.786281, 0.099216],
  [-0.003882, -0.048116, 1.051998],
];
const NORMAL = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];

function simulate(c: Rgb, m: number[][]): Rgb {
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  return m.map((row) => clamp(row[0] * c[0] + row[1] * c[1] + row[2] * c[2])) as Rgb;
}

/** CIE L*a*b* (D65) of linear sRGB. */
function lab([r, g, b]: Rgb): Rgb {
  const x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
  const y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  return [116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

const deltaE = (a: Rgb, b: Rgb): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
const VISION = { normal: NORMAL, deuteranopia: DEUTERANOPIA, protanopia: PROTANOPIA };

describe('alarm colours', () => {
  const high = hex(cssVar('alarm-high'));
  const medium = hex(cssVar('alarm-medium'));
  const low = hex(cssVar('alarm-low'));
  const spo2 = hex(cssVar('spo2'));

  for (const [name, m] of Object.entries(VISION)) {
    it(`keeps the priorities apart (${name})`, () => {
      const [h, me, l] = [high, medium, low].map((c) => lab(simulate(c, m)));
      expect(deltaE(h, me)).toBeGreaterThan(20);
      expect(deltaE(h, l)).toBeGreaterThan(20);
      expect(deltaE(me, l)).toBeGreaterThan(20);
    });

    it(`keeps low priority apart from the SpO2 cyan (${name})`, () => {
      expect(deltaE(lab(simulate(low, m)), lab(simulate(spo2, m)))).toBeGreaterThan(15);
    });
  }

  it('gives NEWS2 badges a neutral grey scheme of their own', () => {
    const alarm = ['alarm-high', 'alarm-medium', 'alarm-low'].map((n) => cssVar(n).toLowerCase());
    for (const band of ['news2-low-medium', 'news2-medium', 'news2-high']) {
      const colours = ruleColours(`.${band}`);
      expect(colours.length, band).toBeGreaterThan(0);
      // The last block (the neutral scheme) holds only greys.
      const last = colours.slice(-2);
      for (const c of last) {
        const [, a, b] = lab(hex(c));
        expect(Math.hypot(a, b), `${band} ${c}`).toBeLessThan(5);
        expect(alarm).not.toContain(c.toLowerCase());
      }
    }
  });

  it('says the priority by shape too', () => {
    const shapes = new Set(Object.values(PRIORITY_ICON));
    expect(shapes.size).toBe(3);
  });
});
