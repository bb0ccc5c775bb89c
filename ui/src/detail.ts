// The bed detail screen: opens on `vigil:open-bed` in place of the ward grid (the header, the
// alarm count and the side panel stay). Tabs, one pane each (detail/): Live (every channel at
// full resolution, numerics with their limits, the limits editor), Trends (uPlot), Review (full
// disclosure with a time cursor), Alarms (history, with the seconds before each alarm) and
// Patient (admit, discharge, transfer). This file opens and closes the bed, switches the tabs,
// keeps the header and follows the session for the panes. Pure logic lives in detailmath.ts;
// rights are the backend's (auth_state lists the usable permissions, every command checks again).

import { can, type AuthState } from './auth';
import { fanOut } from './detailmath';
import { AlarmsPane } from './detail/alarms';
import { LivePane } from './detail/live';
import { markPriority, setText, type DetailContext, type Pane, type Tab } from './detail/pane';
import { PatientPane } from './detail/patient';
import { ReviewPane } from './detail/review';
import { TrendsPane } from './detail/trends';
import { h } from './dom';
import { formatAlarmText } from './format';
import { closePrintout } from './printout';
import { session, type SessionSnapshot } from './session';
import type { Changes, Store, WaveTarget } from './store';

export { fanOut };

const TABS: readonly { tab: Tab; label: string }[] = [
  { tab: 'live', label: 'Live' },
  { tab: 'trends', label: 'Trends' },
  { tab: 'review', label: 'Review' },
  { tab: 'alarms', label: 'Alarm history' },
  { tab: 'patient', label: 'Patient' },
];

export class DetailView {
  private store: Store | null = null;
  private bed: string | null = null;
  private tab: Tab = 'live';
  private auth: AuthState | null = null;
  /** Ends the session subscription (held while a bed is open). */
  private unsubscribe: (() => void) | null = null;

  readonly root: HTMLElement;
  private readonly title: HTMLElement;
  private readonly patientLine: HTMLElement;
  private readonly alarmLine: HTMLElement;
  private readonly tabButtons = new Map<Tab, HTMLButtonElement>();
  private readonly live: LivePane;
  private readonly patient: PatientPane;
  /** Every tab's pane, in the order of the tabs. */
  private readonly panes: ReadonlyMap<Tab, Pane>;

