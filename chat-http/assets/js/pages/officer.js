// @ts-check
/**
 * The officer console: log in, then the shared queue (oldest first, with waiting time),
 * the officer's own chats, a Claim button, and the selected chat with a composer. The
 * queue updates live; a claim lost to a colleague says so plainly. The token lives in
 * sessionStorage only. Business rules stay on the server.
 */
import * as api from '../api.js';
import { Composer } from '../components/composer.js';
import { ConnectionBadge } from '../components/connection.js';
import { h, waitingFor } from '../components/dom.js';
import { loginForm } from '../components/loginForm.js';
import { MessageList } from '../components/messageList.js';
import * as stored from '../session.js';
import { ChatSocket } from '../socket.js';

const STORAGE_KEY = 'chat.officer';
const root = /** @type {HTMLElement} */ (document.getElementById('app'));

/** @typedef {{ token: string, officerId: string }} Session */


/** @param {string} [notice] */
function showLogin(notice) {
  const id = /** @type {HTMLInputElement} */ (
    h('input', { id: 'officer-id', name: 'officerId', required: true, autocomplete: 'username', maxlength: '64' })
  );
  const password = /** @type {HTMLInputElement} */ (
    h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password' })
  );
  root.replaceChildren(
    loginForm({
      title: 'Officer console',
      fields: [
        h('label', { for: 'officer-id' }, 'Officer id'),
        id,
        h('label', { for: 'password' }, 'Password'),
        password,
        h('p', { class: 'hint' }, 'Leave the password empty if your officer has none (open mode only).'),
      ],
      submit: 'Sign in',
      notice,
      login: async () => {
        const result = await api.officerLogin(id.value.trim(), password.value || undefined);
        const session = { token: result.token, officerId: result.officer.id };
        stored.save(STORAGE_KEY, session);
        showConsole(session);
      },
    }),
  );
  id.focus();
}

