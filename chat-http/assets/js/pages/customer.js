// @ts-check
/**
 * The customer chat page: log in with the host application's identity token, or with
 * the customer id (and the host application's signature when the server requires one),
 * then talk in the open chat, live: while it waits, the customer's place in the queue
 * ("You are number 3 in line"); the officer's arrival (by name), a hand-over and the
 * end of the chat are shown as they happen. The customer may end the chat (after a
 * confirmation); once it has ended, by anyone, the page says so, stops the composer and
 * offers a new conversation. The token lives in sessionStorage only. Business rules
 * stay on the server. A host application's link (an identity token, or a customer id
 * with its signature) starts or resumes the chat at once, without the form. The page
 * wears the bank's branding (name, colours, logo, welcome text, opening hours) as
 * `GET /api/branding` gives it.
 */
import * as api from '../api.js';
import { pageBranding } from '../branding.js';
import { applyBranding, fillBanner, openingHours, openNote } from '../components/brandHeader.js';
import { isOlder } from '../chatBook.js';
import { Composer } from '../components/composer.js';
import { ConfirmButton } from '../components/confirm.js';
import { ConnectionBadge } from '../components/connection.js';
import { clockTime, h } from '../components/dom.js';
import { loginForm } from '../components/loginForm.js';
import { MessageList } from '../components/messageList.js';
import { Outbox } from '../components/outbox.js';
import { ReadMarks } from '../components/readMarks.js';
import { TypingIndicator, TypingSignal } from '../components/typing.js';
import { refusal } from '../refusals.js';
import * as stored from '../session.js';
import { ChatSocket } from '../socket.js';
import { officerNamesIn } from '../systemEntries.js';

const STORAGE_KEY = 'chat.customer';
const root = /** @type {HTMLElement} */ (document.getElementById('app'));
const banner = /** @type {HTMLElement} */ (document.getElementById('brand'));

/** @typedef {{ token: string, chatId: string, customerId: string }} Session */


// A host application links here as /customer?identityToken=JWT (preferred: it expires),
// or as /customer?customerId=ID&signature=HMAC. They are read once and removed from the
// address bar (and so from history and referrers).
const params = new URLSearchParams(location.search);
const linkedToken = params.get('identityToken');
const linkedCustomer = params.get('customerId');
const linkedSignature = params.get('signature');
if (linkedToken || linkedCustomer || linkedSignature) history.replaceState(null, '', location.pathname);

// The bank's look first, so that the first view already wears it.
const branding = pageBranding();
applyBranding(branding);
fillBanner(banner, branding);

/** The bank's welcome text, as text (line breaks kept by the style). */
const welcome = (/** @type {string} */ id) =>
  branding.welcome ? h('p', { id, class: 'welcome' }, branding.welcome) : null;

/** @param {string} [notice] */
function showLogin(notice) {
  const input = /** @type {HTMLInputElement} */ (
    h('input', { id: 'customer-id', name: 'customerId', required: true, autocomplete: 'username', maxlength: '64', pattern: '[A-Za-z0-9._\\-]{1,64}' })
  );
  input.value = linkedCustomer ?? '';
  const form = loginForm({
    title: 'Chat with a loan officer',
    fields: [welcome('welcome'), h('label', { for: 'customer-id' }, 'Your customer number'), input].filter((x) => x !== null),
    submit: 'Start chat',
    notice,
    login: async () => {
      const result = await api.customerLogin(input.value.trim(), linkedSignature);
      const session = { token: result.token, chatId: result.chat.id, customerId: result.chat.customerId };
      stored.save(STORAGE_KEY, session);
      showChat(session, result.chat);
    },
  });
  const hours = openingHours(branding);
  root.replaceChildren(...(hours ? [form, hours] : [form]));
  input.focus();
}

/**
 * @param {Session} session
 * @param {any} [first] the chat as the login answered it, when the page has just logged in
 */
