// @ts-check
/**
 * The officer console: log in, then the shared queue, "My chats" (Open and Resolved
 * tabs) and the selected chat, with its actions (claim, end, put back in the queue,
 * transfer to a colleague, reopen), the customer's earlier conversations and a composer;
 * in the top bar the officer's availability switch and load. Everything stays right
 * without a reload: every event that carries a chat updates what the console knows of it
 * (ChatBook), and the lists and the selected chat are drawn from that; `officer_updated`
 * keeps the officer's own state and the colleagues' presence current. A chat that
 * becomes the officer's without their asking (assigned by the server, handed over) is
 * announced. The console works as an inbox: it follows the rooms of the officer's open
 * chats and of the oldest queued ones in the background (Following), so each chat shows
 * a preview of its newest entry, "My chats" re-orders by latest activity, and an open
 * chat counts the customer's messages the officer has not read (from the list's
 * `lastMessage` and `officerLastReadSeq`, then live) until it is on screen on a visible
 * page, or a `chat:read` event on `document` says it was read. The tab's title counts
 * them, plus the chats that entered the queue while the page was hidden. Opt-in alerts
 * (Arrivals) sound for new queue entries and messages not on screen. Files are sent with
 * the Attach button or dropped on the conversation, and shown in it. The token and the
 * selected chat live in sessionStorage only. Business rules stay on the server: a
 * refusal is shown in its words.
 */
import * as api from '../api.js';
import { ChatBook } from '../chatBook.js';
import { Arrivals } from '../components/arrivals.js';
import { AttachControl } from '../components/attachControl.js';
import { ChatActions } from '../components/chatActions.js';
import { ChatLists, who } from '../components/chatLists.js';
import { Composer } from '../components/composer.js';
import { ConnectionBadge } from '../components/connection.js';
import { Following } from '../following.js';
import { h } from '../components/dom.js';
import { EarlierChats } from '../components/earlierChats.js';
import { contentTypeOf, fileRules, uploadRefusal } from '../files.js';
import { loginForm } from '../components/loginForm.js';
import { MessageList } from '../components/messageList.js';
import { MyStatus } from '../components/myStatus.js';
import { Outbox } from '../components/outbox.js';
import { ReadMarks } from '../components/readMarks.js';
import { TypingIndicator, TypingSignal } from '../components/typing.js';
import { nameOf, presence } from '../officers.js';
import { lostClaim, refusal, selfRefusal } from '../refusals.js';
import * as stored from '../session.js';
import { ChatSocket } from '../socket.js';
import { throttled } from '../throttle.js';

const STORAGE_KEY = 'chat.officer';
/** Which chat and tab were shown, so a reload comes back to them. */
const VIEW_KEY = 'chat.officer.view';
const root = /** @type {HTMLElement} */ (document.getElementById('app'));
const TITLE = 'Officer console';
/** What files the server takes, as it wrote them into the page. */
const rules = fileRules();

/** @typedef {{ token: string, officerId: string }} Session */
/** @typedef {{ chatId: string | null, tab: 'open' | 'resolved' }} View */

/** Events that carry a chat as it is after a change. */
const CHAT_EVENTS = new Set(['queue_chat_created', 'queue_chat_claimed', 'chat_assigned', 'chat_unassigned', 'chat_updated']);

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
        stored.clear(VIEW_KEY);
        showConsole(session, true);
      },
    }),
  );
  id.focus();
}

