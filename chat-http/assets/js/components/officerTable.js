// @ts-check
/**
 * The admin's table of officers: who they are, whether they are connected, their
 * availability, their load against their capacity, and whether their account is
 * disabled; per officer, a capacity to save (or the server's default) and disable or
 * enable. Rows are kept and updated in place, so that an update from the server never
 * throws away a capacity being typed. Every action is the page's callback, which asks
 * the server; the table shows the officer the server answers.
 */
import { load, nameOf } from '../officers.js';
import { ConfirmButton } from './confirm.js';
import { h } from './dom.js';

/**
 * @typedef {{
 *   capacity: (officerId: string, capacity: number | null) => Promise<void>,
 *   disable: (officerId: string) => Promise<void>,
 *   enable: (officerId: string) => Promise<void>,
 *   say: (text: string) => void,
 * }} Actions `say` reports a problem found before asking the server
 */

class OfficerRow {
  /** @param {any} officer @param {Actions} actions */
  constructor(officer, actions) {
    const id = officer.id;
    this.id = id;
    this.name = h('span', { class: 'name' });
    this.idLine = h('span', { class: 'officer-id' });
    this.presence = h('span', { class: 'badge presence' });
    this.availability = h('span', { class: 'availability' });
    this.load = h('span', { class: 'load' });
    this.state = h('span', { class: 'state' });
    const inputId = `capacity-${id}`;
    this.input = /** @type {HTMLInputElement} */ (
      h('input', { id: inputId, class: 'capacity-input', type: 'number', step: '1', inputmode: 'numeric', placeholder: 'no limit' })
    );
    this.capacityLabel = h('label', { for: inputId, class: 'visually-hidden' });
    /** The capacity last shown from the server, to tell a typed one from it. */
    this.synced = '';
    const save = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'save-capacity' }, 'Save'));
    const byDefault = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'secondary default-capacity' }, 'Server default')
    );
    const busy = async (/** @type {() => Promise<void>} */ act) => {
      save.disabled = true;
      byDefault.disabled = true;
      try {
        await act();
      } finally {
        save.disabled = false;
        byDefault.disabled = false;
      }
    };
    byDefault.addEventListener('click', () => busy(() => actions.capacity(id, null)));
    const capacityForm = h(
      'form',
      {
        class: 'capacity-form',
        novalidate: true,
        onsubmit: (e) => {
          e.preventDefault();
          const typed = this.input.value.trim();
          if (typed === '') {
            actions.say(`Type a number of chats for ${this.label}, or choose Server default.`);
            return;
          }
          busy(() => actions.capacity(id, Number(typed)));
        },
      },
      this.capacityLabel,
      this.input,
      save,
      byDefault,
    );
    this.disable = new ConfirmButton({
      label: 'Disable',
      question: `Disable ${nameOf(officer)}? Their sessions end at once.`,
      yes: 'Disable',
      no: 'Cancel',
      className: 'disable',
      act: () => actions.disable(id),
    });
    this.enable = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'enable secondary' }, 'Enable')
    );
    this.enable.addEventListener('click', async () => {
      this.enable.disabled = true;
      try {
        await actions.enable(id);
      } finally {
        this.enable.disabled = false;
      }
    });
    this.element = h(
      'tr',
      { 'data-officer-id': id },
      h('th', { scope: 'row' }, this.name, this.idLine),
      h('td', {}, this.presence),
      h('td', {}, this.availability),
      h('td', {}, this.load),
      h('td', {}, capacityForm),
      h('td', {}, h('div', { class: 'account' }, this.state, this.disable.element, this.enable)),
    );
    this.label = id;
    this.update(officer, true);
  }

  /**
   * Shows the officer as the server answered. The capacity field follows unless the
   * admin has typed something else into it (or `force`, after their own save).
   * @param {any} officer @param {boolean} [force]
   */
  update(officer, force = false) {
    this.officer = officer;
    this.label = nameOf(officer);
    setText(this.name, nameOf(officer));
    setText(this.idLine, officer.displayName ? officer.id : '');
    const online = officer.connected === true;
    setText(this.presence, online ? 'online' : 'offline');
    this.presence.className = `badge presence ${online ? 'online' : 'offline'}`;
    setText(this.availability, officer.availability === 'away' ? 'away' : 'available');
    this.availability.className = `availability ${officer.availability === 'away' ? 'away' : 'available'}`;
    setText(this.load, load(officer));
    setText(this.capacityLabel, `Capacity of ${nameOf(officer)}`);
    const capacity = officer.capacity === null || officer.capacity === undefined ? '' : String(officer.capacity);
    // What the admin has typed and not saved stays; a saved one shows the answer.
    if (force || this.input.value === this.synced) this.input.value = capacity;
    this.synced = capacity;
    setText(this.state, officer.disabled ? 'Disabled' : 'Active');
    this.state.className = `state ${officer.disabled ? 'disabled' : 'active'}`;
    this.element.classList.toggle('disabled', officer.disabled === true);
    this.disable.show(!officer.disabled);
    this.enable.hidden = !officer.disabled;
  }
}

/** @param {HTMLElement} el @param {string} text */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export class OfficerTable {
  /** @param {Actions} actions */
  constructor(actions) {
    this.actions = actions;
    /** @type {Map<string, OfficerRow>} */
    this.rows = new Map();
    this.body = h('tbody', {});
    this.element = h(
      'table',
      { id: 'officers-table', class: 'officers-table' },
      h('caption', { class: 'visually-hidden' }, 'Officers, their presence, availability, load and capacity'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Officer'),
          h('th', { scope: 'col' }, 'Presence'),
          h('th', { scope: 'col' }, 'Availability'),
          h('th', { scope: 'col' }, 'Load'),
          h('th', { scope: 'col' }, 'Capacity'),
          h('th', { scope: 'col' }, 'Account'),
        ),
      ),
      this.body,
    );
  }

  /**
   * Shows the server's list (by id). Officers in `keep` changed while it was being read,
   * so their rows stay as those changes left them.
   * @param {any[]} officers @param {Set<string>} [keep]
   */
  set(officers, keep = new Set()) {
    const listed = new Set(officers.map((o) => o.id));
    for (const [id, row] of this.rows) {
      if (!listed.has(id) && !keep.has(id)) {
        row.element.remove();
        this.rows.delete(id);
      }
    }
    for (const officer of officers) {
      if (!keep.has(officer.id) || !this.rows.has(officer.id)) this.update(officer);
    }
    this.order();
  }

  /**
   * Shows one officer as the server answered: their row updated in place, or added.
   * @param {any} officer @param {boolean} [force] also replace a capacity being typed
   */
  update(officer, force = false) {
    const row = this.rows.get(officer.id);
    if (row) {
      row.update(officer, force);
      return;
    }
    this.rows.set(officer.id, new OfficerRow(officer, this.actions));
    this.order();
  }

  /** @param {string} id @returns {string} the officer's name, or the id */
  nameOf(id) {
    const officer = this.rows.get(id)?.officer;
    return officer ? nameOf(officer) : id;
  }

  /** Rows by id, as the server lists them; a row moves only when it must. */
  order() {
    const ids = [...this.rows.keys()].sort();
    ids.forEach((id, i) => {
      const element = /** @type {OfficerRow} */ (this.rows.get(id)).element;
      if (this.body.children[i] !== element) this.body.insertBefore(element, this.body.children[i] ?? null);
    });
    if (ids.length === 0) {
      this.body.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: '6' }, 'No officers yet.')));
    } else {
      for (const tr of [...this.body.querySelectorAll('tr.empty')]) tr.remove();
    }
  }
}
