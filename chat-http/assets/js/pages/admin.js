// @ts-check
/**
 * The admin console: sign in with the admin token, then the queue at a glance (how many
 * chats wait, the longest wait) and the officers (presence, availability, load, account)
 * with their management: create, set a capacity or the server's default, disable and
 * enable; and the desk report of a chosen period. It stays live over the socket (`officers:all`): queue events and chat changes
 * re-read the queue and the officers (at most a few times a second), and an officer's
 * change updates their row in place. The webhooks' pending and dead deliveries are read
 * every few seconds, and dead ones can be retried. The token lives in sessionStorage only. Business
 * rules stay on the server: a refusal is shown in its words.
 */
import * as api from '../api.js';
import { ConnectionBadge } from '../components/connection.js';
import { DeskReport } from '../components/deskReport.js';
import { h } from '../components/dom.js';
import { loginForm } from '../components/loginForm.js';
import { officerForm } from '../components/officerForm.js';
import { OfficerTable } from '../components/officerTable.js';
import { QueueStats } from '../components/queueStats.js';
import { WebhookTable } from '../components/webhookTable.js';
import { adminRefusal } from '../refusals.js';
import * as stored from '../session.js';
import { ChatSocket } from '../socket.js';
import { throttled } from '../throttle.js';

const STORAGE_KEY = 'chat.admin';
const root = /** @type {HTMLElement} */ (document.getElementById('app'));
/** The least time between two reads of the same list, in ms. */
const REFRESH_GAP = 300;
/** How often the webhooks' backlog is read, in ms (deliveries are not pushed). */
const WEBHOOKS_EVERY = 5000;

/** @typedef {{ token: string }} Session */

/** Events after which the queue may have changed. */
const QUEUE_EVENTS = new Set(['queue_chat_created', 'queue_chat_claimed', 'chat_updated']);

/** @param {string} [notice] */
function showLogin(notice) {
  const token = /** @type {HTMLInputElement} */ (
    h('input', { id: 'admin-token', name: 'token', type: 'password', required: true, autocomplete: 'current-password', spellcheck: 'false' })
  );
  root.replaceChildren(
    loginForm({
      title: 'Admin console',
      fields: [
        h('label', { for: 'admin-token' }, 'Admin token'),
        token,
        h('p', { class: 'hint' }, 'The token the server was started with (--admin-token-file). It is kept in this tab only.'),
      ],
      submit: 'Sign in',
      notice,
      login: async () => {
        const value = token.value.trim();
        let who;
        try {
          who = await api.me(value);
        } catch (err) {
          if (err instanceof api.ApiError && err.status === 401) {
            throw new Error('That is not the admin token of this server. Check it and try again.');
          }
          throw new Error(adminRefusal(err));
        }
        if (who.role !== 'admin') {
          throw new Error(`That token signs in the ${who.role} ${who.subject}, not the administrator. Use the admin token.`);
        }
        const session = { token: value };
        stored.save(STORAGE_KEY, session);
        showConsole(session);
      },
    }),
  );
  token.focus();
}