/** @param {Session} session @param {boolean} [justSignedIn] then focus goes to the queue */
function showConsole(session, justSignedIn = false) {
  const me = session.officerId;
  const book = new ChatBook(me);
  /** @type {View} */
  const view = { chatId: null, tab: 'open', ...(stored.load(VIEW_KEY) ?? {}) };
  /** @type {string | null} the chat shown on the right */
  let selected = null;
  /** True once the server has taken this console out of the selected chat's room. */
  let lost = false;
  /** @type {Map<string, any>} officers by id: names, and the colleagues' presence */
  const officers = new Map();
  const officerName = (/** @type {string} */ id) => officers.get(id)?.displayName ?? id;
  /** Chats this officer is asking the server for (claim, reopen): they do not "arrive". */
  const asking = new Set();
  /** Chats that became this officer's by themselves and are not opened yet. */
  const fresh = new Set();
  const arrivals = new Arrivals(TITLE);
  /** Chats that entered the queue while the page was hidden: the title counts them. */
  const queuedUnseen = new Set();
  const visible = () => document.visibilityState === 'visible';

  const badge = new ConnectionBadge();
  const whoAmI = h('span', { class: 'who' }, `Signed in as ${me}`);
  const notice = h('p', { id: 'notice', class: 'notice', role: 'alert' });
  const title = h('h2', { id: 'chat-title' }, 'No chat selected');
  const chatStatus = h('p', { id: 'chat-status', class: 'status', role: 'status', 'aria-live': 'polite' }, 'Claim a chat from the queue, or pick one of yours.');
  const readOnly = h('p', { id: 'read-only', class: 'read-only', hidden: true });
  const list = new MessageList('Selected conversation');
  list.setViewer(me, (message) =>
    message.senderType === 'officer'
      ? officerName(message.senderId)
      : (book.get(message.chatId)?.customerName ?? message.senderId),
  );
  list.files = { blob: (id) => api.attachmentBlob(session.token, id) };
  const earlier = new EarlierChats(session.token, list.nameOf, list.files);
  // The conversation's parts (components/): sends and uploads that never get stuck,
  // typing both ways, read marks for what was seen (only in a chat this officer has a
  // mark in).
  const outbox = new Outbox({
    list,
    current: () => selected,
    send: (chatId, content, key) => api.sendMessage(session.token, chatId, content, key),
    upload: (chatId, file, key, options) =>
      api.uploadAttachment(session.token, chatId, file, key, { ...options, contentType: contentTypeOf(file, rules) }),
    explain: (err) => uploadRefusal(err, rules),
    say: (text, tone) => composer.say(text, tone),
  });
  const typing = new TypingIndicator();
  const typingSignal = new TypingSignal(() => (selected ? socket.typing(selected) : false));
  const readMarks = new ReadMarks({
    list,
    send: (chatId, seq) => socket.read(chatId, seq),
    allowed: () => {
      const chat = selected ? book.get(selected) : null;
      return !lost && chat?.assignedOfficerId === me && chat.status !== 'pending';
    },
  });
  const composer = new Composer((content) => {
    typingSignal.reset();
    outbox.add(content);
  }, 'message-input');
  composer.onTyping = () => typingSignal.ping();
  const attach = new AttachControl({ rules, id: 'attach', send: (file) => outbox.addFile(file), say: (text, tone) => composer.say(text, tone) });
  composer.addTool(attach);
  composer.setEnabled(false, 'Select one of your chats to reply');

  const say = (/** @type {string} */ text) => {
    notice.className = 'notice';
    notice.textContent = text;
  };

  const remember = () => stored.save(VIEW_KEY, { chatId: selected, tab: lists.tab });

  const lists = new ChatLists({
    // A row drawn earlier may hold an older version of its chat.
    claim: (chat) => claim(book.get(chat.id) ?? chat),
    open: (chat) => select(book.get(chat.id) ?? chat),
    tab: view.tab,
    onTab: remember,
  });

  /** @type {import('../components/chatLists.js').Details} */
  const details = {
    unread: (id) => book.unread(id),
    latest: (id) => book.latestOf(id),
    activity: (chat) => book.activity(chat),
    speaker: (latest, chat) => {
      if (latest.senderType !== 'officer') return '';
      const officer = latest.senderId ?? chat.assignedOfficerId;
      return !officer ? 'Officer' : officer === me ? 'You' : officerName(officer);
    },
  };

  const render = () => {
    const queue = book.queue();
    for (const id of queuedUnseen) if (book.get(id)?.status !== 'pending') queuedUnseen.delete(id);
    readSelected();
    lists.render({ queue, open: book.open(), resolved: book.resolved() }, selected, fresh, details);
    renderSelected();
    following.follow(book.open(), queue, (id) => book.mark(id), selected);
    arrivals.setCount(book.totalUnread() + queuedUnseen.size);
  };
  /** Messages come in bursts (a replay): the lists are drawn again at most every 100 ms. */
  const renderSoon = throttled(async () => render(), 100);

  /** The chat on screen of a visible page is read, up to its newest entry known. */
  const readSelected = () => {
    if (!selected || lost || !visible()) return;
    const chat = book.get(selected);
    book.markRead(selected, Math.max(chat?.lastSeq ?? 0, book.latestOf(selected)?.seq ?? 0, list.lastSeq));
  };

  /** The selected chat's header, actions, notice and composer, from its last known state. */
  const renderSelected = () => {
    const chat = selected ? book.get(selected) : null;
    if (!chat) {
      title.textContent = 'No chat selected';
      chatStatus.textContent = 'Claim a chat from the queue, or pick one of yours.';
      readOnly.hidden = true;
      actions.set('none');
      setComposer(false, 'Select one of your chats to reply');
      return;
    }
    title.textContent = `Chat with ${who(chat)}`;
    const mine = chat.assignedOfficerId === me;
    /** @type {[string, string | null, import('../components/chatActions.js').Offer]} */
    let state;
    if (chat.status === 'assigned' && mine && !lost) {
      state = [`You are talking with ${who(chat)}.`, null, 'owned'];
    } else if (chat.status === 'assigned' && mine) {
      state = ['This chat has been handed on.', 'You can no longer read or write in this chat.', 'none'];
    } else if (chat.status === 'assigned') {
      state = [
        `${officerName(chat.assignedOfficerId)} has this chat now.`,
        `This chat is now with ${officerName(chat.assignedOfficerId)}: you can no longer write in it.`,
        'none',
      ];
    } else if (chat.status === 'pending') {
      state = ['This chat is waiting in the queue.', 'Read-only: claim it to reply.', 'pending'];
    } else {
      state = [
        'This conversation has ended.',
        mine ? 'Read-only. Reopen it to write to the customer again.' : 'Read-only.',
        mine ? 'ended' : 'none',
      ];
    }
    const [status, note, offer] = state;
    // Unchanged text is not written again, so that screen readers announce changes only.
    if (chatStatus.textContent !== status) chatStatus.textContent = status;
    chatStatus.className = `status ${chat.status}`;
    if (readOnly.textContent !== (note ?? '')) readOnly.textContent = note ?? '';
    readOnly.hidden = note === null;
    actions.set(offer);
    setComposer(offer === 'owned', offer === 'owned' ? 'Write a message' : 'Read-only');
  };

  /**
   * Turns the composer on or off only when that changes, so that a redraw while a
   * message is being sent leaves its Send button as the send has set it.
   * @param {boolean} enabled @param {string} placeholder
   */
  const setComposer = (enabled, placeholder) => {
    if (composer.input.disabled === !enabled && composer.input.placeholder === placeholder) return;
    composer.setEnabled(enabled, placeholder);
  };

  /** Opens a chat on the right: its history, its live messages, the customer's other chats. @param {any} chat */
  const select = async (chat) => {
    if (selected && selected !== chat.id && !following.has(selected)) socket.leaveChat(selected);
    selected = chat.id;
    lost = false;
    typing.clear();
    readMarks.follow(chat.id, chat.officerLastReadSeq);
    fresh.delete(chat.id);
    arrivals.seen(chat.id);
    book.put(chat);
    remember();
    render();
    list.reset([]);
    earlier.load(chat.customerId, chat.id, me);
    try {
      const history = await api.latestMessages(session.token, chat.id);
      if (selected !== chat.id) return;
      list.reset(history);
      list.setSeen(book.get(chat.id)?.customerLastReadSeq ?? 0);
      if (history.length > 0) book.noteMessage(history[history.length - 1]);
      socket.joinChat(chat.id, list.lastSeq);
      render();
      if (book.get(chat.id)?.assignedOfficerId === me && book.get(chat.id)?.status === 'assigned') composer.input.focus();
    } catch (err) {
      if (selected !== chat.id) return;
      lost = err instanceof api.ApiError && err.status === 403;
      renderSelected();
      if (!lost) chatStatus.textContent = refusal(err);
    }
  };

  /** Reads the selected chat again after a refusal, so the view shows how it really stands. */
  const refreshSelected = async () => {
    if (!selected) return;
    try {
      book.put(await api.chat(session.token, selected));
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 403) lost = true;
    }
    render();
  };

  /** @param {any} chat */
  const claim = async (chat) => {
    say('');
    try {
      const claimed = await asked(chat.id, () => api.claim(session.token, me, chat.id));
      book.put(claimed);
      lists.showTab('open');
      select(claimed);
    } catch (err) {
      if (err instanceof api.ApiError && (err.code === 'already_assigned' || err.status === 404)) {
        const known = book.get(chat.id);
        const owner = known?.status === 'assigned' && known.assignedOfficerId !== me ? known.assignedOfficerId : null;
        // It is no longer in the queue, whatever the socket has said so far.
        book.chats.delete(chat.id);
        render();
        say(err.code === 'already_assigned' ? lostClaim(err, who(chat), owner, officerName) : 'That chat no longer exists.');
      } else {
        say(refusal(err));
        refreshSelected();
      }
    }
  };

  /**
   * Runs a lifecycle action on the selected chat and shows its result, or its refusal.
   * @param {(chatId: string) => Promise<any>} call @param {string} done what to say after
   */
  const act = async (call, done) => {
    if (!selected) return;
    say('');
    try {
      book.put(await call(selected));
      inform(done);
      render();
    } catch (err) {
      say(refusal(err));
      await refreshSelected();
    }
  };
  /** A passing confirmation, in the notice line but not as an error. @param {string} text */
  const inform = (text) => {
    notice.className = 'notice info';
    notice.textContent = text;
    setTimeout(() => {
      if (notice.textContent === text) notice.textContent = '';
    }, 8000);
  };

  const actions = new ChatActions({
    resolve: () => act((id) => api.resolve(session.token, id), 'The chat has ended.'),
    release: () => act((id) => api.release(session.token, id), 'The chat is back in the queue.'),
    transfer: (to) => act((id) => api.transfer(session.token, id, to), `The chat was transferred to ${officerName(to)}.`),
    reopen: async () => {
      await act((id) => asked(id, () => api.reopen(session.token, id)), 'The chat is open again.');
      const chat = selected ? book.get(selected) : null;
      if (chat?.status === 'assigned' && chat.assignedOfficerId === me) {
        lists.showTab('open');
        remember();
        render();
        composer.input.focus();
      }
    },
    claim: async () => {
      const chat = selected ? book.get(selected) : null;
      if (chat) await claim(chat);
    },
    colleagues: async () => {
      await loadOfficers();
      return colleagues();
    },
  });

  /** Whom a chat may be handed to, by name, with their presence in words. */
  const colleagues = () =>
    [...officers.values()]
      .filter((o) => o.id !== me && !o.disabled)
      .map((o) => ({ id: o.id, name: nameOf(o), presence: presence(o) }))
      .sort((a, b) => a.name.localeCompare(b.name));

  /**
   * Runs a call by which this officer asks for a chat, so that its events are not taken
   * for a chat arriving by itself.
   * @template T @param {string} chatId @param {() => Promise<T>} call @returns {Promise<T>}
   */
  const asked = async (chatId, call) => {
    asking.add(chatId);
    try {
      return await call();
    } finally {
      asking.delete(chatId);
    }
  };

  /** A chat became this officer's without their asking: say so, and mark it. @param {any} chat */
  const arrived = (chat) => {
    if (fresh.has(chat.id)) return;
    if (chat.id !== selected) fresh.add(chat.id);
    arrivals.announce(chat.id, `New chat from ${who(chat)}`);
  };

  const myStatus = new MyStatus(async (availability) => {
    say('');
    try {
      learnOfficer(await api.setAvailability(session.token, me, availability));
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) signOut('Your session has ended. Please sign in again.');
      else say(selfRefusal(err));
    }
  });

  /** Shows what is known of the officers: the officer's own state, names, the picker. */
  const showOfficers = () => {
    const mine = officers.get(me);
    const name = mine?.displayName;
    whoAmI.textContent = name ? `Signed in as ${name} (${me})` : `Signed in as ${me}`;
    if (mine) myStatus.show(mine);
    actions.refresh(colleagues());
  };

  /**
   * Reads of the officers under way, each with the officers that changed meanwhile (by
   * an event or an answer): a read may predate their change, so it leaves them be.
   * @type {Set<Set<string>>}
   */
  const reads = new Set();
  /** An officer as the server gave them, now. @param {any} officer */
  const learnOfficer = (officer) => {
    for (const changed of reads) changed.add(officer.id);
    const renamed = officers.get(officer.id)?.displayName !== officer.displayName;
    officers.set(officer.id, officer);
    showOfficers();
    if (renamed) {
      list.rename();
      renderSelected();
    }
  };

  const loadOfficers = async () => {
    /** @type {Set<string>} */
    const changed = new Set();
    reads.add(changed);
    try {
      const all = await api.officers(session.token);
      const listed = new Set(all.map((/** @type {any} */ o) => o.id));
      for (const id of [...officers.keys()]) if (!listed.has(id) && !changed.has(id)) officers.delete(id);
      for (const o of all) if (!changed.has(o.id)) officers.set(o.id, o);
      showOfficers();
      list.rename();
      render();
    } catch {
      // Names are a nicety: ids stand in for them; the officer's own state waits.
    } finally {
      reads.delete(changed);
    }
  };

  // Events that arrive while the lists are being read are held back and applied on top
  // of what was read, in order, so neither can undo the other.
  /** @type {any[] | null} */
  let held = null;
  let restored = false;
  const reload = async () => {
    held = held ?? [];
    // After a reconnect, chats that became this officer's while it was away arrive too.
    const mineBefore = restored ? new Set(book.open().map((c) => c.id)) : null;
    try {
      // `?status=` splits an officer's chats; the book filters by status as well, so a
      // server that answers every chat of the officer is drawn right too.
      const [queue, open, resolved] = await Promise.all([
        api.queue(session.token),
        api.officerChats(session.token, me, 'open'),
        api.officerChats(session.token, me, 'resolved'),
      ]);
      const current = selected ? book.get(selected) : null;
      book.clear();
      for (const chat of [...queue, ...open, ...resolved]) book.put(chat);
      if (current) book.put(current);
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) signOut('Your session has ended. Please sign in again.');
      else say(refusal(err));
    }
    const events = held ?? [];
    held = null;
    for (const event of events) apply(event);
    if (mineBefore) {
      for (const chat of book.open()) if (!mineBefore.has(chat.id) && !asking.has(chat.id)) arrived(chat);
    }
    render();
    if (!restored) {
      restored = true;
      restore();
    }
  };

  /** Shows the chat that was selected before the page was reloaded, if it may still be read. */
  const restore = async () => {
    if (!view.chatId || selected) return;
    try {
      select(await api.chat(session.token, view.chatId));
    } catch {
      remember();
    }
  };

  /** @param {any} event */
  const apply = (event) => {
    const before = book.get(event.chat.id);
    if (!book.put(event.chat)) return;
    const chat = event.chat;
    const hadIt = before?.status === 'assigned' && before.assignedOfficerId === me;
    const hasIt = chat.status === 'assigned' && chat.assignedOfficerId === me;
    if (hasIt && !hadIt && !asking.has(chat.id)) arrived(chat);
    if (chat.status === 'pending' && before?.status !== 'pending') queued(chat, before);
    if (!hasIt) fresh.delete(chat.id);
    if (chat.id !== selected) return;
    const wasMine = before?.status === 'assigned' && before.assignedOfficerId === me && !lost;
    const isMine = chat.status === 'assigned' && chat.assignedOfficerId === me;
    // Handed (back) to this officer: read it again and rejoin its room.
    if (isMine && !wasMine) select(chat);
  };

  const socket = new ChatSocket({
    token: session.token,
    onState: (state) => {
      badge.set(state);
      if (state === 'connected') {
        outbox.resume();
        readMarks.flush();
      }
      if (state === 'unauthorized') signOut('Your session has ended. Please sign in again.');
    },
    onEvent: (event) => {
      if (event.type === 'joined' && event.room === 'officers:all') {
        // Subscribed (again, after a reconnect): now read the lists and the officers.
        // Events sent while this page was disconnected are not replayed, so this also
        // resyncs.
        reload();
        loadOfficers();
      } else if (event.type === 'officer_updated' && event.officer) {
        learnOfficer(event.officer);
      } else if (event.type === 'new_message') {
        if (event.message.chatId === selected) typing.heard(event.message);
        heard(event.message);
      } else if (event.type === 'typing' && event.chatId === selected) {
        typing.show(event, list.nameOf(event));
      } else if (event.type === 'read' && event.chatId === selected && event.readerType === 'customer') {
        list.setSeen(event.seq);
      } else if (event.type === 'error' && event.code === 'forbidden' && event.chatId) {
        // The server took this console out of the chat's room (it went to a colleague):
        // nothing more of it comes, and the view says so.
        following.lost(event.chatId);
        if (event.chatId === selected) {
          lost = true;
          renderSelected();
        }
      } else if (CHAT_EVENTS.has(event.type) && event.chat) {
        if (held) {
          held.push(event);
        } else {
          apply(event);
          render();
        }
      }
    },
  });

  const following = new Following(socket);

  /**
   * A message of a followed room or of the chat on screen: the preview, the unread count
   * and, for a customer's new message in an open chat of this officer that is not in
   * front of them, an alert.
   * @param {any} message
   */
  const heard = (message) => {
    book.noteMessage(message);
    const news = following.news(message);
    const onScreen = message.chatId === selected && visible() && !lost;
    if (message.chatId === selected) list.append(message);
    const chat = book.get(message.chatId);
    const mine = chat?.status === 'assigned' && chat.assignedOfficerId === me;
    if (news && mine && message.senderType === 'customer' && !onScreen) {
      arrivals.alert(chat.id, `New message from ${who(chat)}`);
    }
    renderSoon();
  };

  /**
   * A chat entered the queue (a new one, or one a colleague put back).
   * @param {any} chat @param {any} before what was known of it
   */
  const queued = (chat, before) => {
    // This officer's own release is no news to them.
    if (before?.status === 'assigned' && before.assignedOfficerId === me) return;
    if (!visible()) queuedUnseen.add(chat.id);
    arrivals.alert(chat.id, `New chat in the queue: ${who(chat)}`);
  };

  /** The page is looked at again: the chat on screen is read, the queue seen. */
  const onVisibility = () => {
    if (!visible()) return;
    queuedUnseen.clear();
    render();
  };
  /** Another part of the page has sent the officer's read mark. @param {Event} e */
  const onRead = (e) => {
    const { chatId, seq } = /** @type {CustomEvent} */ (e).detail ?? {};
    if (typeof chatId !== 'string' || typeof seq !== 'number') return;
    book.markRead(chatId, seq);
    renderSoon();
  };
  document.addEventListener('visibilitychange', onVisibility);
  document.addEventListener('chat:read', onRead);

  /** @param {string} [text] */
  const signOut = (text) => {
    socket.close();
    clearInterval(ticker);
    document.removeEventListener('visibilitychange', onVisibility);
    document.removeEventListener('chat:read', onRead);
    arrivals.close();
    stored.clear(STORAGE_KEY);
    stored.clear(VIEW_KEY);
    showLogin(text);
  };

  // Waiting times move on by themselves.
  const ticker = setInterval(render, 15000);

  root.replaceChildren(
    h(
      'div',
      { class: 'console' },
      h(
        'header',
        { class: 'topbar' },
        h('h1', {}, 'Officer console'),
        whoAmI,
        myStatus.element,
        badge.element,
        h('button', { type: 'button', class: 'link', onclick: () => { api.logout(session.token).catch(() => {}); signOut(); } }, 'Sign out'),
      ),
      notice,
      h('div', { class: 'arrivals-bar' }, arrivals.line, arrivals.control),
      h(
        'div',
        { class: 'columns' },
        lists.element,
        h(
          'section',
          { class: 'card chat', 'aria-labelledby': 'chat-title' },
          h('header', { class: 'chat-head' }, title, actions.element),
          chatStatus,
          readOnly,
          list.element,
          typing.element,
          composer.element,
        ),
      ),
    ),
  );
  lists.element.append(earlier.element);
  // A file dropped anywhere on the conversation is sent like one chosen with Attach.
  attach.dropZone(/** @type {HTMLElement} */ (composer.element.closest('section.chat')));
  render();
  // After signing in, focus starts where the work does (the queue), not on the page's body.
  if (justSignedIn) lists.focusQueue();
  socket.joinOfficers();
  socket.connect();
}

/** @type {Session | null} */
const existing = stored.load(STORAGE_KEY);
if (existing) showConsole(existing);
else showLogin();
