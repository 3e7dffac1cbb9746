// @ts-check
/**
 * A chat's timeline in seq order, as an accessible live log: people's messages as
 * bubbles, the server's system entries ("Alice transferred the chat to Bob") as quiet
 * centred lines. Knows the viewer's own sender id to tell "you" from the other side, and
 * asks the page for the name to show for a sender; shows each seq once.
 */
import { clockTime, h } from './dom.js';

/** @typedef {(message: any) => string} NameOf who wrote a message, as the page names them */

export class MessageList {
  /** @param {string} label accessible name of the log */
  constructor(label) {
    /** @type {Set<number>} */
    this.seqs = new Set();
    /** @type {{ message: any, who: HTMLElement }[]} the other side's messages, to rename */
    this.named = [];
    this.lastSeq = 0;
    this.viewer = '';
    /** @type {NameOf} */
    this.nameOf = (message) =>
      message.senderType === 'officer' ? `Officer ${message.senderId}` : message.senderId;
    this.empty = h('li', { class: 'empty' }, 'No messages yet.');
    this.element = h('ol', {
      class: 'messages',
      role: 'log',
      'aria-live': 'polite',
      'aria-label': label,
      tabindex: '0',
    });
    this.element.append(this.empty);
  }

  /** @param {string} viewer the sender id of the person looking @param {NameOf} [nameOf] */
  setViewer(viewer, nameOf) {
    this.viewer = viewer;
    if (nameOf) this.nameOf = nameOf;
  }

  /** @param {any[]} messages ascending by seq */
  reset(messages) {
    this.seqs.clear();
    this.named = [];
    this.lastSeq = 0;
    this.element.replaceChildren(this.empty);
    for (const m of messages) this.append(m);
  }

  /** Names the other side's messages again: the page has learned a name. */
  rename() {
    for (const { message, who } of this.named) who.textContent = this.nameOf(message);
  }

  /** @param {any} message @param {boolean} mine @param {HTMLElement} time */
  bubble(message, mine, time) {
    const who = h('span', { class: 'who' }, mine ? 'You' : this.nameOf(message));
    if (!mine) this.named.push({ message, who });
    return h(
      'li',
      {
        class: `message ${mine ? 'mine' : 'theirs'} ${message.senderType}`,
        'data-seq': String(message.seq),
      },
      h('div', { class: 'meta' }, who, ' ', time),
      h('div', { class: 'content' }, message.content),
    );
  }

  /** @param {any} message */
  append(message) {
    if (this.seqs.has(message.seq)) return;
    this.seqs.add(message.seq);
    this.lastSeq = Math.max(this.lastSeq, message.seq);
    this.empty.remove();
    const mine = message.senderType !== 'system' && message.senderId === this.viewer;
    const time = h('time', { datetime: message.createdAt }, clockTime(message.createdAt));
    const item =
      message.senderType === 'system'
        ? h(
            'li',
            {
              class: 'system-entry',
              'data-seq': String(message.seq),
              'data-kind': message.event?.kind ?? '',
            },
            h('span', { class: 'sentence' }, message.content),
            ' · ',
            time,
          )
        : this.bubble(message, mine, time);
    // Usually the newest; a replayed older one goes into its place.
    const later = [...this.element.children].find(
      (li) => Number(li.getAttribute('data-seq')) > message.seq,
    );
    this.element.insertBefore(item, later ?? null);
    const nearBottom =
      this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 120;
    if (nearBottom || mine) this.element.scrollTop = this.element.scrollHeight;
  }
}
