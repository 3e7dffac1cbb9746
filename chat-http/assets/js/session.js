// @ts-check
/**
 * Where a page keeps its login: sessionStorage only (per tab, gone when the tab closes,
 * never in a URL). Must not touch the DOM.
 */

/** @param {string} key @returns {any | null} the stored session, or null */
export function load(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? 'null');
  } catch {
    return null;
  }
}

/** @param {string} key @param {object} session */
export function save(key, session) {
  sessionStorage.setItem(key, JSON.stringify(session));
}

/** @param {string} key */
export function clear(key) {
  sessionStorage.removeItem(key);
}
