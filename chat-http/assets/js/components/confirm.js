// @ts-check
/**
 * A button that asks before it acts: the first click shows the question with a
 * confirming and a cancelling button in its place (in the page, not a browser dialog, so
 * it is styled, keyboard-reachable and testable). While the action runs the buttons are
 * disabled; a failure is reported by the action itself.
 */
import { h } from './dom.js';

export class ConfirmButton {
  /**
   * @param {{
   *   label: string,
   *   question: string,
   *   yes: string,
   *   no: string,
   *   className: string,
   *   act: () => Promise<void>,
   * }} options `className` names the button and its confirming twin (`<className>-yes`)
   */
  constructor({ label, question, yes, no, className, act }) {
    this.button = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: className, onclick: () => this.ask() }, label)
    );
    this.yes = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: `${className}-yes danger`, onclick: () => this.confirm() }, yes)
    );
    this.no = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'link cancel', onclick: () => this.cancel() }, no)
    );
    this.question = h('div', { class: 'confirm', role: 'group', 'aria-label': question, hidden: true }, h('span', {}, question), this.yes, this.no);
    this.act = act;
    this.element = h('span', { class: 'confirm-button' }, this.button, this.question);
  }

  ask() {
    this.button.hidden = true;
    this.question.hidden = false;
    this.yes.focus();
  }

  cancel() {
    this.question.hidden = true;
    this.button.hidden = false;
    this.button.focus();
  }

  async confirm() {
    this.yes.disabled = true;
    this.no.disabled = true;
    try {
      await this.act();
    } finally {
      this.yes.disabled = false;
      this.no.disabled = false;
      this.question.hidden = true;
      this.button.hidden = false;
    }
  }

  /** @param {boolean} shown */
  show(shown) {
    this.element.hidden = !shown;
    if (!shown) {
      this.question.hidden = true;
      this.button.hidden = false;
    }
  }
}
