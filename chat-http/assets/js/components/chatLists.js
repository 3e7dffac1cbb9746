// @ts-check
/**
 * The console's left column: the shared queue (oldest first, with waiting time and a
 * Claim button) and "My chats" in two tabs, Open and Resolved (newest activity first),
 * each chat a button that opens it; a chat that reached the officer by itself is marked
 * "New" until it is opened. Each chat shows who it is with, a one-line preview of its
 * newest entry ("You: ..." for the officer's own) and how long ago it last moved; an
 * open chat shows how many of the customer's messages the officer has not read. It
 * draws what the page's ChatBook knows, always as text (a preview is what a customer
 * typed; a file's shows a paperclip and its name); it decides nothing.
 */
import { ATTACHMENT_MARK } from '../chatBook.js';
import { icon } from './attachment.js';
import { clockTime, h, waitingFor } from './dom.js';

/**
 * What the lists show of each chat besides the chat itself, from the page's ChatBook.
 * @typedef {{
 *   unread: (chatId: string) => number,
 *   latest: (chatId: string) => import('../chatBook.js').Latest | undefined,
 *   activity: (chat: any) => string,
 *   speaker: (latest: import('../chatBook.js').Latest, chat: any) => string,
 * }} Details
 */

/** @type {Details} */
const NO_DETAILS = {
  unread: () => 0,
  latest: () => undefined,
  activity: (chat) => chat.updatedAt ?? chat.createdAt,
  speaker: () => '',
};

/** @typedef {'open' | 'resolved'} Tab */

/** Who a chat is with: the name the host application vouched for, and the id. */
export const who = (/** @type {any} */ chat) =>
  chat.customerName ? `${chat.customerName} (${chat.customerId})` : chat.customerId;

export class ChatLists {
  /**
   * @param {{
   *   claim: (chat: any) => void,
   *   open: (chat: any) => void,
   *   tab: Tab,
   *   onTab: (tab: Tab) => void,
   * }} options
   */
  constructor({ claim, open, tab, onTab }) {
    this.claimChat = claim;
    this.openChat = open;
    this.onTab = onTab;
    /** @type {Tab} */
    this.tab = tab;
    /** @type {Set<string>} */
    this.fresh = new Set();
    /** @type {Details} */
    this.details = NO_DETAILS;
    this.queueList = h('ul', { id: 'queue', class: 'chat-list', 'aria-label': 'Unassigned chats, oldest first' });
    this.queueCount = h('span', { class: 'count' }, '0');
    // Focusable from script only (after signing in), not a stop of the Tab key.
    this.queueTitle = h('h2', { id: 'queue-title', tabindex: '-1' }, 'Queue ', this.queueCount);
    this.openList = h('ul', { id: 'my-chats', class: 'chat-list' });
    this.resolvedList = h('ul', { id: 'my-resolved', class: 'chat-list' });
    // The tab panels wrap the lists (a list with role tabpanel orphans its items).
    this.openPanel = h('div', { id: 'panel-open', role: 'tabpanel', 'aria-labelledby': 'tab-open' }, this.openList);
    this.resolvedPanel = h('div', { id: 'panel-resolved', role: 'tabpanel', 'aria-labelledby': 'tab-resolved' }, this.resolvedList);
    this.openTab = this.tabButton('open', 'tab-open', 'Open');
    this.resolvedTab = this.tabButton('resolved', 'tab-resolved', 'Resolved');
    this.element = h(
      'nav',
      { class: 'lists', 'aria-label': 'Chats' },
      h('section', { 'aria-labelledby': 'queue-title' }, this.queueTitle, this.queueList),
      h(
        'section',
        { 'aria-labelledby': 'mine-title' },
        h('h2', { id: 'mine-title' }, 'My chats'),
        h('div', { class: 'tabs', role: 'tablist', 'aria-labelledby': 'mine-title' }, this.openTab, this.resolvedTab),
        this.openPanel,
        this.resolvedPanel,
      ),
    );
    this.showTab(tab);
  }

