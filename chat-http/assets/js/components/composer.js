// @ts-check
/**
 * The message composer: a labelled textarea and a Send button. Enter sends, Shift+Enter
 * starts a new line. On Send the text leaves the box at once and goes to `onSend` (the
 * page's Outbox, which shows it as pending and sends it, again if need be), so the box is
 * always free for the next message. An empty or whitespace-only send sends nothing and
 * says so politely, near the box and to screen readers. While the person types, `onTyping`
 * is called (the page throttles it into `typing` frames). Tools beside the box (the
 * attach button) are turned on and off with it, and may speak in its status line.
 */
import { h } from './dom.js';

export class Composer {
  /**
   * @param {(content: string) => void} onSend
   * @param {string} inputId
   */
  constructor(onSend, inputId) {
    this.onSend = onSend;
    /** @type {(() => void) | null} */
    this.onTyping = null;
    this.input = /** @type {HTMLTextAreaElement} */ (
      h('textarea', { id: inputId, name: 'content', rows: '2', maxlength: '4000', required: true, autocomplete: 'off', 'aria-describedby': `${inputId}-hint` })
    );
    this.button = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit' }, 'Send'));
    /** Feedback about the box itself ("Please write a message first."). */
    this.hint = h('p', { id: `${inputId}-hint`, class: 'composer-hint', role: 'status', 'aria-live': 'polite' });
    /** @type {{ element: HTMLElement, setEnabled: (enabled: boolean) => void }[]} */
    this.tools = [];
    this.element = h(
      'form',
      { class: 'composer', novalidate: true, onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      h('label', { for: inputId, class: 'visually-hidden' }, 'Message'),
      this.input,
      this.button,
      this.hint,
    );
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => {
      if (this.hint.textContent) this.say('');
      if (this.input.value.trim()) this.onTyping?.();
    });
  }

  /** @param {boolean} enabled @param {string} [placeholder] */
  setEnabled(enabled, placeholder = 'Write a message') {
    this.input.disabled = !enabled;
    this.button.disabled = !enabled;
    this.input.placeholder = placeholder;
    for (const tool of this.tools) tool.setEnabled(enabled);
  }

  /**
   * Puts a tool (the attach button) before the box, on and off with it.
   * @param {{ element: HTMLElement, setEnabled: (enabled: boolean) => void }} tool
   */
  addTool(tool) {
    this.tools.push(tool);
    this.input.before(tool.element);
    tool.setEnabled(!this.input.disabled);
  }

  /**
   * Says something in the status line under the box, politely: a warning (the default)
   * or news (an upload's progress).
   * @param {string} text @param {'info' | 'warn'} [tone]
   */
  say(text, tone = 'warn') {
    this.hint.classList.toggle('info', tone === 'info');
    if (this.hint.textContent !== text) this.hint.textContent = text;
  }

  submit() {
    if (this.input.disabled) return;
    const content = this.input.value;
    if (!content.trim()) {
      this.say('Please write a message first: there is nothing to send.');
      this.input.focus();
      return;
    }
    this.say('');
    this.input.value = '';
    this.onSend(content);
    this.input.focus();
  }
}
