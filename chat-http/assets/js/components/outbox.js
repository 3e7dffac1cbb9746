// @ts-check
/**
 * The messages a person has sent that the server has not stored yet, so that a send
 * never gets stuck and the composer is free at once. Each message gets its
 * clientMessageId when it is written and keeps it through every retry, so the server
 * stores it once however often it is sent (a retried key is answered with the
 * original). Messages go one at a time, in the order they were written; one that fails
 * for a passing reason (no connection, a 5xx, a rate limit) waits, with every message
 * after it, and is sent again when the connection is back (`resume`, which the page
 * calls when its socket is live again), or after a growing pause. A refusal that a
 * retry cannot change (a 4xx such as an ended chat or a too long text) is shown and not
 * retried by itself; the person may retry or discard it. The bubbles are drawn by the
 * MessageList; this holds no other DOM.
 */
import { newClientMessageId } from './dom.js';

/**
 * @typedef {object} Item
 * @property {string} key the clientMessageId
 * @property {string} chatId
 * @property {string} content
 * @property {'waiting' | 'sending' | 'queued' | 'failed'} state
 * @property {string} [reason]
 */

/** The longest pause between two automatic retries. */
const MAX_PAUSE_MS = 30000;

/**
 * Whether a failed send may succeed if sent again unchanged: the server was not reached,
 * timed out, limited the rate, or failed on its side. An error without an HTTP status
 * (a page's own refusal) is final.
 * @param {unknown} err
 */
export function isPassing(err) {
  const status = /** @type {any} */ (err)?.status;
  if (typeof status !== 'number') return false;
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export class Outbox {
  /**
   * @param {{
   *   list: import('./messageList.js').MessageList,
   *   current: () => string | null,
   *   send: (chatId: string, content: string, clientMessageId: string) => Promise<any>,
   * }} options `current` is the chat the list shows; `send` answers the stored message
   */
  constructor({ list, current, send }) {
    this.list = list;
    this.current = current;
    this.send = send;
    /** @type {Item[]} in the order written */
    this.items = [];
    this.busy = false;
    this.pause = 1000;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    // The list is drawn anew when another chat is opened (or the same one read again).
    list.onReset = () => {
      for (const item of this.items) this.draw(item);
    };
    addEventListener('online', () => this.resume());
  }

  /** Queues a message for the chat shown now. @param {string} content */
  add(content) {
    const chatId = this.current();
    if (!chatId) return;
    // Behind a message that waits for the connection, a new one waits too: order holds.
    const blocked = this.items.some((i) => i.state === 'queued' && i.chatId === chatId);
    /** @type {Item} */
    const item = { key: newClientMessageId(), chatId, content, state: blocked ? 'queued' : 'waiting' };
    this.items.push(item);
    this.draw(item);
    this.pump();
  }

  /** The connection is back: messages waiting for it are sent, in order. */
  resume() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let any = false;
    for (const item of this.items) {
      if (item.state === 'queued') {
        item.state = 'waiting';
        any = true;
      }
    }
    if (any) this.pump();
  }

  /** The person asks to send one again (and whatever waits with it). @param {string} key */
  retry(key) {
    const item = this.items.find((i) => i.key === key);
    if (!item || item.state === 'sending') return;
    if (item.state === 'failed') {
      // A refused message sent again goes after what is waiting now; one that waits for
      // the connection keeps its place.
      item.state = 'waiting';
      item.reason = undefined;
      this.items = [...this.items.filter((i) => i !== item), item];
      this.draw(item);
    }
    this.resume();
    this.pump();
  }

  /** @param {string} key */
  discard(key) {
    const item = this.items.find((i) => i.key === key);
    if (!item || item.state === 'sending') return;
    this.items = this.items.filter((i) => i !== item);
    this.list.dropPending(key);
  }

  async pump() {
    if (this.busy) return;
    this.busy = true;
    try {
      for (;;) {
        const item = this.items.find((i) => i.state === 'waiting');
        if (!item) break;
        item.state = 'sending';
        this.draw(item);
        try {
          const message = await this.send(item.chatId, item.content, item.key);
          this.delivered(item, message);
          this.pause = 1000;
        } catch (err) {
          if (this.shownStored(item)) {
            // The socket brought the stored message before the answer was lost.
            this.delivered(item, null);
          } else if (isPassing(err)) {
            for (const i of this.items) {
              if (i.chatId === item.chatId && (i === item || i.state === 'waiting')) {
                i.state = 'queued';
                this.draw(i);
              }
            }
            this.later();
          } else {
            item.state = 'failed';
            item.reason = err instanceof Error ? err.message : String(err);
            this.draw(item);
          }
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /** Tries again after a pause that doubles up to 30 s, in case no reconnect says so. */
  later() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.resume();
    }, this.pause);
    this.pause = Math.min(MAX_PAUSE_MS, this.pause * 2);
  }

  /** @param {Item} item @param {any} message the stored message, when answered */
  delivered(item, message) {
    this.items = this.items.filter((i) => i !== item);
    if (item.chatId !== this.current()) return;
    if (message) this.list.append(message);
    this.list.dropPending(item.key);
  }

  /** @param {Item} item */
  shownStored(item) {
    return item.chatId === this.current() && this.list.keys.has(item.key);
  }

  /** @param {Item} item */
  draw(item) {
    if (item.chatId !== this.current()) return;
    this.list.showPending(
      {
        key: item.key,
        content: item.content,
        state: item.state === 'waiting' || item.state === 'sending' ? 'sending' : item.state,
        reason: item.reason,
      },
      { retry: () => this.retry(item.key), discard: () => this.discard(item.key) },
    );
  }
}
