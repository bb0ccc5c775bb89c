// Tiny DOM helpers for the forms and tables of the side panel.

type Attrs = Record<string, string | boolean | undefined>;

/** `h('button', { id: 'x', type: 'submit' }, 'Save')`. `false`/undefined attributes are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') e.className = String(v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** A labelled input. */
export function field(label: string, input: HTMLElement): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

export function value(root: ParentNode, sel: string): string {
  const e = root.querySelector<HTMLInputElement | HTMLSelectElement>(sel);
  return e ? e.value : '';
}

/** Run `work` with the form's buttons disabled; show its error in `errorBox`. */
export async function busy(form: HTMLElement, errorBox: HTMLElement, work: () => Promise<void>): Promise<void> {
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => (b.disabled = true));
  errorBox.textContent = '';
  try {
    await work();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}