function showChat(session, first) {
  const status = h('p', { id: 'chat-status', class: 'status', role: 'status', 'aria-live': 'polite' }, 'Loading…');
  const place = h('p', { id: 'queue-position', class: 'queue-position', role: 'status', 'aria-live': 'polite', hidden: true });
  /** The chat's place in the queue as the server last said (1: next), while it waits. */
  let position = first?.status === 'pending' ? (first.queuePosition ?? null) : null;
  /** Shows the place while the chat is known to wait and the server has given one. */
  const showPlace = () => {
    const waiting = (current ?? first)?.status === 'pending' && position !== null;
    const text = waiting ? `You are number ${position} in line.` : '';
    if (place.textContent !== text) place.textContent = text;
    place.hidden = !waiting;
  };
  const badge = new ConnectionBadge();
  /** @type {Map<string, string>} officers' display names, learned from system entries */
  const names = new Map();
  const officerName = (/** @type {string} */ id) => names.get(id) ?? `Officer ${id}`;
  const list = new MessageList('Conversation');
  list.setViewer(session.customerId, (message) =>
    message.senderType === 'officer' ? officerName(message.senderId) : message.senderId,
  );
  /** @param {any} message */
  const show = (message) => {
    list.append(message);
    if (learn([message])) list.rename();
  };
  /** @param {any[]} messages @returns {boolean} whether a name was new */
  const learn = (messages) => {
    let learned = false;
    for (const message of messages) {
      for (const [id, name] of officerNamesIn(message)) {
        learned ||= names.get(id) !== name;
        names.set(id, name);
      }
    }
    return learned;
  };
  /** @type {any} the chat as last heard of */
  let current = null;

  // The conversation's parts (components/): sends that never get stuck, typing both
  // ways, read marks for what was seen, and "Seen" under the customer's messages.
  const outbox = new Outbox({
    list,
    current: () => session.chatId,
    send: async (chatId, content, key) => {
      try {
        return await api.sendMessage(session.token, chatId, content, key);
      } catch (err) {
        if (err instanceof api.ApiError && err.code === 'chat_resolved') {
          // Ended meanwhile (by the officer): the page says so and offers a new chat.
          api.chat(session.token, session.chatId).then(showState, () => {});
          throw new Error('This conversation has ended, so the message was not sent.');
        }
        throw err;
      }
    },
  });
  const typing = new TypingIndicator();
  const typingSignal = new TypingSignal(() => socket.typing(session.chatId));
  const readMarks = new ReadMarks({ list, send: (chatId, seq) => socket.read(chatId, seq) });
  const composer = new Composer((content) => {
    typingSignal.reset();
    outbox.add(content);
  }, 'message-input');
  composer.onTyping = () => typingSignal.ping();

  const endChat = new ConfirmButton({
    label: 'End chat',
    question: 'End this conversation?',
    yes: 'Yes, end chat',
    no: 'Keep chatting',
    className: 'end-chat',
    act: async () => {
      try {
        showState(await api.resolve(session.token, session.chatId));
      } catch (err) {
        status.textContent = refusal(err);
      }
    },
  });

  const again = /** @type {HTMLButtonElement} */ (
    h('button', { type: 'button', id: 'new-conversation', onclick: () => startAgain() }, 'Start a new conversation')
  );
  const againError = h('p', { class: 'error', role: 'alert' });
  const ended = h(
    'div',
    { id: 'ended', class: 'ended', hidden: true },
    h('p', { class: 'ended-title' }, 'This conversation has ended'),
    h('p', { class: 'hint' }, 'You can still read it here. Write to us again at any time.'),
    again,
    againError,
  );

  /** @param {any} chat */
  const showState = (chat) => {
    // A REST answer and the event of the same change may come in either order.
    if (current && current.id === chat.id && isOlder(chat, current)) return;
    current = chat;
    // Events carry no place in the queue: a pending chat keeps the last one given.
    if (chat.status !== 'pending') position = null;
    else if (typeof chat.queuePosition === 'number') position = chat.queuePosition;
    showPlace();
    status.className = `status ${chat.status}`;
    if (chat.status === 'resolved') {
      status.textContent = chat.resolvedAt ? `Ended at ${clockTime(chat.resolvedAt)}.` : 'Ended.';
      ended.hidden = false;
      endChat.show(false);
      composer.setEnabled(false, 'This conversation has ended');
      composer.element.hidden = true;
      return;
    }
    ended.hidden = true;
    composer.element.hidden = false;
    endChat.show(true);
    if (chat.status === 'assigned' && chat.assignedOfficerId) {
      status.textContent = `${officerName(chat.assignedOfficerId)} has joined the chat.`;
    } else {
      status.textContent = 'Waiting for an officer… You can already write your question.';
    }
    if (composer.input.disabled) composer.setEnabled(true);
  };

  let joinedOnce = false;
  const reread = async () => {
    try {
      const chat = await api.chat(session.token, session.chatId);
      list.setSeen(chat.officerLastReadSeq);
      showState(chat);
    } catch {
      // The next rejoin tries again; a session that ended is said by the socket.
    }
  };

  const socket = new ChatSocket({
    token: session.token,
    onState: (state) => {
      badge.set(state);
      if (state === 'connected') {
        outbox.resume();
        readMarks.flush();
      }
      if (state === 'unauthorized') signOut('Your session has ended. Please start again.');
    },
    onEvent: (event) => {
      if (event.type === 'joined' && event.room === `chat:${session.chatId}`) {
        // Rejoined after a drop: the messages are replayed, but a change of the chat or
        // a read mark made meanwhile is not; read the chat again for those.
        if (joinedOnce) reread();
        joinedOnce = true;
      } else if (event.type === 'chat_updated' && event.chat.id === session.chatId) {
        showState(event.chat);
      } else if (event.type === 'queue_position' && event.chatId === session.chatId) {
        position = event.position;
        showPlace();
      } else if (event.type === 'new_message' && event.message.chatId === session.chatId) {
        typing.heard(event.message);
        show(event.message);
        // A system entry may have taught the officer's name: say it.
        if (event.message.senderType === 'system' && current) showState(current);
      } else if (event.type === 'typing' && event.chatId === session.chatId) {
        typing.show(event, list.nameOf(event));
      } else if (event.type === 'read' && event.chatId === session.chatId && event.readerType === 'officer') {
        list.setSeen(event.seq);
      }
    },
  });

  /** @param {string} [notice] */
  const signOut = (notice) => {
    socket.close();
    stored.clear(STORAGE_KEY);
    showLogin(notice);
  };

  /**
   * Logs in again, the way this page was opened: the server answers the customer's open
   * chat, or a new pending one. A link's identity token is kept in memory only, so after
   * a reload (or once it has expired) the customer is asked to come back from their
   * account, or to type their number where the server takes it on trust.
   */
  const startAgain = async () => {
    again.disabled = true;
    againError.textContent = '';
    try {
      const result = linkedToken
        ? await api.customerLoginWithToken(linkedToken)
        : await api.customerLogin(session.customerId, linkedSignature);
      const next = { token: result.token, chatId: result.chat.id, customerId: result.chat.customerId };
      stored.save(STORAGE_KEY, next);
      socket.close();
      api.logout(session.token).catch(() => {});
      showChat(next, result.chat);
    } catch (err) {
      again.disabled = false;
      if (err instanceof api.ApiError && (err.status === 401 || err.status === 403)) {
        signOut('To start a new conversation, please open the chat again from your account.');
      } else {
        againError.textContent = refusal(err);
      }
    }
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
        endChat.element,
        h('button', { type: 'button', class: 'link', onclick: () => { api.logout(session.token).catch(() => {}); signOut(); } }, 'Sign out'),
      ),
      welcome('chat-welcome'),
      status,
      place,
      openNote(branding, 'open-note'),
      // The timeline takes the height the rest leaves (styles.css, customer page).
      // The typing line sits over the timeline's foot, taking no height of its own.
      h('div', { class: 'timeline-area' }, list.element, typing.element),
      ended,
      composer.element,
    ),
  );
  endChat.show(false);
  composer.setEnabled(false);
  showPlace();

  // No polling: the officer's claim, a hand-over and the end of the chat all arrive on
  // the socket as `chat_updated` (and as system entries in the timeline).
  (async () => {
    try {
      const [chat, history] = await Promise.all([
        api.chat(session.token, session.chatId),
        api.latestMessages(session.token, session.chatId),
      ]);
      learn(history);
      list.reset(history);
      list.setSeen(chat.officerLastReadSeq);
      readMarks.follow(session.chatId, chat.customerLastReadSeq);
      showState(chat);
      if (chat.status !== 'resolved') composer.input.focus();
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
    showChat(session, result.chat);
  } catch (err) {
    const expired = err instanceof api.ApiError && err.code === 'invalid_identity';
    showLogin(expired ? 'This link has expired or is not valid. Please open the chat again from your account.' : String(err instanceof Error ? err.message : err));
  }
}

/**
 * Logs in with the customer id and signature of the link at once (the host application
 * vouches for the id); a signature the server refuses shows the form and says why.
 * @param {string} customerId
 * @param {string} signature
 */
async function loginWithSignature(customerId, signature) {
  root.replaceChildren(h('p', { class: 'status', role: 'status' }, 'Signing in…'));
  try {
    const result = await api.customerLogin(customerId, signature);
    const session = { token: result.token, chatId: result.chat.id, customerId: result.chat.customerId };
    if (existing && existing.token !== session.token) api.logout(existing.token).catch(() => {});
    stored.save(STORAGE_KEY, session);
    showChat(session, result.chat);
  } catch (err) {
    const refused = err instanceof api.ApiError && ['invalid_signature', 'invalid_id', 'invalid_field'].includes(err.code);
    showLogin(
      refused
        ? 'This link is not valid or has expired. Please open the chat again from your account.'
        : String(err instanceof Error ? err.message : err),
    );
  }
}

/** @type {Session | null} */
const existing = stored.load(STORAGE_KEY);
if (linkedToken) {
  loginWithToken(linkedToken);
} else if (linkedCustomer && linkedSignature) {
  // A fresh login even when this tab has a session: the server answers the customer's
  // open chat (so it resumes), and a link for another customer replaces the session.
  loginWithSignature(linkedCustomer, linkedSignature);
} else if (existing && (!linkedCustomer || linkedCustomer === existing.customerId)) {
  showChat(existing);
} else {
  showLogin();
}