  constructor(parent: HTMLElement, before: Element | null) {
    this.title = h('h2', { id: 'detail-title' });
    this.patientLine = h('span', { id: 'detail-patient', class: 'detail-patient' });
    this.alarmLine = h('div', { id: 'detail-alarms', class: 'detail-alarms' });
    const close = h('button', { id: 'detail-close', type: 'button', class: 'secondary' }, '← Ward overview');
    close.onclick = () => this.close();
    const tabs = h('div', { class: 'tabs detail-tabs', role: 'tablist' });
    for (const t of TABS) {
      const b = h('button', { id: `dtab-${t.tab}`, type: 'button', class: 'tab', role: 'tab' }, t.label);
      b.onclick = () => this.show(t.tab);
      this.tabButtons.set(t.tab, b);
      tabs.append(b);
    }
    const head = h(
      'div',
      { class: 'detail-head' },
      close,
      this.title,
      this.patientLine,
      h('span', { class: 'spacer' }),
      tabs,
    );

    const ctx: DetailContext = {
      bed: () => this.bed,
      tab: () => this.tab,
      auth: () => this.auth,
      store: () => this.store,
      limits: () => this.live.limits,
      reloadLimits: () => this.live.loadLimits(),
      applyRights: () => this.applyRights(),
      render: () => this.render(),
      setPatientLine: (text) => setText(this.patientLine, text),
    };
    this.live = new LivePane(ctx);
    this.patient = new PatientPane(ctx);
    this.panes = new Map<Tab, Pane>([
      ['live', this.live],
      ['trends', new TrendsPane(ctx)],
      ['review', new ReviewPane(ctx)],
      ['alarms', new AlarmsPane(ctx)],
      ['patient', this.patient],
    ]);

    this.root = h('section', { id: 'bed-detail', class: 'bed-detail', hidden: true, 'aria-label': 'Bed detail' });
    this.root.append(head, this.alarmLine, ...[...this.panes.values()].map((p) => p.root));
    parent.insertBefore(this.root, before);

    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !this.bed) return;
      if (this.live.editing) this.live.editLimits(false);
      else this.close();
    });
  }

  bind(store: Store): void {
    this.store = store;
  }

  get openBed(): string | null {
    return this.bed;
  }

  /** The live renderer of a channel of the open bed (fed besides the overview tile's). */
  waveTarget(bed: string, channel: string): WaveTarget | undefined {
    if (bed !== this.bed) return undefined;
    return this.live.waveTarget(channel);
  }

  open(bed: string): void {
    if (this.bed === bed) return;
    if (this.bed) this.close();
    this.bed = bed;
    document.body.classList.add('detail-open');
    this.root.hidden = false;
    this.root.dataset.bed = bed;
    for (const p of this.panes.values()) p.open();
    this.render();
    this.show('live');
    this.unsubscribe = session.subscribe((s) => this.onSession(s));
  }

  close(): void {
    if (!this.bed) return;
    this.bed = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const p of this.panes.values()) p.close();
    // A printout of this bed never stays over the next one.
    closePrintout();
    this.root.hidden = true;
    delete this.root.dataset.bed;
    document.body.classList.remove('detail-open');
  }

  /** A frame's changes. */
  update(changes: Changes): void {
    if (!this.bed) return;
    if (changes.beds || changes.alarms || changes.devices || changes.vitals.has(this.bed)) this.render();
  }

  /** Animation frame: advances the live sweeps. */
  tick(now: number): void {
    if (!this.bed) return;
    this.live.tick(now);
  }

  // ---- tabs and session -------------------------------------------------------------------

  private show(tab: Tab): void {
    this.tab = tab;
    for (const [t, b] of this.tabButtons) b.classList.toggle('active', t === tab);
    for (const [t, p] of this.panes) p.root.hidden = t !== tab;
    this.root.dataset.tab = tab;
    const pane = this.panes.get(tab);
    if (pane && this.historyAllowed(pane)) pane.show();
  }

  /** History needs view_history: otherwise the pane says so (the backend would refuse). */
  private historyAllowed(pane: Pane): boolean {
    if (!pane.history) return true;
    const ok = can(this.auth, 'view_history');
    pane.root.classList.toggle('no-right', !ok);
    pane.root.dataset.message = ok ? '' : 'Log in as a nurse or charge nurse to see the history of this bed.';
    return ok;
  }

  private onSession({ state, error }: SessionSnapshot): void {
    if (error) {
      this.auth = null;
      this.applyRights();
      return;
    }
    const changed =
      JSON.stringify(state.permissions) !== JSON.stringify(this.auth?.permissions) || state.masked !== this.auth?.masked;
    this.auth = state;
    if (changed && this.bed) {
      this.applyRights();
      void this.patient.loadPatients();
      // Became allowed while looking at a history pane: load it now.
      const pane = this.panes.get(this.tab);
      if (pane && this.historyAllowed(pane)) this.show(this.tab);
    }
  }

  private applyRights(): void {
    for (const p of this.panes.values()) {
      this.historyAllowed(p);
      p.rights();
    }
  }

  // ---- header -----------------------------------------------------------------------------

  /** The bed's name and alarms, and the live numerics under them. */
  private render(): void {
    const store = this.store;
    const bed = this.bed;
    if (!store || !bed) return;
    const info = store.beds.find((b) => b.key === bed);
    setText(this.title, info?.label ?? bed);
    const alarms = store.alarmsFor(bed);
    const top = store.highestPriority(bed);
    markPriority(this.alarmLine, 'alarm-', top);
    this.alarmLine.replaceChildren(
      ...(alarms.length
        ? alarms.map((a) => h('span', { class: `detail-alarm alarm-${a.priority}`, 'data-code': a.code }, formatAlarmText(a)))
        : [h('span', { class: 'detail-no-alarm' }, 'No active alarms')]),
    );
    const commLost = store.commLost(bed);
    this.root.classList.toggle('comm-lost', commLost);
    this.live.render(store, bed, alarms, commLost);
  }
}