/** @param {Session} session */
function showConsole(session) {
  const me = session.officerId;
  /** @type {Map<string, any>} pending chats by id */
  const pending = new Map();
  /** @type {Map<string, any>} my chats by id */
  const mine = new Map();
  /** @type {string | null} */
  let selected = null;

  const badge = new ConnectionBadge();
  const notice = h('p', { id: 'notice', class: 'notice', role: 'alert' });
  const queueList = h('ul', { id: 'queue', class: 'chat-list', 'aria-label': 'Unassigned chats, oldest first' });
  const mineList = h('ul', { id: 'my-chats', class: 'chat-list', 'aria-label': 'Your chats' });
  const queueCount = h('span', { class: 'count' }, '0');
  const title = h('h2', { id: 'chat-title' }, 'No chat selected');
  const chatStatus = h('p', { id: 'chat-status', class: 'status', role: 'status', 'aria-live': 'polite' }, 'Claim a chat from the queue, or pick one of yours.');
  const list = new MessageList('Selected conversation');
  list.setViewer(me);
  const composer = new Composer(async (content, key) => {
    if (!selected) return;
    const message = await api.sendMessage(session.token, selected, content, key);
    list.append(message);
  }, 'message-input');
  composer.setEnabled(false, 'Select one of your chats to reply');

  /** Who a chat is with: the name the host application vouched for, and the id. */
  const who = (/** @type {any} */ chat) =>
    chat.customerName ? `${chat.customerName} (${chat.customerId})` : chat.customerId;

  const byAge = (/** @type {any} */ a, /** @type {any} */ b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1;

  const renderQueue = () => {
    const chats = [...pending.values()].sort(byAge);
    queueCount.textContent = String(chats.length);
    queueList.replaceChildren(
      ...(chats.length === 0
        ? [h('li', { class: 'empty' }, 'The queue is empty.')]
        : chats.map((chat) =>
            h(
              'li',
              { 'data-chat-id': chat.id },
              h('span', { class: 'customer' }, who(chat)),
              h('span', { class: 'waiting' }, `waiting ${waitingFor(chat.createdAt)}`),
              h('button', { type: 'button', class: 'claim', 'aria-label': `Claim chat of ${who(chat)}`, onclick: () => claim(chat) }, 'Claim'),
            ),
          )),
    );
  };

  const renderMine = () => {
    const chats = [...mine.values()].sort(byAge);
    mineList.replaceChildren(
      ...(chats.length === 0
        ? [h('li', { class: 'empty' }, 'You have no chats yet.')]
        : chats.map((chat) =>
            h(
              'li',
              { 'data-chat-id': chat.id, class: chat.id === selected ? 'selected' : '' },
              h(
                'button',
                { type: 'button', class: 'open', 'aria-current': chat.id === selected ? 'true' : 'false', onclick: () => select(chat) },
                who(chat),
              ),
            ),
          )),
    );
  };

  const say = (/** @type {string} */ text) => {
    notice.textContent = text;
  };

  /** @param {any} chat */
  const claim = async (chat) => {
    say('');
    try {
      const claimed = await api.claim(session.token, me, chat.id);
      pending.delete(claimed.id);
      mine.set(claimed.id, claimed);
      renderQueue();
      select(claimed);
    } catch (err) {
      if (err instanceof api.ApiError && err.code === 'already_assigned') {
        pending.delete(chat.id);
        renderQueue();
        say(`Too late: the chat of ${who(chat)} was claimed by another officer. ${err.message}`);
      } else if (err instanceof api.ApiError && err.status === 404) {
        pending.delete(chat.id);
        renderQueue();
        say('That chat no longer exists.');
      } else {
        say(err instanceof Error ? err.message : String(err));
      }
    }
  };

  /** @param {any} chat */
  const select = async (chat) => {
    if (selected && selected !== chat.id) socket.leaveChat(selected);
    selected = chat.id;
    renderMine();
    title.textContent = `Chat with ${who(chat)}`;
    chatStatus.textContent = 'Loading…';
    list.reset([]);
    try {
      const history = await api.latestMessages(session.token, chat.id);
      if (selected !== chat.id) return;
      list.reset(history);
      socket.joinChat(chat.id, list.lastSeq);
      const owned = chat.assignedOfficerId === me;
      chatStatus.textContent = owned ? `You are talking with ${who(chat)}.` : 'This chat is waiting in the queue.';
      composer.setEnabled(owned);
      if (owned) composer.input.focus();
    } catch (err) {
      chatStatus.textContent = err instanceof Error ? err.message : String(err);
    }
  };

  // Queue events that arrive while the lists are being read are held back and applied
  // on top of what was read, in order, so neither can undo the other.
  /** @type {any[] | null} */
  let held = null;
  const reload = async () => {
    held = held ?? [];
    try {
      const [queue, own] = await Promise.all([api.queue(session.token), api.officerChats(session.token, me)]);
      pending.clear();
      for (const chat of queue) pending.set(chat.id, chat);
      mine.clear();
      for (const chat of own) mine.set(chat.id, chat);
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) signOut('Your session has ended. Please sign in again.');
      else say(err instanceof Error ? err.message : String(err));
    }
    const events = held ?? [];
    held = null;
    for (const event of events) apply(event);
    renderQueue();
    renderMine();
  };

  /** @param {any} event */
  const apply = (event) => {
    switch (event.type) {
      case 'queue_chat_created':
        pending.set(event.chat.id, event.chat);
        break;
      case 'queue_chat_claimed':
        pending.delete(event.chat.id);
        if (event.chat.assignedOfficerId === me) mine.set(event.chat.id, event.chat);
        break;
      case 'chat_assigned':
        mine.set(event.chat.id, event.chat);
        break;
      default:
        break;
    }
  };

  const socket = new ChatSocket({
    token: session.token,
    onState: (state) => {
      badge.set(state);
      if (state === 'unauthorized') signOut('Your session has ended. Please sign in again.');
    },
    onEvent: (event) => {
      if (event.type === 'joined' && event.room === 'officers:all') {
        // Subscribed (again, after a reconnect): now read the lists. Queue events sent
        // while this page was disconnected are not replayed, so this also resyncs.
        reload();
      } else if (event.type === 'new_message') {
        if (event.message.chatId === selected) list.append(event.message);
      } else if (event.type === 'error' && event.code === 'forbidden' && event.chatId) {
        // Another officer took the chat this console was reading: nothing more of it
        // comes, and the view says so.
        if (event.chatId === selected) {
          chatStatus.textContent = 'Another officer took this chat; you can no longer read it.';
          composer.setEnabled(false);
        }
      } else if (held) {
        held.push(event);
      } else {
        apply(event);
        renderQueue();
        renderMine();
      }
    },
  });

  /** @param {string} [text] */
  const signOut = (text) => {
    socket.close();
    clearInterval(ticker);
    stored.clear(STORAGE_KEY);
    showLogin(text);
  };

  // Waiting times move on by themselves.
  const ticker = setInterval(renderQueue, 15000);

  root.replaceChildren(
    h(
      'div',
      { class: 'console' },
      h(
        'header',
        { class: 'topbar' },
        h('h1', {}, 'Officer console'),
        h('span', { class: 'who' }, `Signed in as ${me}`),
        badge.element,
        h('button', { type: 'button', class: 'link', onclick: () => { api.logout(session.token).catch(() => {}); signOut(); } }, 'Sign out'),
      ),
      notice,
      h(
        'div',
        { class: 'columns' },
        h(
          'nav',
          { class: 'lists', 'aria-label': 'Chats' },
          h('section', { 'aria-labelledby': 'queue-title' }, h('h2', { id: 'queue-title' }, 'Queue ', queueCount), queueList),
          h('section', { 'aria-labelledby': 'mine-title' }, h('h2', { id: 'mine-title' }, 'My chats'), mineList),
        ),
        h('main', { class: 'card chat', 'aria-labelledby': 'chat-title' }, title, chatStatus, list.element, composer.element),
      ),
    ),
  );
  renderQueue();
  renderMine();
  socket.joinOfficers();
  socket.connect();
}

/** @type {Session | null} */
const existing = stored.load(STORAGE_KEY);
if (existing) showConsole(existing);
else showLogin();
