// @ts-check
/**
 * The queue at a glance for the admin: how many chats wait, and for how long the oldest
 * has waited, counted on in this page each second between reads. The numbers come from
 * the server's queue (oldest first); this only shows them.
 */
import { h } from './dom.js';

/**
 * @param {number} ms
 * @returns {string} e.g. "42 s", "3 min 07 s", "1 h 02 min"
 */
export function duration(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  if (minutes < 60) return `${minutes} min ${pad(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
}

export class QueueStats {
  constructor() {
    // The count is announced when it changes; the wait, which changes every second, is
    // a timer (not announced by itself), so that a screen reader is not flooded. A `dd`
    // may carry no role, so the timer is a span inside it.
    this.length = h('dd', { id: 'queue-length', 'aria-live': 'polite', 'aria-atomic': 'true' }, '…');
    this.wait = h('span', { id: 'longest-wait', role: 'timer', 'aria-atomic': 'true' }, '…');
    /** @type {number | null} when the oldest pending chat was created, ms since the epoch */
    this.oldest = null;
    this.element = h(
      'section',
      { id: 'queue-stats', class: 'card stats', 'aria-labelledby': 'queue-heading' },
      h('h2', { id: 'queue-heading' }, 'Queue'),
      h('dl', {}, h('div', {}, h('dt', {}, 'Waiting'), this.length), h('div', {}, h('dt', {}, 'Longest wait'), h('dd', {}, this.wait))),
    );
    this.timer = setInterval(() => this.tick(), 1000);
  }

  /** @param {any[]} queue the pending chats, oldest first */
  set(queue) {
    const n = queue.length;
    const text = n === 0 ? 'No chats waiting' : n === 1 ? '1 chat waiting' : `${n} chats waiting`;
    // Unchanged text is not written again, so that screen readers announce changes only.
    if (this.length.textContent !== text) this.length.textContent = text;
    this.length.dataset.count = String(n);
    // Oldest first, as the server answers; the minimum guards against any other order.
    this.oldest = queue.reduce(
      (/** @type {number | null} */ oldest, c) => Math.min(oldest ?? Infinity, new Date(c.createdAt).getTime()),
      null,
    );
    this.tick();
  }

  tick() {
    const text = this.oldest === null ? 'Nobody is waiting' : duration(Date.now() - this.oldest);
    if (this.wait.textContent !== text) this.wait.textContent = text;
  }

  stop() {
    clearInterval(this.timer);
  }
}
