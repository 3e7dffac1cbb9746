// @ts-check
/**
 * The console's left column: the shared queue (oldest first, with waiting time and a
 * Claim button) and "My chats" in two tabs, Open and Resolved (newest activity first),
 * each chat a button that opens it; a chat that reached the officer by itself is marked
 * "New" until it is opened. It draws what the page's ChatBook knows; it decides nothing.
 */
import { clockTime, h, waitingFor } from './dom.js';

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
    this.queueList = h('ul', { id: 'queue', class: 'chat-list', 'aria-label': 'Unassigned chats, oldest first' });
    this.queueCount = h('span', { class: 'count' }, '0');
    this.openList = h('ul', { id: 'my-chats', class: 'chat-list', role: 'tabpanel', 'aria-labelledby': 'tab-open' });
    this.resolvedList = h('ul', { id: 'my-resolved', class: 'chat-list', role: 'tabpanel', 'aria-labelledby': 'tab-resolved' });
    this.openTab = this.tabButton('open', 'tab-open', 'Open');
    this.resolvedTab = this.tabButton('resolved', 'tab-resolved', 'Resolved');
    this.element = h(
      'nav',
      { class: 'lists', 'aria-label': 'Chats' },
      h('section', { 'aria-labelledby': 'queue-title' }, h('h2', { id: 'queue-title' }, 'Queue ', this.queueCount), this.queueList),
      h(
        'section',
        { 'aria-labelledby': 'mine-title' },
        h('h2', { id: 'mine-title' }, 'My chats'),
        h('div', { class: 'tabs', role: 'tablist', 'aria-labelledby': 'mine-title' }, this.openTab, this.resolvedTab),
        this.openList,
        this.resolvedList,
      ),
    );
    this.showTab(tab);
  }

  /** @param {Tab} tab @param {string} id @param {string} label */
  tabButton(tab, id, label) {
    return h('button', { type: 'button', id, role: 'tab', class: 'tab', onclick: () => { this.showTab(tab); this.onTab(tab); } }, label);
  }

  /** @param {Tab} tab */
  showTab(tab) {
    this.tab = tab;
    for (const [name, button, panel] of /** @type {const} */ ([
      ['open', this.openTab, this.openList],
      ['resolved', this.resolvedTab, this.resolvedList],
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
   */
  render({ queue, open, resolved }, selected, fresh = new Set()) {
    this.fresh = fresh;
    this.queueCount.textContent = String(queue.length);
    this.queueList.replaceChildren(
      ...(queue.length === 0
        ? [h('li', { class: 'empty' }, 'The queue is empty.')]
        : queue.map((chat) =>
            h(
              'li',
              { 'data-chat-id': chat.id },
              h(
                'div',
                { class: 'grow' },
                h('span', { class: 'customer' }, who(chat)),
                chat.lastMessage?.preview ? h('span', { class: 'preview' }, chat.lastMessage.preview) : null,
              ),
              h('span', { class: 'waiting' }, `waiting ${waitingFor(chat.createdAt)}`),
              h('button', { type: 'button', class: 'claim', 'aria-label': `Claim chat of ${who(chat)}`, onclick: () => this.claimChat(chat) }, 'Claim'),
            ),
          )),
    );
    this.openTab.textContent = `Open (${open.length})`;
    this.resolvedTab.textContent = `Resolved (${resolved.length})`;
    this.openList.replaceChildren(
      ...(open.length === 0
        ? [h('li', { class: 'empty' }, 'You have no open chats.')]
        : open.map((chat) => this.item(chat, selected, `active ${clockTime(chat.updatedAt ?? chat.createdAt)}`))),
    );
    this.resolvedList.replaceChildren(
      ...(resolved.length === 0
        ? [h('li', { class: 'empty' }, 'No ended chats yet.')]
        : resolved.map((chat) => this.item(chat, selected, `ended ${dayAndTime(chat.resolvedAt ?? chat.updatedAt)}`))),
    );
  }

  /** @param {any} chat @param {string | null} selected @param {string} when */
  item(chat, selected, when) {
    const fresh = this.fresh.has(chat.id);
    return h(
      'li',
      { 'data-chat-id': chat.id, class: [chat.id === selected ? 'selected' : '', fresh ? 'arrived' : ''].join(' ').trim() },
      h(
        'button',
        { type: 'button', class: 'open', 'aria-current': chat.id === selected ? 'true' : 'false', onclick: () => this.openChat(chat) },
        h('span', { class: 'customer' }, who(chat)),
        fresh ? h('span', { class: 'badge new' }, 'New') : null,
        h('span', { class: 'waiting' }, when),
      ),
    );
  }
}

/** @param {string} iso @returns {string} e.g. "24 Nov, 14:03" */
function dayAndTime(iso) {
  const d = new Date(iso);
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })}, ${clockTime(iso)}`;
}
