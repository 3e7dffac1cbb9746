// @ts-check
/**
 * Officers' display names as the customer page can learn them. Nothing on the wire
 * gives a customer an officer's name (GET /api/officers is for officers, and a Chat
 * carries only `assignedOfficerId`); the one place it appears is the sentence of a
 * system entry, written by the server with display names ("Alice took the chat", "Alice
 * transferred the chat to Bob"). This reads a name back out of those sentences, by the
 * entry's `event`; a sentence of another shape teaches nothing, and the page falls back
 * to the officer's id. Must not touch the DOM.
 */

/**
 * @param {any} entry a message; only system entries with an `event` teach anything
 * @returns {[string, string][]} (officer id, display name) pairs
 */
export function officerNamesIn(entry) {
  const event = entry?.event;
  if (entry?.senderType !== 'system' || !event || typeof entry.content !== 'string') return [];
  const text = entry.content;
  const byActor = entry.senderId === event.officerId;
  /** @type {[string, string][]} */
  const found = [];
  /** @param {string | undefined} id @param {string | null} name */
  const learn = (id, name) => {
    if (id && name && name.trim()) found.push([id, name.trim()]);
  };
  /** @param {string} tail @returns {string | null} the text before `tail` */
  const before = (tail) => (text.endsWith(tail) ? text.slice(0, -tail.length) : null);
  /** @param {string} middle @returns {string | null} the text after `middle` */
  const after = (middle) => {
    const at = text.lastIndexOf(middle);
    return at >= 0 ? text.slice(at + middle.length) : null;
  };
  switch (event.kind) {
    case 'claimed':
      learn(event.officerId, before(' took the chat'));
      break;
    case 'transferred': {
      learn(event.officerId, after(' transferred the chat to '));
      const at = text.indexOf(' transferred the chat to ');
      if (entry.senderId === event.fromOfficerId && at > 0) learn(event.fromOfficerId, text.slice(0, at));
      break;
    }
    case 'reopened':
      learn(event.officerId, byActor ? before(' reopened the chat') : after(' reopened the chat for '));
      break;
    case 'released':
      if (byActor) learn(event.officerId, before(' put the chat back in the queue'));
      break;
    case 'resolved':
      if (byActor) learn(event.officerId, before(' ended the chat'));
      break;
    default:
      break;
  }
  return found;
}