  /** @param {Tab} tab @param {string} id @param {string} label */
  tabButton(tab, id, label) {
    return h('button', { type: 'button', id, role: 'tab', class: 'tab', 'aria-controls': `panel-${tab}`, onclick: () => { this.showTab(tab); this.onTab(tab); } }, label);
  }

  /** Puts the keyboard at the queue's heading, where an officer's work starts. */
  focusQueue() {
    this.queueTitle.focus();
  }

  /** @param {Tab} tab */
  showTab(tab) {
    this.tab = tab;
    for (const [name, button, panel] of /** @type {const} */ ([
      ['open', this.openTab, this.openPanel],
      ['resolved', this.resolvedTab, this.resolvedPanel],
    ])) {
      button.setAttribute('aria-selected', String(name === tab));
      button.classList.toggle('active', name === tab);
      panel.hidden = name !== tab;
    }
  }

  /**
   * @param {{ queue: any[], open: any[], resolved: any[] }} chats
   * @param {string | null} selected the chat shown on the right
   * @param {Set<string>} [fresh] chats that arrived by themselves and are not opened yet
   * @param {Details} [details] previews, unread counts and activity
   */
  render({ queue, open, resolved }, selected, fresh = new Set(), details = NO_DETAILS) {
    const focused = this.focused();
    this.fresh = fresh;
    this.details = details;
    this.queueCount.textContent = String(queue.length);
    patch(
      this.queueList,
      queue.length === 0
        ? [h('li', { class: 'empty' }, 'The queue is empty.')]
        : queue.map((chat) =>
            h(
              'li',
              { 'data-chat-id': chat.id },
              h('div', { class: 'grow' }, h('span', { class: 'customer' }, who(chat)), this.preview(chat)),
              h('span', { class: 'when' }, h('span', { class: 'waiting' }, `waiting ${waitingFor(chat.createdAt)}`), this.ago(chat)),
              h('button', { type: 'button', class: 'claim', 'aria-label': `Claim chat of ${who(chat)}`, onclick: () => this.claimChat(chat) }, 'Claim'),
            ),
          ),
    );
    this.openTab.textContent = `Open (${open.length})`;
    this.resolvedTab.textContent = `Resolved (${resolved.length})`;
    patch(
      this.openList,
      open.length === 0
        ? [h('li', { class: 'empty' }, 'You have no open chats.')]
        : open.map((chat) => this.item(chat, selected, null)),
    );
    patch(
      this.resolvedList,
      resolved.length === 0
        ? [h('li', { class: 'empty' }, 'No ended chats yet.')]
        : resolved.map((chat) => this.item(chat, selected, `ended ${dayAndTime(chat.resolvedAt ?? chat.updatedAt)}`)),
    );
    // The rows are drawn anew on every message; the keyboard stays where it was.
    if (focused) /** @type {HTMLElement | null} */ (this.element.querySelector(focused))?.focus();
  }

  /** @returns {string | null} a selector for the row's button that has the focus, if any */
  focused() {
    const active = document.activeElement;
    if (!(active instanceof HTMLButtonElement) || !this.element.contains(active)) return null;
    const row = active.closest('li[data-chat-id]');
    const list = row?.parentElement?.id;
    const kind = active.classList.contains('claim') ? 'claim' : active.classList.contains('open') ? 'open' : null;
    if (!(row instanceof HTMLElement) || !list || !kind) return null;
    return `#${list} li[data-chat-id="${CSS.escape(row.dataset.chatId ?? '')}"] button.${kind}`;
  }

