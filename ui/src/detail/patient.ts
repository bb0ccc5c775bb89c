// The Patient pane of the bed detail screen: who is admitted (masked while locked), admit with
// two identifiers, transfer, discharge, and standby. The patient line of the header is set here.

import { api } from '../api';
import { apiError, can, formatDateTime } from '../auth';
import { patientHeader, type PatientInfo } from '../detailmath';
import { field, h } from '../dom';
import type { DetailContext, Pane } from './pane';

export class PatientPane implements Pane {
  readonly root: HTMLElement;
  readonly history = false;
  private patients: PatientInfo[] = [];
  private readonly patientInfo: HTMLElement;
  private readonly adtBox: HTMLElement;
  private readonly adtMsg: HTMLElement;
  private readonly adtTo: HTMLSelectElement;
  private dischargeArmed = false;

  constructor(private readonly ctx: DetailContext) {
    this.patientInfo = h('div', { id: 'patient-info', class: 'patient-info' });
    this.adtMsg = h('p', { id: 'adt-msg', class: 'admin-msg' });
    this.adtTo = h('select', { id: 'adt-to' });
    this.adtBox = h('div', { id: 'adt', class: 'adt' });
    this.root = h('div', { class: 'detail-pane detail-patient-pane', id: 'pane-patient' }, this.patientInfo, this.adtBox, this.adtMsg);
  }

  open(): void {
    void this.loadPatients();
  }

  show(): void {
    void this.loadPatients();
  }

  rights(): void {
    this.renderPatient();
  }

  close(): void {
    // Nothing runs between loads.
  }

  async loadPatients(): Promise<void> {
    try {
      this.patients = await api.listPatients();
    } catch (e) {
      this.adtMsg.textContent = apiError(e).message;
    }
    this.renderPatient();
  }

