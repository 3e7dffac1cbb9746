// @ts-check
/**
 * The customer's earlier conversations, shown beside the chat an officer has open (in
 * the console's side column): when
 * each began, how it stands, the last thing said when the server gives it, and, on
 * request, its messages read-only (when this officer may read them: the server says).
 */
import * as api from '../api.js';
import { previewContent } from './chatLists.js';
import { h } from './dom.js';
import { MessageList } from './messageList.js';

const STATUS = { pending: 'waiting', assigned: 'open', resolved: 'ended' };

export class EarlierChats {
  /**
   * @param {string} token @param {import('./messageList.js').NameOf} nameOf
   * @param {import('./attachment.js').FileSource} files where attachments' bytes come from
   */
  constructor(token, nameOf, files) {
    this.token = token;
    this.nameOf = nameOf;
    this.files = files;
    this.viewer = '';
    this.heading = h('h2', { id: 'earlier-title' }, 'Earlier conversations');
    this.list = h('ul', { id: 'earlier-chats', class: 'earlier-list' });
    this.element = h('section', { class: 'earlier', 'aria-labelledby': 'earlier-title', hidden: true }, this.heading, this.list);
    /** Bumped on every load, so a slow answer for a chat no longer shown is dropped. */
    this.generation = 0;
  }

  /**
   * Shows the customer's chats other than `current`, newest first.
   * @param {string} customerId @param {string} current @param {string} viewer
   */
  async load(customerId, current, viewer) {
    const generation = ++this.generation;
    this.viewer = viewer;
    this.element.hidden = true;
    let chats;
    try {
      chats = await api.customerChats(this.token, customerId);
    } catch {
      // Context only: the conversation itself works without it.
      return;
    }
    if (generation !== this.generation) return;
    const earlier = chats.filter((/** @type {any} */ c) => c.id !== current);
    this.heading.textContent = `Earlier conversations (${earlier.length})`;
    this.list.replaceChildren(...earlier.map((/** @type {any} */ c) => this.item(c)));
    this.element.hidden = earlier.length === 0;
  }

  clear() {
    this.generation += 1;
    this.element.hidden = true;
    this.list.replaceChildren();
  }

  /** @param {any} chat */
  item(chat) {
    const day = new Date(chat.createdAt).toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' });
    const status = /** @type {Record<string, string>} */ (STATUS)[chat.status] ?? chat.status;
    const body = h('div', { class: 'earlier-body', hidden: true });
    const toggle = /** @type {HTMLButtonElement} */ (
      h('button', { type: 'button', class: 'link show', 'aria-expanded': 'false', onclick: () => this.toggle(chat, toggle, body) }, 'Show messages')
    );
    return h(
      'li',
      { 'data-chat-id': chat.id },
      h(
        'div',
        { class: 'earlier-head' },
        h('time', { datetime: chat.createdAt }, day),
        h('span', { class: `badge ${chat.status}` }, status),
        toggle,
      ),
      chat.lastMessage?.preview ? h('p', { class: 'preview' }, ...previewContent(chat.lastMessage.preview)) : null,
      body,
    );
  }

  /** @param {any} chat @param {HTMLButtonElement} toggle @param {HTMLElement} body */
  async toggle(chat, toggle, body) {
    const open = body.hidden;
    body.hidden = !open;
    toggle.textContent = open ? 'Hide messages' : 'Show messages';
    toggle.setAttribute('aria-expanded', String(open));
    if (!open || body.childElementCount > 0) return;
    const list = new MessageList('Earlier conversation');
    list.setViewer(this.viewer, this.nameOf);
    list.files = this.files;
    list.element.classList.add('compact');
    try {
      list.reset(await api.latestMessages(this.token, chat.id));
      body.replaceChildren(list.element);
    } catch (err) {
      const denied = err instanceof api.ApiError && err.status === 403;
      body.replaceChildren(
        h('p', { class: 'hint' }, denied ? 'Only the officer who handled this conversation can read it.' : String(err instanceof Error ? err.message : err)),
      );
    }
  }
}
