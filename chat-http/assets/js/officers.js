// @ts-check
/**
 * How an officer's state is put into words, alike on every page: their load against
 * their capacity ("1 of 3", "1 (no limit)") and their presence ("online, away, 2 of 5").
 * The server's Officer object is the only source; this decides nothing. Must not touch
 * the DOM.
 */

/** @param {any} officer @returns {string} the display name, or the id */
export const nameOf = (officer) => officer.displayName ?? officer.id;

/**
 * @param {any} officer
 * @returns {string} e.g. "1 of 2", "3 (no limit)"
 */
export function load(officer) {
  const open = officer.openChats ?? 0;
  return officer.capacity === null || officer.capacity === undefined ? `${open} (no limit)` : `${open} of ${officer.capacity}`;
}

/**
 * Whether they have a live connection (offline until the server says `connected`),
 * whether they are away, and their load.
 * @param {any} officer
 * @returns {string} e.g. "online, 2 of 5", "offline, away, 0 (no limit)"
 */
export function presence(officer) {
  return [officer.connected === true ? 'online' : 'offline', officer.availability === 'away' ? 'away' : null, load(officer)]
    .filter(Boolean)
    .join(', ');
}
