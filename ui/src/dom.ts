// Tiny DOM helpers for the forms and tables of the side panel.

type Attrs = Record<string, string | boolean | undefined>;
type Child = Node | string | null | undefined;

/** `h('button', { id: 'x', type: 'submit' }, 'Save')`. `false`/undefined attributes are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
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

/** A table: a header row of `headings` above `body`. */
export function table(attrs: Attrs, headings: string[], body: HTMLTableSectionElement): HTMLTableElement {
  return h('table', attrs, h('thead', {}, h('tr', {}, ...headings.map((t) => h('th', {}, t)))), body);
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

/**
 * A form of the side panel: its `content` (heading, hints, fields), then its error line (`err`,
 * read out when it changes) and its row of `actions` (buttons).
 */
export function panelForm(
  id: string,
  content: Child[],
  actions: Child[],
  layout: 'column' | 'inline' = 'column',
): { form: HTMLFormElement; err: HTMLParagraphElement } {
  const err = h('p', { class: 'panel-error', role: 'alert' });
  const form = h(
    'form',
    { id, class: layout === 'inline' ? 'panel-form inline' : 'panel-form' },
    ...content,
    err,
    h('div', { class: 'actions' }, ...actions),
  );
  return { form, err };
}

/**
 * Submitting `form` runs `work` as `busy` does; `check`, if given, runs first and a text it
 * returns is shown in `err` instead.
 */
export function onSubmit(
  form: HTMLFormElement,
  err: HTMLElement,
  work: () => Promise<void>,
  check?: () => string | null,
): void {
  form.onsubmit = (e) => {
    e.preventDefault();
    const wrong = check?.();
    if (wrong) {
      err.textContent = wrong;
      return;
    }
    void busy(form, err, work);
  };
}
