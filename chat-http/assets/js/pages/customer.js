// @ts-check
/**
 * The customer chat page: log in with the host application's identity token, or with
 * the customer id (and the host application's signature when the server requires one),
 * then talk in the one chat, live. The token lives in sessionStorage only. Business
 * rules stay on the server.
 */
import * as api from '../api.js';
import { Composer } from '../components/composer.js';
import { ConnectionBadge } from '../components/connection.js';
import { h } from '../components/dom.js';
import { loginForm } from '../components/loginForm.js';
import { MessageList } from '../components/messageList.js';
import * as stored from '../session.js';
import { ChatSocket } from '../socket.js';

const STORAGE_KEY = 'chat.customer';
const root = /** @type {HTMLElement} */ (document.getElementById('app'));

/** @typedef {{ token: string, chatId: string, customerId: string }} Session */


// A host application links here as /customer?identityToken=JWT (preferred: it expires),
// or as /customer?customerId=ID&signature=HMAC. They are read once and removed from the
// address bar (and so from history and referrers).
const params = new URLSearchParams(location.search);
const linkedToken = params.get('identityToken');
const linkedCustomer = params.get('customerId');
const linkedSignature = params.get('signature');
if (linkedToken || linkedCustomer || linkedSignature) history.replaceState(null, '', location.pathname);

/** @param {string} [notice] */
function showLogin(notice) {
  const input = /** @type {HTMLInputElement} */ (
    h('input', { id: 'customer-id', name: 'customerId', required: true, autocomplete: 'username', maxlength: '64', pattern: '[A-Za-z0-9._\\-]{1,64}' })
  );
  input.value = linkedCustomer ?? '';
  const form = loginForm({
    title: 'Chat with a loan officer',
    fields: [h('label', { for: 'customer-id' }, 'Your customer number'), input],
    submit: 'Start chat',
    notice,
    login: async () => {
      const result = await api.customerLogin(input.value.trim(), linkedSignature);
      const session = { token: result.token, chatId: result.chat.id, customerId: result.chat.customerId };
      stored.save(STORAGE_KEY, session);
      showChat(session);
    },
  });
  root.replaceChildren(form);
  input.focus();
}

/** @param {Session} session */
function showChat(session) {
  const status = h('p', { id: 'chat-status', class: 'status', role: 'status', 'aria-live': 'polite' }, 'Loading…');
  const badge = new ConnectionBadge();
  const list = new MessageList('Conversation');
  list.setViewer(session.customerId);
  const composer = new Composer(async (content, key) => {
    const message = await api.sendMessage(session.token, session.chatId, content, key);
    list.append(message);
  }, 'message-input');

  /** @type {ReturnType<typeof setInterval> | null} */
  let poll = null;
  /** @param {any} chat */
  const showStatus = (chat) => {
    if (chat.assignedOfficerId) {
      status.textContent = `Officer ${chat.assignedOfficerId} has joined the chat.`;
      status.className = 'status assigned';
      if (poll) clearInterval(poll);
      poll = null;
    } else {
      status.textContent = 'Waiting for an officer… You can already write your question.';
      status.className = 'status pending';
    }
  };

  const socket = new ChatSocket({
    token: session.token,
    onState: (state) => {
      badge.set(state);
      if (state === 'unauthorized') signOut('Your session has ended. Please start again.');
    },
    onEvent: (event) => {
      if (event.type === 'chat_updated') {
        showStatus(event.chat);
        return;
      }
      if (event.type !== 'new_message') return;
      list.append(event.message);
      if (event.message.senderType === 'officer') {
        showStatus({ assignedOfficerId: event.message.senderId });
      }
    },
  });

  /** @param {string} [notice] */
  const signOut = (notice) => {
    socket.close();
    if (poll) clearInterval(poll);
    stored.clear(STORAGE_KEY);
    showLogin(notice);
  };

  root.replaceChildren(
    h(
      'section',
      { class: 'card chat customer-chat', 'aria-labelledby': 'chat-title' },
      h(
        'header',
        {},
        h('h1', { id: 'chat-title' }, 'Your chat'),
        badge.element,
        h('button', { type: 'button', class: 'link', onclick: () => { api.logout(session.token).catch(() => {}); signOut(); } }, 'Sign out'),
      ),
      status,
      list.element,
      composer.element,
    ),
  );
  composer.setEnabled(true);
  composer.input.focus();

  // The contract sends customers no event when an officer claims their chat, so the
  // page asks now and then while it waits (an officer's first message also tells it).
  const refresh = async () => {
    try {
      showStatus(await api.chat(session.token, session.chatId));
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) signOut('Your session has ended. Please start again.');
    }
  };

  (async () => {
    try {
      const [chat, history] = await Promise.all([
        api.chat(session.token, session.chatId),
        api.latestMessages(session.token, session.chatId),
      ]);
      showStatus(chat);
      list.reset(history);
      if (!chat.assignedOfficerId) poll = setInterval(refresh, 4000);
      socket.joinChat(session.chatId, list.lastSeq);
      socket.connect();
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) {
        signOut('Your session has ended. Please start again.');
      } else {
        status.textContent = err instanceof Error ? err.message : String(err);
      }
    }
  })();
}

/**
 * Logs in with the identity token of the link at once: the host application has said
 * who the customer is, so there is nothing to type.
 * @param {string} token
 */
async function loginWithToken(token) {
  root.replaceChildren(h('p', { class: 'status', role: 'status' }, 'Signing in…'));
  try {
    const result = await api.customerLoginWithToken(token);
    const session = { token: result.token, chatId: result.chat.id, customerId: result.chat.customerId };
    stored.save(STORAGE_KEY, session);
    showChat(session);
  } catch (err) {
    const expired = err instanceof api.ApiError && err.code === 'invalid_identity';
    showLogin(expired ? 'This link has expired or is not valid. Please open the chat again from your account.' : String(err instanceof Error ? err.message : err));
  }
}

/** @type {Session | null} */
const existing = stored.load(STORAGE_KEY);
if (linkedToken) {
  loginWithToken(linkedToken);
} else if (existing && (!linkedCustomer || linkedCustomer === existing.customerId)) {
  showChat(existing);
} else {
  showLogin();
}
