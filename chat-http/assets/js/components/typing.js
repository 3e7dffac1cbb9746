// @ts-check
/**
 * Typing, both ways. `TypingIndicator` shows "Alice is typing…" under the timeline
 * when a `typing` event arrives, and hides it by itself after the event's
 * `expiresInMs`, or at once when that sender's message arrives, so it can never stick.
 * `TypingSignal` turns keystrokes into at most one `typing` frame every few seconds.
 */
import { h } from './dom.js';

/** How long an indicator stays without news when the event does not say. */
const DEFAULT_SHOWN_MS = 6000;

export class TypingIndicator {
  constructor() {
    this.element = h('p', { class: 'typing', role: 'status', 'aria-live': 'polite' });
    /** @type {Map<string, { name: string, timer: ReturnType<typeof setTimeout> }>} */
    this.typists = new Map();
  }

  /**
   * A `typing` event: show its sender, named as the page names them.
   * @param {{ senderType: string, senderId: string, expiresInMs?: number }} event
   * @param {string} name
   */
  show(event, name) {
    const key = `${event.senderType}:${event.senderId}`;
    const old = this.typists.get(key);
    if (old) clearTimeout(old.timer);
    // Whatever the event says, a bounded time: never shorter than a second, never stuck.
    const ms = Math.min(Math.max(Number(event.expiresInMs) || DEFAULT_SHOWN_MS, 1000), 30000);
    this.typists.set(key, { name, timer: setTimeout(() => this.stop(key), ms) });
    this.render();
  }

  /** A message arrived: its sender is no longer typing. @param {any} message */
  heard(message) {
    this.stop(`${message.senderType}:${message.senderId}`);
  }

  /** @param {string} key */
  stop(key) {
    const typist = this.typists.get(key);
    if (!typist) return;
    clearTimeout(typist.timer);
    this.typists.delete(key);
    this.render();
  }

  /** Another chat is shown: nobody types in it yet. */
  clear() {
    for (const key of [...this.typists.keys()]) this.stop(key);
  }

  render() {
    const names = [...this.typists.values()].map((t) => t.name);
    const text =
      names.length === 0
        ? ''
        : names.length === 1
          ? `${names[0]} is typing…`
          : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are typing…`;
    if (this.element.textContent !== text) this.element.textContent = text;
  }
}

export class TypingSignal {
  /**
   * @param {() => boolean} send sends one `typing` frame; false when it could not
   * @param {number} [everyMs] the least time between two frames
   */
  constructor(send, everyMs = 3000) {
    this.send = send;
    this.everyMs = everyMs;
    this.last = -Infinity;
  }

  /** A key was pressed. */
  ping() {
    const now = Date.now();
    if (now - this.last < this.everyMs) return;
    if (this.send()) this.last = now;
  }

  /** A message was sent: the next keystroke is news again. */
  reset() {
    this.last = -Infinity;
  }
}
