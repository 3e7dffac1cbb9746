// @ts-check
/**
 * The actions an officer has on the selected chat, by its state: on their own chat
 * "End chat" (asks first), "Put back in queue" and "Transfer…" (pick a colleague by
 * name); on a pending one "Claim"; on a chat of theirs that ended "Reopen". Whether an
 * action is allowed is the server's to say: this only offers what makes sense and hands
 * each choice to the page.
 */
import { ConfirmButton } from './confirm.js';
import { h } from './dom.js';

/** @typedef {'owned' | 'pending' | 'ended' | 'none'} Offer what the chat's state allows */

export class ChatActions {
  /**
   * @param {{
   *   resolve: () => Promise<void>,
   *   release: () => Promise<void>,
   *   transfer: (officerId: string) => Promise<void>,
   *   reopen: () => Promise<void>,
   *   claim: () => Promise<void>,
   *   colleagues: () => Promise<{ id: string, name: string }[]>,
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
    const colleagues = await this.actions.colleagues();
    this.select.replaceChildren(
      ...(colleagues.length === 0
        ? [h('option', { value: '' }, 'No colleague to hand it to')]
        : colleagues.map((c) => h('option', { value: c.id }, c.name))),
    );
    this.confirmTransfer.disabled = colleagues.length === 0;
    this.transfer.hidden = true;
    this.picker.hidden = false;
    this.select.focus();
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
