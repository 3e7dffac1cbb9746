// @ts-check
/**
 * The message composer: a labelled textarea and a Send button. Enter sends, Shift+Enter
 * starts a new line. The text stays in the box until the server has stored it, so a
 * failed send can be retried (with the same idempotency key, so never twice).
 */
import { h, newClientMessageId } from './dom.js';

export class Composer {
  /**
   * @param {(content: string, clientMessageId: string) => Promise<void>} onSend
   * @param {string} inputId
   */
  constructor(onSend, inputId) {
    this.onSend = onSend;
    this.pendingKey = newClientMessageId();
    this.input = /** @type {HTMLTextAreaElement} */ (
      h('textarea', { id: inputId, name: 'content', rows: '2', maxlength: '4000', required: true, autocomplete: 'off' })
    );
    this.button = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit' }, 'Send'));
    this.error = h('p', { class: 'error', role: 'alert' });
    this.element = h(
      'form',
      { class: 'composer', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      h('label', { for: inputId, class: 'visually-hidden' }, 'Message'),
      this.input,
      this.button,
      this.error,
    );
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => {
      // Edited text is a new message: it gets a new key.
      this.pendingKey = newClientMessageId();
    });
  }

  /** @param {boolean} enabled @param {string} [placeholder] */
  setEnabled(enabled, placeholder = 'Write a message') {
    this.input.disabled = !enabled;
    this.button.disabled = !enabled;
    this.input.placeholder = placeholder;
  }

  async submit() {
    const content = this.input.value;
    if (!content.trim() || this.button.disabled) return;
    this.button.disabled = true;
    this.error.textContent = '';
    try {
      await this.onSend(content, this.pendingKey);
      this.input.value = '';
      this.pendingKey = newClientMessageId();
    } catch (e) {
      this.error.textContent = e instanceof Error ? e.message : String(e);
    } finally {
      this.button.disabled = this.input.disabled;
      this.input.focus();
    }
  }
}