  private renderPatient(): void {
    const bed = this.ctx.bed();
    if (!bed) return;
    const p = this.patients.find((x) => x.bed === bed);
    const standby = this.ctx.store()?.isStandby(bed) ?? false;
    this.ctx.setPatientLine(
      (p ? (p.masked ? patientHeader(p) : `${patientHeader(p)} · MRN ${p.mrn}`) : 'No patient admitted') +
        (standby ? ' · STANDBY — alarms off' : ''),
    );
    this.patientInfo.replaceChildren(
      p
        ? h(
            'dl',
            { class: 'patient-facts' },
            h('dt', {}, 'Name'),
            h('dd', { id: 'patient-name' }, p.name),
            h('dt', {}, 'MRN'),
            h('dd', {}, p.masked ? 'hidden while locked or logged out' : p.mrn),
            h('dt', {}, 'Date of birth'),
            h('dd', {}, p.masked ? 'hidden while locked or logged out' : `${p.dob ?? '–'}${typeof p.age === 'number' ? ` (${p.age} y)` : ''}`),
            h('dt', {}, 'Sex'),
            h('dd', {}, p.sex ?? 'U'),
            h('dt', {}, 'Pacemaker'),
            h('dd', { id: 'patient-pacer' }, p.pacemaker ? 'yes' : 'no'),
            h('dt', {}, 'Admitted'),
            h('dd', {}, formatDateTime(p.admitted_ms)),
          )
        : h('p', { id: 'patient-name', class: 'hint' }, 'No patient admitted to this bed.'),
    );
    if (!can(this.ctx.auth(), 'admit_discharge_transfer')) {
      this.adtBox.replaceChildren();
      return;
    }
    if (!p) {
      // Two identifiers (MRN and date of birth), and the header the nurse checks.
      const mrn = h('input', { id: 'adt-mrn', autocomplete: 'off', required: true });
      const name = h('input', { id: 'adt-name', autocomplete: 'off', required: true });
      const dob = h('input', { id: 'adt-dob', type: 'date', required: true });
      const sex = h('select', { id: 'adt-sex' });
      for (const [v, label] of [
        ['U', 'Unknown'],
        ['F', 'Female'],
        ['M', 'Male'],
        ['X', 'Other'],
      ]) {
        sex.append(h('option', { value: v }, label));
      }
      const pacer = h('input', { id: 'adt-pacer', type: 'checkbox' });
      const admit = h('button', { id: 'adt-admit', type: 'submit' }, 'Admit');
      const form = h(
        'form',
        { class: 'panel-form adt-form' },
        h('h3', {}, 'Admit'),
        field('MRN', mrn),
        field('Date of birth', dob),
        field('Name', name),
        field('Sex', sex),
        h('label', { class: 'check' }, pacer, 'Pacemaker'),
        admit,
      );
      form.onsubmit = (e) => {
        e.preventDefault();
        const patient = { mrn: mrn.value, name: name.value, dob: dob.value, sex: sex.value, pacemaker: pacer.checked };
        void this.adt(() => api.admitPatient(bed, patient), 'Admitted');
      };
      this.adtBox.replaceChildren(form, this.standbyBox(bed));
      return;
    }
    const occupied = new Set(this.patients.map((x) => x.bed));
    this.adtTo.replaceChildren(
      ...(this.ctx.store()?.beds ?? [])
        .filter((b) => b.key !== bed && !occupied.has(b.key))
        .map((b) => h('option', { value: b.key }, b.label)),
    );
    const transfer = h('button', { id: 'adt-transfer', type: 'button' }, 'Transfer');
    transfer.onclick = () => void this.adt(() => api.transferPatient(bed, this.adtTo.value), 'Transferred');
    const discharge = h('button', { id: 'adt-discharge', type: 'button', class: 'danger' }, 'Discharge…');
    this.dischargeArmed = false;
    discharge.onclick = () => {
      if (!this.dischargeArmed) {
        this.dischargeArmed = true;
        discharge.textContent = 'Confirm discharge';
        return;
      }
      void this.adt(() => api.dischargePatient(bed), 'Discharged');
    };
    this.adtBox.replaceChildren(
      h('h3', {}, 'Transfer to'),
      h('div', { class: 'actions' }, this.adtTo, transfer),
      h('h3', {}, 'Discharge'),
      h('div', { class: 'actions' }, discharge),
      this.standbyBox(bed),
    );
  }

  /** Standby (no patient: physiological alarms off) or back to monitoring, for the bed. */
  private standbyBox(bed: string): HTMLElement {
    const on = this.ctx.store()?.isStandby(bed) ?? false;
    const b = h(
      'button',
      { id: 'standby-toggle', type: 'button', class: on ? '' : 'secondary' },
      on ? 'Resume monitoring (alarms on)' : 'Standby (no patient: alarms off)',
    );
    b.onclick = () => {
      api.setStandby(bed, !on).then(
        () => {
          this.adtMsg.className = 'admin-msg ok';
          this.adtMsg.textContent = on ? 'Monitoring resumed' : 'Bed in standby: physiological alarms off';
          window.setTimeout(() => this.renderPatient(), 1500);
        },
        (e) => {
          this.adtMsg.className = 'admin-msg error';
          this.adtMsg.textContent = apiError(e).message;
        },
      );
    };
    return h('div', { class: 'standby-box' }, h('h3', {}, 'Monitoring'), h('div', { class: 'actions' }, b));
  }

  private async adt(work: () => Promise<PatientInfo>, verb: string): Promise<void> {
    this.adtMsg.className = 'admin-msg';
    try {
      const p = await work();
      this.adtMsg.textContent = `${verb}: ${p.name} (${p.bed})`;
      this.adtMsg.className = 'admin-msg ok';
    } catch (e) {
      this.adtMsg.textContent = apiError(e).message;
      this.adtMsg.className = 'admin-msg error';
    }
    await this.loadPatients();
    // A discharge or transfer changes the bed's limits (they go with the patient).
    await this.ctx.reloadLimits();
  }
}
