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
 *
 * Files (`addFile`) go the same way in a lane of their own, so that a long upload does
 * not hold back the texts written meanwhile: one upload at a time, in the order chosen,
 * with the upload's progress drawn in its bubble and said at each quarter, a Cancel
 * while it goes, and the same waiting, Retry (with the same clientMessageId) and
 * Discard when it fails.
 */
import { humanSize } from '../files.js';
import { newClientMessageId } from './dom.js';

/**
 * @typedef {object} Item
 * @property {string} key the clientMessageId
 * @property {string} chatId
 * @property {string} content the text ('' for a file)
 * @property {File} [file] a file to send instead of a text
 * @property {'waiting' | 'sending' | 'queued' | 'failed'} state
 * @property {string} [reason]
 * @property {{ sent: number, total: number }} [progress] a file's bytes sent so far
 * @property {number} [told] the last quarter of the upload said aloud
 * @property {AbortController} [abort] ends the upload under way
 * @property {boolean} [cancelled] the person cancelled the upload under way
 */

/**
 * @typedef {(chatId: string, file: File, clientMessageId: string,
 *   options: { onProgress: (sent: number, total: number) => void, signal: AbortSignal }) => Promise<any>} Upload
 */

/** The longest pause between two automatic retries. */
const MAX_PAUSE_MS = 30000;

/** @param {Item} item @returns {'text' | 'file'} */
const laneOf = (item) => (item.file ? 'file' : 'text');

/** @param {Item} item */
const named = (item) => `“${item.file?.name ?? ''}”`;

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
   *   upload?: Upload,
   *   explain?: (err: unknown) => string,
   *   say?: (text: string, tone: 'info' | 'warn') => void,
   * }} options `current` is the chat the list shows; `send` and `upload` answer the
   *   stored message; `explain` words an upload's refusal; `say` tells how uploads go
   */
  constructor({ list, current, send, upload, explain, say }) {
    this.list = list;
    this.current = current;
    this.send = send;
    this.upload = upload;
    this.explain = explain ?? ((/** @type {unknown} */ err) => (err instanceof Error ? err.message : String(err)));
    this.say = say ?? (() => {});
    /** @type {Item[]} in the order written */
    this.items = [];
    /** Lanes sending now. @type {Set<'text' | 'file'>} */
    this.busy = new Set();
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
    this.queue({ content });
  }

  /** Queues a file for the chat shown now. @param {File} file */
  addFile(file) {
    if (!this.upload) return;
    this.queue({ content: '', file });
  }

  /** @param {{ content: string, file?: File }} what */
  queue({ content, file }) {
    const chatId = this.current();
    if (!chatId) return;
    // Behind a message that waits for the connection, a new one waits too: order holds.
    const lane = file ? 'file' : 'text';
    const blocked = this.items.some((i) => i.state === 'queued' && i.chatId === chatId && laneOf(i) === lane);
    /** @type {Item} */
    const item = { key: newClientMessageId(), chatId, content, file, state: blocked ? 'queued' : 'waiting' };
    this.items.push(item);
    this.draw(item);
    this.pump(lane);
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
    if (any) this.pumpAll();
  }

  pumpAll() {
    this.pump('text');
    this.pump('file');
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
    this.pumpAll();
  }

  /** @param {string} key */
  discard(key) {
    const item = this.items.find((i) => i.key === key);
    if (!item || item.state === 'sending') return;
    this.forget(item);
  }

  /** Stops the upload under way (or forgets a file not sent yet). @param {string} key */
  cancel(key) {
    const item = this.items.find((i) => i.key === key);
    if (!item) return;
    if (item.state !== 'sending') {
      this.forget(item);
      return;
    }
    item.cancelled = true;
    item.abort?.abort();
  }

  /** @param {Item} item */
  forget(item) {
    this.items = this.items.filter((i) => i !== item);
    this.list.dropPending(item.key);
  }

  /** Sends what waits in one lane, one at a time, in order. @param {'text' | 'file'} lane */
  async pump(lane) {
    if (this.busy.has(lane)) return;
    this.busy.add(lane);
    try {
      for (;;) {
        const item = this.items.find((i) => i.state === 'waiting' && laneOf(i) === lane);
        if (!item) break;
        item.state = 'sending';
        if (item.file) item.progress = { sent: 0, total: item.file.size };
        this.draw(item);
        try {
          const message = await this.deliver(item);
          this.delivered(item, message);
          if (item.file) this.say(`${named(item)} was sent.`, 'info');
          this.pause = 1000;
        } catch (err) {
          if (item.cancelled) {
            this.forget(item);
            this.say(`The upload of ${named(item)} was cancelled.`, 'info');
          } else if (this.shownStored(item)) {
            // The socket brought the stored message before the answer was lost.
            this.delivered(item, null);
          } else if (isPassing(err)) {
            for (const i of this.items) {
              if (i.chatId === item.chatId && laneOf(i) === lane && (i === item || i.state === 'waiting')) {
                i.state = 'queued';
                this.draw(i);
              }
            }
            if (item.file) this.say(`${named(item)} will be sent when the connection is back.`, 'warn');
            this.later();
          } else {
            item.state = 'failed';
            item.reason = item.file ? this.explain(err) : err instanceof Error ? err.message : String(err);
            this.draw(item);
            if (item.file) this.say(`${named(item)} was not sent. ${item.reason}`, 'warn');
          }
        }
      }
    } finally {
      this.busy.delete(lane);
    }
  }

  /** @param {Item} item @returns {Promise<any>} the stored message */
  deliver(item) {
    if (!item.file || !this.upload) return this.send(item.chatId, item.content, item.key);
    const abort = new AbortController();
    item.abort = abort;
    item.cancelled = false;
    item.told = 0;
    this.say(`Sending ${named(item)} (${humanSize(item.file.size)})…`, 'info');
    return this.upload(item.chatId, item.file, item.key, {
      signal: abort.signal,
      onProgress: (sent, total) => this.progressed(item, sent, total),
    });
  }

  /** @param {Item} item @param {number} sent @param {number} total */
  progressed(item, sent, total) {
    if (item.state !== 'sending' || item.cancelled) return;
    item.progress = { sent, total };
    if (item.chatId === this.current()) this.list.setProgress(item.key, sent, total);
    // Said politely at each quarter, not at every event.
    const quarter = total > 0 ? Math.floor((sent / total) * 4) : 0;
    if (quarter > (item.told ?? 0) && quarter < 4) {
      item.told = quarter;
      this.say(`Sending ${named(item)}: ${quarter * 25}%.`, 'info');
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
        file: item.file ? { name: item.file.name, size: item.file.size, type: item.file.type } : undefined,
        progress: item.state === 'sending' ? item.progress : undefined,
        state: item.state === 'waiting' || item.state === 'sending' ? 'sending' : item.state,
        reason: item.reason,
      },
      {
        retry: () => this.retry(item.key),
        discard: () => this.discard(item.key),
        cancel: item.file && (item.state === 'sending' || item.state === 'waiting') ? () => this.cancel(item.key) : undefined,
      },
    );
  }
}
