// @ts-check
/**
 * A chat's timeline in seq order, as an accessible live log: people's messages as
 * bubbles, the server's system entries ("Alice transferred the chat to Bob") as quiet
 * centred lines, a separator per day ("Today", "Yesterday", "Mon 23 Nov 2026"), the
 * viewer's messages still being sent (pending bubbles, drawn for the Outbox), and
 * "Seen" under the viewer's newest message the other side has read. Knows the viewer's
 * own sender id to tell "you" from the other side, and asks the page for the name to
 * show for a sender; shows each seq once, and a pending message never beside its
 * stored self (they share the clientMessageId).
 *
 * The element is a wrapping `div.messages` with `role="log"` (and the scrolling); the
 * `<ol>` inside stays a plain list, so that its items are not orphaned for assistive
 * technology. Only additions are announced: relative times change their words by
 * themselves and must not be read out.
 */
import { dayKey, dayLabel, h, timeElement } from './dom.js';

/** @typedef {(message: any) => string} NameOf who wrote a message, as the page names them */

/**
 * @typedef {object} PendingView a message the Outbox is still sending
 * @property {string} key its clientMessageId
 * @property {string} content
 * @property {'sending' | 'queued' | 'failed'} state
 * @property {string} [reason] why it failed (a refusal that a retry will not change)
 */

export class MessageList {
  /** @param {string} label accessible name of the log */
  constructor(label) {
    /** @type {Set<number>} */
    this.seqs = new Set();
    /** @type {Set<string>} clientMessageIds of the stored messages shown */
    this.keys = new Set();
    /** @type {{ message: any, who: HTMLElement }[]} the other side's messages, to rename */
    this.named = [];
    /** @type {Map<string, HTMLElement>} day key -> its separator */
    this.days = new Map();
    /** @type {Map<string, HTMLElement>} clientMessageId -> pending bubble */
    this.pendings = new Map();
    this.lastSeq = 0;
    /** The other side's read mark, as far as this page knows it. */
    this.seenSeq = 0;
    this.viewer = '';
    /** @type {NameOf} */
    this.nameOf = (message) =>
      message.senderType === 'officer' ? `Officer ${message.senderId}` : message.senderId;
    /** @type {((item: HTMLElement) => void) | null} told of each stored entry drawn */
    this.onItem = null;
    /** @type {(() => void) | null} told after `reset` (the Outbox draws its bubbles again) */
    this.onReset = null;
    this.empty = h('li', { class: 'empty' }, 'No messages yet.');
    this.seen = h('p', { class: 'seen' }, 'Seen');
    this.list = h('ol', { class: 'timeline' });
    this.element = h(
      'div',
      {
        class: 'messages',
        role: 'log',
        'aria-live': 'polite',
        'aria-relevant': 'additions',
        'aria-label': label,
        tabindex: '0',
      },
      this.list,
    );
    this.list.append(this.empty);
  }

  /** @param {string} viewer the sender id of the person looking @param {NameOf} [nameOf] */
  setViewer(viewer, nameOf) {
    this.viewer = viewer;
    if (nameOf) this.nameOf = nameOf;
  }

