// @ts-check
/**
 * A tiny element builder. Text is only ever set as text nodes, never parsed as HTML, so
 * nothing a customer or officer types can inject markup.
 */

/**
 * @param {string} tag
 * @param {Record<string, string | boolean | ((e: Event) => void)>} [attrs]
 *   `on<event>` keys become listeners; `true`/`false` toggle boolean attributes.
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else if (value !== false) {
      el.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

/** @param {string} iso @returns {string} e.g. 14:03 */
export function clockTime(iso) {
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * The local calendar day of an instant, as a key ("2026-11-23").
 * @param {Date} d
 */
export function dayKey(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/**
 * A day separator's words: "Today", "Yesterday", else the date, e.g. "Mon 23 Nov 2026".
 * @param {string} iso any instant of that day @param {number} [now] ms since the epoch
 */
export function dayLabel(iso, now = Date.now()) {
  const d = new Date(iso);
  const today = new Date(now);
  if (dayKey(d) === dayKey(today)) return 'Today';
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
  const parts = new Intl.DateTimeFormat('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).formatToParts(d);
  const part = (/** @type {string} */ type) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('weekday')} ${part('day')} ${part('month')} ${part('year')}`;
}

/**
 * When something was said: relative while recent ("just now", "5 min ago"), the clock
 * time after an hour (the day separator above says which day).
 * @param {string} iso @param {number} [now] ms since the epoch
 */
export function relativeTime(iso, now = Date.now()) {
  // A server clock slightly ahead of this one gives a small negative age: "just now".
  const seconds = (now - new Date(iso).getTime()) / 1000;
  if (seconds < 45) return 'just now';
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  return clockTime(iso);
}

/** @param {string} iso @returns {string} the full date and time, for a title */
export function fullDateTime(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: 'full', timeStyle: 'short' });
}

/**
 * A `<time>` showing `iso` relative while recent, refreshed by itself (see
 * keepTimesFresh), with the full date and time as its title. The changing words are
 * hidden from screen readers, which read the clock time instead: a live log would
 * otherwise announce "1 min ago", "2 min ago", ...
 * @param {string} iso
 */
export function timeElement(iso) {
  keepTimesFresh();
  return h(
    'time',
    { datetime: iso, title: fullDateTime(iso) },
    h('span', { class: 'ago', 'aria-hidden': 'true', 'data-ago': iso }, relativeTime(iso)),
    h('span', { class: 'visually-hidden' }, clockTime(iso)),
  );
}

let ticking = false;

/**
 * Starts (once per page) the refresh of relative times and day labels: every 30 s, and
 * at once when the page becomes visible again (timers are slowed in hidden tabs).
 */
export function keepTimesFresh() {
  if (ticking) return;
  ticking = true;
  setInterval(refreshTimes, 30000);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshTimes();
  });
}

/** Writes relative times and day labels again, where their words have changed. */
export function refreshTimes() {
  const now = Date.now();
  for (const el of document.querySelectorAll('[data-ago]')) {
    const text = relativeTime(el.getAttribute('data-ago') ?? '', now);
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of document.querySelectorAll('[data-day-label]')) {
    const text = dayLabel(el.getAttribute('data-day-label') ?? '', now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** @param {string} iso @returns {string} e.g. "4 min" */
export function waitingFor(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A fresh idempotency key for one send. */
export function newClientMessageId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}
