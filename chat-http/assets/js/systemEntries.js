// @ts-check
/**
 * Officers' display names as the customer page can learn them. A customer may not list
 * officers (GET /api/officers is for officers), and a Chat carries only
 * `assignedOfficerId`; each system entry's `event` names the officers it concerns as
 * they were called when the change was made (`officerName`, `fromOfficerName`). An
 * officer without a display name is shown by id. Must not touch the DOM.
 */

/**
 * @param {any} entry a message; only system entries with an `event` teach anything
 * @returns {[string, string][]} (officer id, display name) pairs
 */
export function officerNamesIn(entry) {
  const event = entry?.event;
  if (entry?.senderType !== 'system' || !event) return [];
  /** @type {[string, string][]} */
  const found = [];
  /** @param {unknown} id @param {unknown} name */
  const learn = (id, name) => {
    if (typeof id === 'string' && typeof name === 'string' && name.trim()) found.push([id, name.trim()]);
  };
  learn(event.officerId, event.officerName);
  learn(event.fromOfficerId, event.fromOfficerName);
  return found;
}