  /**
   * @param {any} chat @param {string | null} selected
   * @param {string | null} when for an ended chat, when it ended; an open one says how
   *   long ago it last moved
   */
  item(chat, selected, when) {
    const fresh = this.fresh.has(chat.id);
    const unread = when === null ? this.details.unread(chat.id) : 0;
    return h(
      'li',
      {
        'data-chat-id': chat.id,
        'data-unread': String(unread),
        class: [chat.id === selected ? 'selected' : '', fresh ? 'arrived' : '', unread > 0 ? 'unread' : ''].join(' ').trim(),
      },
      h(
        'button',
        { type: 'button', class: 'open', 'aria-current': chat.id === selected ? 'true' : 'false', onclick: () => this.openChat(chat) },
        h(
          'span',
          { class: 'line' },
          h('span', { class: 'customer' }, who(chat)),
          fresh ? h('span', { class: 'badge new' }, 'New') : null,
          unread > 0
            ? h('span', { class: 'badge unread' }, unread > 99 ? '99+' : String(unread), h('span', { class: 'visually-hidden' }, ' unread'))
            : null,
        ),
        this.preview(chat),
        h('span', { class: 'when' }, when === null ? this.ago(chat) : h('span', { class: 'waiting' }, when)),
      ),
    );
  }

  /** One line of the chat's newest entry, as text, or nothing for a chat without one. @param {any} chat */
  preview(chat) {
    const latest = this.details.latest(chat.id) ?? chat.lastMessage;
    if (!latest?.preview) return null;
    const speaker = this.details.speaker(latest, chat);
    return h('span', { class: `preview ${latest.senderType}` }, speaker ? `${speaker}: ` : null, ...previewContent(oneLine(latest.preview)));
  }

  /** How long ago the chat last moved (a message, a change), e.g. "3 min ago". @param {any} chat */
  ago(chat) {
    const at = this.details.activity(chat);
    return h('time', { class: 'ago', datetime: at, title: `${dayAndTime(at)}` }, ago(at));
  }
}

/**
 * Puts `rows` in `list`, keeping each row already there that shows the same (same chat,
 * same words and marks), so that a redraw leaves the rows that did not change alone:
 * their focus, a pointer over them, a screen reader's place. A kept row's buttons act on
 * the chat's id; the page looks its newest version up.
 * @param {HTMLElement} list @param {HTMLElement[]} rows
 */
function patch(list, rows) {
  /** @type {Map<string, Element>} */
  const shown = new Map();
  for (const row of list.children) shown.set(row.getAttribute('data-chat-id') ?? '', row);
  const next = rows.map((row) => {
    const same = shown.get(row.getAttribute('data-chat-id') ?? '');
    return same && same.isEqualNode(row) ? same : row;
  });
  if (next.length === list.children.length && next.every((row, i) => row === list.children[i])) return;
  list.replaceChildren(...next);
}

/**
 * A preview's words as nodes: an attachment's ("📎 payslip.pdf") with the paperclip
 * drawn as an icon, which every screen shows alike, and kept as text for screen readers
 * and copying; any other as it is.
 * @param {string} preview @returns {(Node | string)[]}
 */
export function previewContent(preview) {
  if (!preview.startsWith(ATTACHMENT_MARK)) return [preview];
  return [
    icon('clip'),
    h('span', { class: 'visually-hidden' }, ATTACHMENT_MARK),
    preview.slice(ATTACHMENT_MARK.length),
  ];
}

/** @param {string} text @returns {string} the text with line breaks as spaces */
const oneLine = (text) => text.replace(/\s+/g, ' ').trim();

/**
 * @param {string} iso @returns {string} e.g. "just now", "4 min ago", "2 h ago",
 *   "yesterday", "24 Nov"
 */
export function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 45) return 'just now';
  const minutes = Math.max(1, Math.round(seconds / 60));
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  if (hours < 48) return 'yesterday';
  return new Date(iso).toLocaleDateString([], { month: 'short', day: 'numeric' });
}

/** @param {string} iso @returns {string} e.g. "24 Nov, 14:03" */
function dayAndTime(iso) {
  const d = new Date(iso);
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })}, ${clockTime(iso)}`;
}
