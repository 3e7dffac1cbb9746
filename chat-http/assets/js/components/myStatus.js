// @ts-check
/**
 * The officer's own state in the console's top bar: an availability switch (Available /
 * Away) and their load ("3 of 5", "3 (no limit)"). A click asks the server through the
 * page's callback; the switch shows only what the server says, from its answer or from an
 * `officer_updated` event (so a change made elsewhere, by the admin for one, shows too).
 * While a change is under way the switch waits for it.
 */
import { load } from '../officers.js';
import { h } from './dom.js';

/** @typedef {'available' | 'away'} Availability */

export class MyStatus {
  /**
   * @param {(availability: Availability) => Promise<void>} change asks the server, shows
   *   its answer (through `show`) or says its refusal
   */
  constructor(change) {
    this.change = change;
    /** @type {any} the officer as the server last gave them */
    this.officer = null;
    this.busy = false;
    this.available = this.option('available', 'Available');
    this.away = this.option('away', 'Away');
    this.load = h('span', { id: 'my-load', class: 'load' }, '…');
    this.element = h(
      'div',
      { class: 'my-status' },
      h('div', { id: 'availability', class: 'switch', role: 'group', 'aria-label': 'Your availability' }, this.available, this.away),
      h('span', { class: 'my-load', role: 'status', 'aria-live': 'polite' }, 'Your chats: ', this.load),
    );
    this.render();
  }

  /** @param {Availability} value @param {string} label @returns {HTMLButtonElement} */
  option(value, label) {
    return /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', id: `set-${value}`, class: `switch-option ${value}`, 'aria-pressed': 'false', onclick: () => this.pick(value) }, label)
    );
  }

  /** @param {Availability} value */
  async pick(value) {
    if (this.busy || !this.officer || this.officer.availability === value) return;
    this.busy = true;
    this.render();
    try {
      await this.change(value);
    } finally {
      this.busy = false;
      this.render();
    }
  }

  /** Shows the officer as the server gave them. @param {any} officer */
  show(officer) {
    this.officer = officer;
    this.render();
  }

  render() {
    const current = this.officer?.availability === 'away' ? 'away' : this.officer ? 'available' : null;
    for (const [value, button] of /** @type {const} */ ([['available', this.available], ['away', this.away]])) {
      const pressed = String(current === value);
      if (button.getAttribute('aria-pressed') !== pressed) button.setAttribute('aria-pressed', pressed);
      button.disabled = this.busy || current === null;
    }
    const text = this.officer ? load(this.officer) : '…';
    if (this.load.textContent !== text) this.load.textContent = text;
  }
}
