// @ts-check
/**
 * Announces the chats that reach an officer by themselves (assigned by the server, handed
 * over by a colleague): a line that screen readers read out ("New chat from cust-1"),
 * and, only if the officer turns it on (a checkbox, off by default, remembered in this
 * browser's localStorage), a short beep made with WebAudio and a desktop notification
 * while the console's tab is hidden, where the browser has granted notifications. It
 * decides nothing about the chats: the page tells it what arrived.
 */
import { h } from './dom.js';

const PREFERENCE_KEY = 'chat.officer.alerts';

/** @returns {boolean} whether the officer asked for sound and notifications here */
function wanted() {
  try {
    return localStorage.getItem(PREFERENCE_KEY) === 'on';
  } catch {
    return false;
  }
}

export class Arrivals {
  constructor() {
    this.line = h('p', { id: 'arrivals', class: 'arrivals', role: 'status', 'aria-live': 'polite' });
    /** The chat the line is about, so that opening it clears the line. @type {string | null} */
    this.about = null;
    this.checkbox = /** @type {HTMLInputElement} */ (
      h('input', { type: 'checkbox', id: 'alert-new-chats', onchange: () => this.remember() })
    );
    this.checkbox.checked = wanted();
    this.control = h('label', { class: 'alert-toggle', for: 'alert-new-chats' }, this.checkbox, 'Sound and notification for new chats');
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
    this.about = chatId;
    // A new text node each time, so that the same words are read out again.
    this.line.replaceChildren(document.createTextNode(text));
    if (!this.checkbox.checked) return;
    this.beep();
    this.notify(chatId, text);
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
