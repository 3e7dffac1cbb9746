// @ts-check
/**
 * The console's alerts. A chat that reaches the officer by itself (assigned by the
 * server, handed over by a colleague) is always announced in a line that screen readers
 * read out ("New chat from cust-1"). Only if the officer turns alerts on (a checkbox, off
 * by default, remembered in this browser's localStorage) that arrival, a new chat in the
 * queue and a new message in one of their chats that is not on screen (or while the
 * page is hidden) also: take the line, beep (WebAudio, at most once a second), show a
 * desktop notification while the console's tab is hidden (where the browser has granted
 * notifications) and make the tab's title flash until the page is looked at again. It
 * also keeps the title's count ("(3) Officer console"). It decides nothing about the
 * chats: the page tells it what happened and what the count is.
 */
import { h } from './dom.js';

const PREFERENCE_KEY = 'chat.officer.alerts';
/** The least time between two beeps: a burst of messages makes one sound. */
const BEEP_GAP_MS = 1000;
/** How often a hidden page's title switches between its count and the alert. */
const FLASH_MS = 1000;

/** @returns {boolean} whether the officer asked for sound and notifications here */
function wanted() {
  try {
    return localStorage.getItem(PREFERENCE_KEY) === 'on';
  } catch {
    return false;
  }
}

export class Arrivals {
  /** @param {string} title the page's title without a count */
  constructor(title) {
    this.title = title;
    /** What the title counts (unread messages, new chats in the queue). */
    this.count = 0;
    /** @type {string | null} what a hidden page's title flashes, until it is seen */
    this.flashing = null;
    this.flashOn = false;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.flashTimer = null;
    this.lastBeep = 0;
    this.onVisibility = () => {
      if (document.visibilityState === 'visible') this.stopFlash();
    };
    document.addEventListener('visibilitychange', this.onVisibility);
    this.line = h('p', { id: 'arrivals', class: 'arrivals', role: 'status', 'aria-live': 'polite' });
    /** The chat the line is about, so that opening it clears the line. @type {string | null} */
    this.about = null;
    this.checkbox = /** @type {HTMLInputElement} */ (
      h('input', { type: 'checkbox', id: 'alert-new-chats', onchange: () => this.remember() })
    );
    this.checkbox.checked = wanted();
    this.control = h('label', { class: 'alert-toggle', for: 'alert-new-chats' }, this.checkbox, 'Alerts (sound, notification) for new chats and messages');
    /** @type {AudioContext | null} made at the first beep, after the officer's click */
    this.audio = null;
  }

  remember() {
    const on = this.checkbox.checked;
    try {
      if (on) localStorage.setItem(PREFERENCE_KEY, 'on');
      else localStorage.removeItem(PREFERENCE_KEY);
    } catch {
      // Storage refused (private mode): the choice holds for this page only.
    }
    // Asked during the click, the only moment a browser lets a page ask.
    if (on && 'Notification' in window && Notification.permission === 'default') {
      Notification.requestPermission().catch(() => {});
    }
  }

  /**
   * Says that a chat has arrived; with the alerts on, beeps and notifies.
   * @param {string} chatId @param {string} text e.g. "New chat from cust-1"
   */
  announce(chatId, text) {
    this.say(chatId, text);
    if (!this.checkbox.checked) return;
    this.ring(chatId, text);
  }

  /**
   * With the alerts on, says that something the officer did not ask for happened (a new
   * chat in the queue, a customer's message in a chat not on screen), beeps, notifies
   * and, while the page is hidden, flashes the title. With them off, the lists' badges
   * and the title's count say it quietly.
   * @param {string} chatId @param {string} text e.g. "New message from cust-1"
   */
  alert(chatId, text) {
    if (!this.checkbox.checked) return;
    this.say(chatId, text);
    this.ring(chatId, text);
  }

  /** @param {string} chatId @param {string} text */
  say(chatId, text) {
    this.about = chatId;
    // A new text node each time, so that the same words are read out again.
    this.line.replaceChildren(document.createTextNode(text));
  }

  /** @param {string} chatId @param {string} text */
  ring(chatId, text) {
    const now = Date.now();
    if (now - this.lastBeep >= BEEP_GAP_MS) {
      this.lastBeep = now;
      this.beep();
    }
    this.notify(chatId, text);
    if (document.visibilityState !== 'visible') this.flash(text);
  }

  /** The title's count: the page's unread messages and new chats. @param {number} count */
  setCount(count) {
    this.count = count;
    this.showTitle();
  }

  showTitle() {
    const counted = this.count > 0 ? `(${this.count}) ${this.title}` : this.title;
    const title = this.flashing && this.flashOn ? `${this.flashing} · ${this.title}` : counted;
    if (document.title !== title) document.title = title;
  }

  /** Makes the title switch between its count and `text` until the page is visible. @param {string} text */
  flash(text) {
    this.flashing = text;
    this.flashOn = true;
    this.showTitle();
    this.flashTimer ??= setInterval(() => {
      this.flashOn = !this.flashOn;
      this.showTitle();
    }, FLASH_MS);
  }

  stopFlash() {
    if (this.flashTimer) clearInterval(this.flashTimer);
    this.flashTimer = null;
    this.flashing = null;
    this.showTitle();
  }

  /** The console is closed (signed out): no more title or timers of its own. */
  close() {
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.stopFlash();
    document.title = this.title;
  }

  /** The officer has opened the chat: its announcement has done its work. @param {string} chatId */
  seen(chatId) {
    if (this.about !== chatId) return;
    this.about = null;
    this.line.replaceChildren();
  }

  beep() {
    const Context = window.AudioContext ?? /** @type {any} */ (window).webkitAudioContext;
    if (!Context) return;
    try {
      // A context made after the officer has clicked in the page may play; one made
      // before any click stays suspended, and then the beep is silent.
      this.audio ??= new Context();
      const audio = /** @type {AudioContext} */ (this.audio);
      if (audio.state === 'suspended') audio.resume().catch(() => {});
      const now = audio.currentTime;
      const tone = audio.createOscillator();
      const volume = audio.createGain();
      tone.frequency.value = 880;
      volume.gain.setValueAtTime(0.2, now);
      volume.gain.exponentialRampToValueAtTime(0.001, now + 0.3);
      tone.connect(volume).connect(audio.destination);
      tone.start(now);
      tone.stop(now + 0.3);
    } catch {
      // No sound here: the line and the highlight still say it.
    }
  }

  /** @param {string} chatId @param {string} text */
  notify(chatId, text) {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    if (document.visibilityState === 'visible') return;
    try {
      const note = new Notification('Officer console', { body: text, tag: `chat-${chatId}` });
      note.onclick = () => window.focus();
    } catch {
      // Some browsers allow notifications only from a service worker.
    }
  }
}
