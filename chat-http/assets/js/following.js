// @ts-check
/**
 * The chat rooms an officer's console follows in the background, besides the chat on
 * screen: each of the officer's open chats (so that their customers' messages are
 * counted unread, previewed and alerted as they come) and the oldest chats of the queue
 * (so that what a waiting customer writes shows in the queue's preview), within budgets
 * well under the server's limit of rooms per connection (100 by default). An open chat
 * is joined after the officer's read mark (its replay is what they have not read); a
 * queued one after its last entry. A room the server takes away (another officer took
 * the chat) is forgotten, and joined again only if the chat comes back. It decides
 * nothing about chats: the page says which are which. Must not touch the DOM.
 */

/** Open chats followed at most (newest activity first); the rest count from their lists. */
export const OPEN_BUDGET = 60;
/** Queued chats followed at most: the oldest, which are taken first. */
export const QUEUE_BUDGET = 20;
/** An open chat's replay holds at most this many entries (its badge then says "99+"). */
const REPLAY_MAX = 200;

export class Following {
  /**
   * @param {{ joinChat(chatId: string, afterSeq: number): void, leaveChat(chatId: string): void }} socket
   */
  constructor(socket) {
    this.socket = socket;
    /** @type {Map<string, number>} chat id -> the newest seq known: entries past it are news */
    this.rooms = new Map();
  }

  /**
   * Follows the chats that should be, and leaves the others.
   * @param {any[]} open the officer's open chats, newest activity first
   * @param {any[]} queue the queue, oldest first
   * @param {(chatId: string) => number} mark the officer's read mark of a chat
   * @param {string | null} onScreen the chat the page has joined itself (never left here)
   */
  follow(open, queue, mark, onScreen) {
    /** @type {Map<string, [number, number]>} chat id -> [afterSeq, lastSeq] */
    const wanted = new Map();
    for (const chat of open.slice(0, OPEN_BUDGET)) {
      const last = chat.lastSeq ?? 0;
      wanted.set(chat.id, [Math.min(last, Math.max(mark(chat.id), last - REPLAY_MAX)), last]);
    }
    for (const chat of queue.slice(0, QUEUE_BUDGET)) wanted.set(chat.id, [chat.lastSeq ?? 0, chat.lastSeq ?? 0]);
    for (const id of [...this.rooms.keys()]) {
      if (wanted.has(id)) continue;
      this.rooms.delete(id);
      if (id !== onScreen) this.socket.leaveChat(id);
    }
    for (const [id, [afterSeq, last]] of wanted) {
      if (this.rooms.has(id)) continue;
      this.rooms.set(id, last);
      if (id !== onScreen) this.socket.joinChat(id, afterSeq);
    }
  }

  /** @param {string} chatId @returns {boolean} whether the room is followed here */
  has(chatId) {
    return this.rooms.has(chatId);
  }

  /**
   * Whether a message is news: written since the room was followed (a replay of what was
   * there before is not), or missed while the connection was down.
   * @param {any} message
   */
  news(message) {
    const known = this.rooms.get(message.chatId);
    if (known === undefined || message.seq <= known) return false;
    this.rooms.set(message.chatId, message.seq);
    return true;
  }

  /** The server took the room away. @param {string} chatId */
  lost(chatId) {
    this.rooms.delete(chatId);
  }
}
