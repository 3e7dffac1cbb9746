// @ts-check
/**
 * What an officer's console knows of chats: the newest version of each it has read or
 * been told about (REST answers, and every event that carries a chat), and the lists
 * derived from it. The queue is every chat whose last known status is `pending`, as the
 * contract asks; "my open chats" and "my resolved chats" are the chats whose last known
 * owner is this officer. It also keeps, per chat, the newest entry known (from a list's
 * `lastMessage`, then from each message seen live), which orders "My chats" by latest
 * activity, and the customer's messages the officer has not read yet (above the
 * officer's read mark, as the server or this console last moved it). A preview made
 * here from a live message reads as the server's would ("📎 payslip.pdf" for a file).
 * Must not touch the DOM.
 */

/**
 * A chat's newest entry as far as this console knows: a list's `lastMessage`, or a
 * message seen live (which also says who wrote it).
 * @typedef {{ seq: number, senderType: string, senderId?: string, createdAt: string, preview: string }} Latest
 */

/** How long a preview made here from a live message may be, as the server cuts them. */
const PREVIEW_CHARS = 140;

/** What the server's previews put before an attachment's name (chatcore's `LastMessage`). */
export const ATTACHMENT_MARK = '📎 ';

/**
 * A message's preview as the server makes a list's `lastMessage.preview`: its text, or
 * for an attachment the mark and the file's name; cut at 140 characters (Unicode scalar
 * values, as the server counts), a cut ending in "…".
 * @param {any} message @returns {string}
 */
export function previewOf(message) {
  const text = message.attachment ? `${ATTACHMENT_MARK}${message.attachment.name}` : String(message.content ?? '');
  const chars = Array.from(text);
  return chars.length > PREVIEW_CHARS ? `${chars.slice(0, PREVIEW_CHARS - 1).join('').trimEnd()}…` : text;
}

export class ChatBook {
  /** @param {string} me the officer's id */
  constructor(me) {
    this.me = me;
    /** @type {Map<string, any>} chat id -> chat */
    this.chats = new Map();
    /** @type {Map<string, Latest>} chat id -> its newest known entry */
    this.latest = new Map();
    /** @type {Map<string, number>} chat id -> the officer's read mark, as far as known */
    this.marks = new Map();
    /** @type {Map<string, Set<number>>} chat id -> seqs of customer messages above the mark */
    this.unseen = new Map();
  }

  /** Forgets the chats (before a re-read); what is known of their messages stays, by seq. */
  clear() {
    this.chats.clear();
  }

  /**
   * Keeps `chat` unless a newer version is known already: an event can arrive after
   * the REST answer it follows from, or a list read before a change can be answered
   * after it. `updatedAt` moves on with every change of a chat (its text sorts as the
   * time does); within one millisecond, each change's system entry moves `lastSeq` on.
   * A list's `lastMessage` and read mark are taken whatever the version, since both only
   * move forward.
   * @param {any} chat
   * @returns {boolean} whether it was kept
   */
  put(chat) {
    if (chat.lastMessage) this.noteLatest(chat.id, chat.lastMessage);
    if (typeof chat.officerLastReadSeq === 'number') this.markRead(chat.id, chat.officerLastReadSeq);
    if (chat.lastMessage?.senderType === 'customer') this.noteUnseen(chat.id, chat.lastMessage.seq);
    const known = this.chats.get(chat.id);
    if (known && isOlder(chat, known)) return false;
    this.chats.set(chat.id, chat);
    return true;
  }

  /** @param {string} id */
  get(id) {
    return this.chats.get(id);
  }

  /**
   * A message of a chat, seen live or replayed: it may be the chat's newest entry, and a
   * customer's message above the officer's mark is unread.
   * @param {any} message
   */
  noteMessage(message) {
    this.noteLatest(message.chatId, {
      seq: message.seq,
      senderType: message.senderType,
      senderId: message.senderId,
      createdAt: message.createdAt,
      preview: previewOf(message),
    });
    if (message.senderType === 'customer') this.noteUnseen(message.chatId, message.seq);
  }

  /** @param {string} chatId @param {Latest} entry */
  noteLatest(chatId, entry) {
    const known = this.latest.get(chatId);
    if (!known || known.seq < entry.seq) this.latest.set(chatId, entry);
  }

  /** @param {string} chatId @param {number} seq a customer's message */
  noteUnseen(chatId, seq) {
    if (seq <= (this.marks.get(chatId) ?? 0)) return;
    let seqs = this.unseen.get(chatId);
    if (!seqs) this.unseen.set(chatId, (seqs = new Set()));
    seqs.add(seq);
  }

  /**
   * The officer has read the chat up to `seq` (the server's mark, a `chat:read` event,
   * or the chat shown on a visible page). Marks only move forward.
   * @param {string} chatId @param {number} seq
   */
  markRead(chatId, seq) {
    if (seq <= (this.marks.get(chatId) ?? 0)) return;
    this.marks.set(chatId, seq);
    const seqs = this.unseen.get(chatId);
    if (!seqs) return;
    for (const s of seqs) if (s <= seq) seqs.delete(s);
    if (seqs.size === 0) this.unseen.delete(chatId);
  }

  /** @param {string} chatId @returns {number} the officer's read mark as far as known */
  mark(chatId) {
    return this.marks.get(chatId) ?? 0;
  }

  /** @param {string} chatId @returns {Latest | undefined} */
  latestOf(chatId) {
    return this.latest.get(chatId);
  }

  /** @param {string} chatId @returns {number} the customer's messages the officer has not read */
  unread(chatId) {
    return this.unseen.get(chatId)?.size ?? 0;
  }

  /** Unread messages over this officer's open chats (ended ones take no more messages). */
  totalUnread() {
    return this.open().reduce((sum, chat) => sum + this.unread(chat.id), 0);
  }

  /** When a chat last moved: its last change, or its newest entry if that is later. @param {any} chat */
  activity(chat) {
    const changed = chat.updatedAt ?? chat.createdAt;
    const written = this.latest.get(chat.id)?.createdAt;
    return written && written > changed ? written : changed;
  }

  /** Pending chats, oldest first (the order they are taken in). */
  queue() {
    return [...this.chats.values()].filter((c) => c.status === 'pending').sort(byAge);
  }

  /** This officer's assigned chats, newest activity first. */
  open() {
    return [...this.chats.values()]
      .filter((c) => c.status === 'assigned' && c.assignedOfficerId === this.me)
      .sort(this.byActivity);
  }

  /** Chats this officer was the last to have when they ended, newest activity first. */
  resolved() {
    return [...this.chats.values()]
      .filter((c) => c.status === 'resolved' && c.assignedOfficerId === this.me)
      .sort(this.byActivity);
  }

  /** @param {any} a @param {any} b */
  byActivity = (a, b) => {
    const x = this.activity(a);
    const y = this.activity(b);
    return x > y ? -1 : x < y ? 1 : a.id < b.id ? -1 : 1;
  };
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
