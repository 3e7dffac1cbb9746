// @ts-check
/**
 * How a person attaches files: a real button beside the message box that opens the
 * browser's file picker (keyboard and screen reader users reach it like any button),
 * and the conversation as a drop zone, which shows where a dragged file will go. Each
 * file is checked against what the server wrote into the page (files.js): one the
 * server would refuse for certain (empty, too large, a type it does not take) is
 * explained at once and never sent; the others go to `send` (the page's Outbox), one by
 * one, in the order chosen. What it has to say goes to `say` (the composer's polite
 * status line). Decides nothing the server decides.
 */
import { refusedBeforeSending } from '../files.js';
import { icon } from './attachment.js';
import { h } from './dom.js';

/** Whether the page already keeps a file dropped outside the zone from replacing it. */
let guarded = false;

/** @param {DragEvent} e @returns {boolean} whether files are being dragged */
const carriesFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');

export class AttachControl {
  /**
   * @param {{
   *   rules: import('../files.js').FileRules,
   *   send: (file: File) => void,
   *   say: (text: string, tone: 'info' | 'warn') => void,
   *   id: string,
   * }} options `id` names the button (the file input is `${id}-input`)
   */
  constructor({ rules, send, say, id }) {
    this.rules = rules;
    this.send = send;
    this.say = say;
    this.enabled = false;
    this.input = /** @type {HTMLInputElement} */ (
      h('input', { type: 'file', id: `${id}-input`, hidden: true, multiple: true, accept: rules.types.join(','), tabindex: '-1' })
    );
    this.button = /** @type {HTMLButtonElement} */ (
      h(
        'button',
        { type: 'button', id, class: 'attach', title: 'Attach a file', onclick: () => this.input.click() },
        icon('clip'),
        // Named "Attach a file", which begins with the word shown (hidden on a phone).
        h('span', { class: 'attach-label', 'aria-hidden': 'true' }, 'Attach'),
        h('span', { class: 'visually-hidden' }, 'Attach a file'),
      )
    );
    this.element = h('span', { class: 'attach-control', hidden: !rules.enabled }, this.button, this.input);
    this.input.addEventListener('change', () => {
      const files = [...(this.input.files ?? [])];
      // The same file may be chosen again later (after a refusal, say).
      this.input.value = '';
      this.take(files);
    });
    this.hint = h('div', { class: 'drop-hint', 'aria-hidden': 'true' }, icon('clip'), h('span', {}, 'Drop a file to send it'));
    this.setEnabled(false);
  }

  /** Whether files may be sent now (the page turns it on with its composer). @param {boolean} enabled */
  setEnabled(enabled) {
    this.enabled = enabled && this.rules.enabled;
    this.button.disabled = !this.enabled;
  }

  /**
   * Makes `zone` (the conversation) take dropped files: while files are dragged over
   * it, it shows so (`.dropping`) and says what a drop will do.
   * @param {HTMLElement} zone
   */
  dropZone(zone) {
    if (!this.rules.enabled) return;
    zone.classList.add('drop-zone');
    zone.append(this.hint);
    /** @param {DragEvent} e */
    const over = (e) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = this.enabled ? 'copy' : 'none';
      const words = this.enabled ? 'Drop a file to send it' : 'Files cannot be sent in this chat now';
      const text = /** @type {HTMLElement} */ (this.hint.lastElementChild);
      if (text.textContent !== words) text.textContent = words;
      zone.classList.add('dropping');
    };
    zone.addEventListener('dragenter', over);
    zone.addEventListener('dragover', over);
    zone.addEventListener('dragleave', (e) => {
      if (!(e.relatedTarget instanceof Node) || !zone.contains(e.relatedTarget)) zone.classList.remove('dropping');
    });
    zone.addEventListener('drop', (e) => {
      if (!carriesFiles(e) && !e.dataTransfer?.files.length) return;
      e.preventDefault();
      zone.classList.remove('dropping');
      this.take([...(e.dataTransfer?.files ?? [])]);
    });
    if (!guarded) {
      guarded = true;
      // A file dropped beside the zone would otherwise replace the page with itself.
      for (const type of ['dragover', 'drop']) {
        window.addEventListener(type, (e) => {
          if (e.defaultPrevented || !carriesFiles(/** @type {DragEvent} */ (e))) return;
          e.preventDefault();
          const transfer = /** @type {DragEvent} */ (e).dataTransfer;
          if (transfer) transfer.dropEffect = 'none';
        });
      }
    }
  }

  /** Sends the files the server may take; explains the others. @param {File[]} files */
  take(files) {
    if (files.length === 0) return;
    if (!this.enabled) {
      this.say('Files can be sent once you can write in this chat.', 'warn');
      return;
    }
    /** @type {string[]} */
    const refused = [];
    for (const file of files) {
      const why = refusedBeforeSending(file, this.rules);
      if (why) refused.push(why);
      else this.send(file);
    }
    if (refused.length > 0) this.say(refused.join(' '), 'warn');
  }
}
