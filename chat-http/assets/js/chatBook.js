// @ts-check
/**
 * What an officer's console knows of chats: the newest version of each it has read or
 * been told about (REST answers, and every event that carries a chat), and the lists
 * derived from it. The queue is every chat whose last known status is `pending`, as the
 * contract asks; "my open chats" and "my resolved chats" are the chats whose last known
 * owner is this officer. Must not touch the DOM.
 */

export class ChatBook {
  /** @param {string} me the officer's id */
  constructor(me) {
    this.me = me;
    /** @type {Map<string, any>} chat id -> chat */
    this.chats = new Map();
  }

  clear() {
    this.chats.clear();
  }

  /**
   * Keeps `chat` unless a newer version is known already: an event can arrive after
   * the REST answer it follows from, or a list read before a change can be answered
   * after it. `updatedAt` moves on with every change of a chat (its text sorts as the
   * time does); within one millisecond, each change's system entry moves `lastSeq` on.
   * @param {any} chat
   * @returns {boolean} whether it was kept
   */
  put(chat) {
    const known = this.chats.get(chat.id);
    if (known && isOlder(chat, known)) return false;
    this.chats.set(chat.id, chat);
    return true;
  }

  /** @param {string} id */
  get(id) {
    return this.chats.get(id);
  }

  /** Pending chats, oldest first (the order they are taken in). */
  queue() {
    return [...this.chats.values()].filter((c) => c.status === 'pending').sort(byAge);
  }

  /** This officer's assigned chats, newest activity first. */
  open() {
    return [...this.chats.values()]
      .filter((c) => c.status === 'assigned' && c.assignedOfficerId === this.me)
      .sort(byActivity);
  }

  /** Chats this officer was the last to have when they ended, newest activity first. */
  resolved() {
    return [...this.chats.values()]
      .filter((c) => c.status === 'resolved' && c.assignedOfficerId === this.me)
      .sort(byActivity);
  }
}

/**
 * Whether `a` is an older version of a chat than `b`, by `updatedAt`, then `lastSeq`.
 * @param {any} a @param {any} b @returns {boolean}
 */
export function isOlder(a, b) {
  if (!a.updatedAt || !b.updatedAt || a.updatedAt !== b.updatedAt) return a.updatedAt < b.updatedAt;
  return (a.lastSeq ?? 0) < (b.lastSeq ?? 0);
}

/** @param {any} a @param {any} b */
function byAge(a, b) {
  return a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1;
}

/** @param {any} a @param {any} b */
function byActivity(a, b) {
  const x = a.updatedAt ?? a.createdAt;
  const y = b.updatedAt ?? b.createdAt;
  return x > y ? -1 : x < y ? 1 : a.id < b.id ? -1 : 1;
}