/** @param {Session} session */
function showConsole(session) {
  const { token } = session;
  const badge = new ConnectionBadge();
  const notice = h('p', { id: 'notice', class: 'notice', role: 'alert' });
  const officersNotice = h('p', { id: 'officers-notice', class: 'notice', role: 'alert' });
  const stats = new QueueStats();
  /** False once signed out: reads still under way then change nothing. */
  let active = true;

  /** @param {HTMLElement} line @param {string} text @param {boolean} [info] */
  const say = (line, text, info = false) => {
    line.className = info ? 'notice info' : 'notice';
    line.textContent = text;
  };

  /** A failed read: a token no longer accepted signs out; anything else is said. @param {unknown} err */
  const failed = (err) => {
    if (!active) return;
    if (err instanceof api.ApiError && err.status === 401) signOut('The admin token is no longer accepted. Please sign in again.');
    else say(notice, adminRefusal(err));
  };

  /**
   * Officers changed (by an event or an answer) while the list was being read: the
   * read may predate the change, so it does not overwrite them. Null when no read runs.
   * @type {Set<string> | null}
   */
  let changedDuringRead = null;
  /** Shows an officer as the server gave them, now. @param {any} officer @param {boolean} [force] */
  const show = (officer, force = false) => {
    changedDuringRead?.add(officer.id);
    table.update(officer, force);
  };

  /**
   * Runs one of the table's actions and shows the officer it answers.
   * @param {string} officerId @param {(id: string) => Promise<any>} call @param {(name: string) => string} done
   */
  const act = async (officerId, call, done) => {
    say(officersNotice, '');
    const name = table.nameOf(officerId);
    try {
      const officer = await call(officerId);
      show(officer, true);
      say(officersNotice, done(table.nameOf(officer.id)), true);
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) return failed(err);
      say(officersNotice, `${name}: ${adminRefusal(err)}`);
    }
  };

  const table = new OfficerTable({
    capacity: (id, capacity) =>
      act(
        id,
        (officerId) => api.setCapacity(token, officerId, capacity),
        (name) => (capacity === null ? `${name} now has the server's default capacity.` : `${name} may now hold ${capacity} chats at once.`),
      ),
    disable: (id) => act(id, (officerId) => api.disableOfficer(token, officerId), (name) => `${name} is disabled; their sessions have ended.`),
    enable: (id) => act(id, (officerId) => api.enableOfficer(token, officerId), (name) => `${name} may sign in again.`),
    say: (text) => say(officersNotice, text),
  });

  const readQueue = throttled(async () => {
    if (!active) return;
    try {
      stats.set(await api.queue(token));
    } catch (err) {
      failed(err);
    }
  }, REFRESH_GAP);

  const readOfficers = throttled(async () => {
    if (!active) return;
    const changed = new Set();
    changedDuringRead = changed;
    try {
      const officers = await api.officers(token);
      table.set(officers, changed);
    } catch (err) {
      failed(err);
    } finally {
      changedDuringRead = null;
    }
  }, REFRESH_GAP);

  // Webhooks: read now and every few seconds; a retry reads again at once.
  const hooks = new WebhookTable({
    retry: async (webhookId) => {
      try {
        const { retried } = await api.retryWebhook(token, webhookId);
        hooks.say(`${retried} dead ${retried === 1 ? 'delivery is' : 'deliveries are'} being sent again.`, true);
      } catch (err) {
        if (err instanceof api.ApiError && err.status === 401) return failed(err);
        hooks.say(adminRefusal(err));
      }
      readWebhooks();
    },
  });
  const readWebhooks = async () => {
    if (!active) return;
    try {
      hooks.set(await api.webhooks(token));
    } catch (err) {
      failed(err);
    }
  };
  const webhookTimer = setInterval(readWebhooks, WEBHOOKS_EVERY);

  const socket = new ChatSocket({
    token,
    onState: (state) => {
      badge.set(state);
      if (state === 'unauthorized') signOut('The admin token is no longer accepted. Please sign in again.');
    },
    onEvent: (event) => {
      if (event.type === 'joined' && event.room === 'officers:all') {
        // Subscribed (again, after a reconnect): events missed while away are not
        // replayed, so read both lists now.
        if (notice.textContent) say(notice, '');
        readQueue();
        readOfficers();
      } else if (event.type === 'officer_updated' && event.officer) {
        show(event.officer);
      } else if (QUEUE_EVENTS.has(event.type)) {
        readQueue();
        // Loads change with the chats' owners; officers' events do not carry them yet.
        if (event.type === 'chat_updated') readOfficers();
      } else if (event.type === 'error' && !event.chatId) {
        say(notice, `Live updates were refused: ${event.message}. The page shows what it read; reload it to see changes.`);
      }
    },
  });

  /** @param {string} [text] */
  const signOut = (text) => {
    active = false;
    clearInterval(webhookTimer);
    socket.close();
    stats.stop();
    stored.clear(STORAGE_KEY);
    showLogin(text);
  };

  root.replaceChildren(
    h(
      'div',
      { class: 'console admin' },
      h(
        'header',
        { class: 'topbar' },
        h('h1', {}, 'Admin console'),
        h('span', { class: 'who' }, 'Signed in as the administrator'),
        badge.element,
        // The admin token is the server's configuration, not a session: signing out
        // forgets it in this tab, and there is nothing to revoke.
        h('button', { type: 'button', id: 'sign-out', class: 'link', onclick: () => signOut() }, 'Sign out'),
      ),
      notice,
      h('div', { class: 'admin-top' }, stats.element, officerForm(async (body) => {
        const officer = await api.createOfficer(token, body);
        show(officer, true);
        return officer;
      })),
      h(
        'section',
        { class: 'card officers', 'aria-labelledby': 'officers-heading' },
        h('h2', { id: 'officers-heading' }, 'Officers'),
        officersNotice,
        h('div', { class: 'table-scroll' }, table.element),
      ),
      hooks.element,
      new DeskReport(async (from, to) => {
        try {
          return await api.deskReport(token, from, to);
        } catch (err) {
          if (err instanceof api.ApiError && err.status === 401) failed(err);
          throw new Error(adminRefusal(err));
        }
      }).element,
    ),
  );
  readQueue();
  readOfficers();
  readWebhooks();
  socket.joinOfficers();
  socket.connect();
}

/** @type {Session | null} */
const existing = stored.load(STORAGE_KEY);
if (existing?.token) showConsole(existing);
else showLogin();
