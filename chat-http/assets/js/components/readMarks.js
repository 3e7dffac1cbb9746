// @ts-check
/**
 * The reader's read mark for the chat a MessageList shows, moved only for what was
 * actually seen: an entry counts when the page is visible (`document.visibilityState`)
 * and the entry's element is on screen (an IntersectionObserver on the viewport, which
 * the log's own scrolling clips). The mark only moves forward, and a burst of entries
 * seen together makes one mark (coalesced over a short pause), not one per message.
 *
 * Whenever this page moves its reader's mark it dispatches, on `document`,
 *
 *     new CustomEvent('chat:read', { detail: { chatId, seq } })
 *
 * (`seq`: the mark as now sent). Other parts of a page (the officer console's unread
 * counts) listen for it: keep this interface.
 */

/** How long entries seen together are gathered into one mark. */
const GATHER_MS = 300;

export class ReadMarks {
  /**
   * @param {{
   *   list: import('./messageList.js').MessageList,
   *   send: (chatId: string, seq: number) => boolean,
   *   allowed?: () => boolean,
   * }} options `send` sends the mark (false when it could not: tried again later);
   *   `allowed` says whether this reader has a mark in the chat now
   */
  constructor({ list, send, allowed = () => true }) {
    this.send = send;
    this.allowed = allowed;
    /** @type {string | null} */
    this.chatId = null;
    this.mark = 0;
    /** @type {Set<Element>} entries on screen now */
    this.onScreen = new Set();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    this.observer =
      typeof IntersectionObserver === 'function'
        ? new IntersectionObserver((entries) => {
            for (const entry of entries) {
              if (entry.isIntersecting) this.onScreen.add(entry.target);
              else this.onScreen.delete(entry.target);
            }
            this.soon();
          })
        : null;
    const previous = list.onItem;
    list.onItem = (item) => {
      previous?.(item);
      this.observer?.observe(item);
    };
    document.addEventListener('visibilitychange', () => this.soon());
  }

  /**
   * Marks for this chat from now on, from the reader's mark as the server gave it.
   * @param {string | null} chatId @param {number} [mark]
   */
  follow(chatId, mark = 0) {
    if (chatId !== this.chatId) {
      this.onScreen.clear();
      this.chatId = chatId;
      this.mark = 0;
    }
    this.mark = Math.max(this.mark, Number(mark) || 0);
    this.soon();
  }

  soon() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, GATHER_MS);
  }

  /** Sends the mark if something newer was seen. Also called when the socket is back. */
  flush() {
    if (!this.chatId || document.visibilityState !== 'visible' || !this.allowed()) return;
    let best = 0;
    for (const item of [...this.onScreen]) {
      if (!item.isConnected) {
        this.onScreen.delete(item);
        this.observer?.unobserve(item);
        continue;
      }
      best = Math.max(best, Number(item.getAttribute('data-seq')) || 0);
    }
    if (best <= this.mark) return;
    if (!this.send(this.chatId, best)) return;
    this.mark = best;
    document.dispatchEvent(new CustomEvent('chat:read', { detail: { chatId: this.chatId, seq: best } }));
  }
}
