// @ts-check
/**
 * The actions an officer has on the selected chat, by its state: on their own chat
 * "End chat" (asks first), "Put back in queue" and "Transfer…" (pick a colleague by
 * name, with their presence and load, kept live while the picker is open); on a pending
 * one "Claim"; on a chat of theirs that ended "Reopen". Whether an
 * action is allowed is the server's to say: this only offers what makes sense and hands
 * each choice to the page.
 */
import { ConfirmButton } from './confirm.js';
import { h } from './dom.js';

/** @typedef {'owned' | 'pending' | 'ended' | 'none'} Offer what the chat's state allows */
/**
 * @typedef {{ id: string, name: string, presence: string }} Colleague `presence` in
 *   words, e.g. "online, away, 2 of 5"
 */

export class ChatActions {
  /**
   * @param {{
   *   resolve: () => Promise<void>,
   *   release: () => Promise<void>,
   *   transfer: (officerId: string) => Promise<void>,
   *   reopen: () => Promise<void>,
   *   claim: () => Promise<void>,
   *   colleagues: () => Promise<Colleague[]>,
   * }} actions `colleagues`: whom a chat may be handed to, by display name
   */
  constructor(actions) {
    this.actions = actions;
    this.end = new ConfirmButton({
      label: 'End chat',
      question: 'End this conversation for the customer?',
      yes: 'Yes, end chat',
      no: 'Cancel',
      className: 'resolve',
      act: actions.resolve,
    });
    this.release = this.button('release', 'Put back in queue', actions.release);
    this.transfer = this.button('transfer', 'Transfer…', () => this.pick());
    this.claim = this.button('claim', 'Claim', actions.claim);
    this.reopen = this.button('reopen', 'Reopen', actions.reopen);
    this.select = /** @type {HTMLSelectElement} */ (h('select', { id: 'transfer-to', name: 'officerId' }));
    this.confirmTransfer = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'submit', class: 'transfer-yes' }, 'Transfer')
    );
    this.picker = h(
      'form',
      {
        class: 'transfer-picker',
        hidden: true,
        onsubmit: (e) => {
          e.preventDefault();
          this.handOver();
        },
      },
      h('label', { for: 'transfer-to' }, 'Transfer to'),
      this.select,
      this.confirmTransfer,
      h('button', { type: 'button', class: 'link cancel', onclick: () => this.closePicker() }, 'Cancel'),
    );
    this.element = h(
      'div',
      { class: 'chat-actions', role: 'toolbar', 'aria-label': 'Chat actions' },
      this.claim,
      this.end.element,
      this.release,
      this.transfer,
      this.reopen,
      this.picker,
    );
    this.set('none');
  }

  /**
   * @param {string} className @param {string} label @param {() => Promise<void>} act
   * @returns {HTMLButtonElement}
   */
  button(className, label, act) {
    const button = /** @type {HTMLButtonElement} */ (
      h('button', {
        type: 'button',
        class: className,
        onclick: async () => {
          button.disabled = true;
          try {
            await act();
          } finally {
            button.disabled = false;
          }
        },
      }, label)
    );
    return button;
  }

  /** @param {Offer} offer */
  set(offer) {
    this.offer = offer;
    this.end.show(offer === 'owned');
    this.release.hidden = offer !== 'owned';
    this.transfer.hidden = offer !== 'owned';
    this.claim.hidden = offer !== 'pending';
    this.reopen.hidden = offer !== 'ended';
    if (offer !== 'owned') this.closePicker();
  }

  async pick() {
    this.list(await this.actions.colleagues());
    this.transfer.hidden = true;
    this.picker.hidden = false;
    this.select.focus();
  }

  /**
   * Shows the colleagues again (their presence changed) while the picker is open; the
   * one picked stays picked while they are offered.
   * @param {Colleague[]} colleagues
   */
  refresh(colleagues) {
    if (!this.picker.hidden) this.list(colleagues);
  }

  /** @param {Colleague[]} colleagues */
  list(colleagues) {
    const picked = this.select.value;
    const same =
      this.select.options.length === colleagues.length &&
      colleagues.every((c, i) => this.select.options[i].value === c.id);
    if (same) {
      // Only the words change: the options stay, and so do the choice and the focus.
      colleagues.forEach((c, i) => {
        const text = label(c);
        if (this.select.options[i].textContent !== text) this.select.options[i].textContent = text;
      });
    } else {
      this.select.replaceChildren(
        ...(colleagues.length === 0
          ? [h('option', { value: '' }, 'No colleague to hand it to')]
          : colleagues.map((c) => h('option', { value: c.id }, label(c)))),
      );
      if (colleagues.some((c) => c.id === picked)) this.select.value = picked;
    }
    this.confirmTransfer.disabled = colleagues.length === 0;
  }

  closePicker() {
    this.picker.hidden = true;
    this.transfer.hidden = this.offer !== 'owned';
  }

  async handOver() {
    const to = this.select.value;
    if (!to) return;
    this.confirmTransfer.disabled = true;
    try {
      await this.actions.transfer(to);
    } finally {
      this.confirmTransfer.disabled = false;
      this.closePicker();
    }
  }
}

/** @param {Colleague} colleague @returns {string} e.g. "Bob — online, away, 2 of 5" */
const label = (colleague) => `${colleague.name} — ${colleague.presence}`;