  /** @param {any[]} messages ascending by seq */
  reset(messages) {
    this.seqs.clear();
    this.keys.clear();
    this.named = [];
    this.days.clear();
    this.pendings.clear();
    this.lastSeq = 0;
    this.seenSeq = 0;
    this.seen.remove();
    this.list.replaceChildren(this.empty);
    for (const m of messages) this.append(m);
    this.onReset?.();
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
        'data-day': dayKey(new Date(message.createdAt)),
      },
      h('div', { class: 'meta' }, who, ' ', time),
      h('div', { class: 'content' }, message.content),
    );
  }

  /** @param {any} message */
  append(message) {
    if (this.seqs.has(message.seq)) return;
    this.seqs.add(message.seq);
    if (message.clientMessageId) {
      this.keys.add(message.clientMessageId);
      this.dropPending(message.clientMessageId);
    }
    this.lastSeq = Math.max(this.lastSeq, message.seq);
    this.empty.remove();
    const mine = message.senderType !== 'system' && message.senderId === this.viewer;
    const time = timeElement(message.createdAt);
    const item =
      message.senderType === 'system'
        ? h(
            'li',
            {
              class: 'system-entry',
              'data-seq': String(message.seq),
              'data-day': dayKey(new Date(message.createdAt)),
              'data-kind': message.event?.kind ?? '',
            },
            h('span', { class: 'sentence' }, message.content),
            ' · ',
            time,
          )
        : this.bubble(message, mine, time);
    // Usually the newest; a replayed older one goes into its place. Stored entries come
    // before the ones still being sent.
    const later = [...this.list.children].find(
      (li) =>
        li.classList.contains('pending') || Number(li.getAttribute('data-seq')) > message.seq,
    );
    this.list.insertBefore(item, later ?? null);
    this.placeDays();
    if (mine) this.placeSeen();
    this.onItem?.(item);
    this.scroll(mine);
  }

  /**
   * Draws (or redraws) a message the Outbox is sending, after the stored ones.
   * @param {PendingView} view
   * @param {{ retry: () => void, discard: () => void }} actions
   */
  showPending(view, actions) {
    if (this.keys.has(view.key)) return;
    const state =
      view.state === 'sending'
        ? h('span', { class: 'send-state' }, 'Sending…')
        : h(
            'span',
            { class: 'send-state not-sent' },
            'Not sent. ',
            view.state === 'queued' ? 'It will be sent when the connection is back.' : (view.reason ?? ''),
            ' ',
            h('button', { type: 'button', class: 'link retry', onclick: actions.retry }, 'Retry'),
            ' ',
            h('button', { type: 'button', class: 'link discard', onclick: actions.discard }, 'Discard'),
          );
    const item = h(
      'li',
      {
        class: `message mine pending ${view.state}`,
        'data-key': view.key,
        'data-day': dayKey(new Date()),
      },
      h('div', { class: 'meta' }, h('span', { class: 'who' }, 'You'), ' ', state),
      h('div', { class: 'content' }, view.content),
    );
    const old = this.pendings.get(view.key);
    this.pendings.set(view.key, item);
    this.empty.remove();
    if (old?.isConnected) {
      old.replaceWith(item);
    } else {
      this.list.append(item);
      this.scroll(true);
    }
    this.placeDays();
  }

  /** @param {string} key a clientMessageId */
  dropPending(key) {
    const item = this.pendings.get(key);
    if (!item) return;
    this.pendings.delete(key);
    item.remove();
    this.placeDays();
    if (!this.list.querySelector('li[data-day]')) this.list.append(this.empty);
  }

  /**
   * The other side has read up to `seq`: "Seen" goes under the viewer's newest message
   * at or below it. It only moves forward.
   * @param {number} seq
   */
  setSeen(seq) {
    if (!(seq > this.seenSeq)) return;
    this.seenSeq = seq;
    this.placeSeen();
  }

  placeSeen() {
    /** @type {Element | null} */
    let target = null;
    for (const li of this.list.querySelectorAll('li.message.mine[data-seq]')) {
      if (Number(li.getAttribute('data-seq')) <= this.seenSeq) target = li;
    }
    if (target && this.seen.parentElement !== target) {
      // Measured before the line is added: a reader at the foot keeps seeing it.
      const atFoot =
        this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 120;
      target.append(this.seen);
      if (atFoot) this.element.scrollTop = this.element.scrollHeight;
    }
  }

  /** One separator before the first entry of each day, none for a day without any. */
  placeDays() {
    /** @type {Set<string>} */
    const present = new Set();
    for (const li of [...this.list.children]) {
      const day = li.getAttribute('data-day');
      if (!day || present.has(day)) continue;
      present.add(day);
      let separator = this.days.get(day);
      if (!separator) {
        const [y, m, d] = day.split('-').map(Number);
        const noon = new Date(y, m - 1, d, 12).toISOString();
        // `data-day-label` has the shared refresh write its words again, so that
        // "Today" becomes "Yesterday" at midnight.
        separator = h(
          'li',
          { class: 'day-separator', 'data-separator': day },
          h('span', { 'data-day-label': noon }, dayLabel(noon)),
        );
        this.days.set(day, separator);
      }
      if (li.previousElementSibling !== separator) this.list.insertBefore(separator, li);
    }
    for (const [day, separator] of this.days) {
      if (!present.has(day)) {
        separator.remove();
        this.days.delete(day);
      }
    }
  }

  /** Keeps the newest in view when the reader is at the bottom, or wrote it. @param {boolean} mine */
  scroll(mine) {
    const nearBottom =
      this.element.scrollHeight - this.element.scrollTop - this.element.clientHeight < 120;
    if (nearBottom || mine) this.element.scrollTop = this.element.scrollHeight;
  }
}
