// @ts-check
/**
 * The WebSocket half of the wire contract: authenticates with a frame (never in the URL),
 * keeps the rooms it was asked to join, reconnects by itself after a drop and rejoins
 * each chat with afterSeq = the last seq it delivered, so nothing is missed or delivered
 * twice. A page that is left closes its socket (a page kept in the browser's
 * back/forward cache would otherwise stay connected, and its officer "online"), and
 * opens it again if the page is shown again. Also carries the pages' `typing` and
 * `read` frames (dropped, and said so, while not connected). Must not touch the DOM: it
 * reports through callbacks.
 */

/** @typedef {'connecting' | 'connected' | 'reconnecting' | 'unauthorized'} SocketState */

export class ChatSocket {
  /**
   * @param {{
   *   token: string,
   *   onEvent: (event: any) => void,
   *   onState: (state: SocketState) => void,
   * }} options every server frame but `ready` goes to onEvent, `joined` included (after
   *   a reconnect, a `joined` for officers:all is the moment to re-read the queue).
   */
  constructor({ token, onEvent, onState }) {
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState;
    /** @type {Map<string, number>} chat id -> last seq delivered */
    this.chats = new Map();
    this.officers = false;
    this.closed = false;
    this.attempt = 0;
    this.everConnected = false;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** True once the current connection has been answered `ready`. */
    this.ready = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** True while closed because the page was left, to be opened again if it returns. */
    this.suspended = false;
    this.onPageHide = () => {
      if (this.closed) return;
      this.suspended = true;
      this.shut();
    };
    this.onPageShow = () => {
      if (!this.suspended) return;
      this.suspended = false;
      this.connect();
    };
  }

  connect() {
    this.closed = false;
    addEventListener('pagehide', this.onPageHide);
    addEventListener('pageshow', this.onPageShow);
    this.onState(this.everConnected ? 'reconnecting' : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    this.ready = false;
    ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'auth', token: this.token })));
    ws.addEventListener('message', (e) => this.handle(e.data));
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      if (this.closed) return;
      if (e.code === 4401) {
        this.closed = true;
        this.onState('unauthorized');
        return;
      }
      this.onState('reconnecting');
      // Exponential backoff with jitter, capped at 10 s.
      const delay = Math.min(10000, 250 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  /** @param {string} data */
  handle(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (event.type === 'ready') {
      this.everConnected = true;
      this.ready = true;
      this.attempt = 0;
      this.onState('connected');
      for (const [chatId, afterSeq] of this.chats) this.sendJoin(chatId, afterSeq);
      if (this.officers) this.send({ type: 'join_officers' });
      return;
    }
    if (event.type === 'error' && event.code === 'forbidden' && event.chatId) {
      // The server left a chat this user may no longer read (another officer took it):
      // it is not rejoined after a reconnect.
      this.chats.delete(event.chatId);
    }
    if (event.type === 'new_message') {
      const { chatId, seq } = event.message;
      const last = this.chats.get(chatId);
      // Not joined (any more), or already delivered: drop.
      if (last === undefined || seq <= last) return;
      this.chats.set(chatId, seq);
    }
    this.onEvent(event);
  }

  /**
   * Joins a chat; messages after `afterSeq` are delivered, then live ones.
   * @param {string} chatId @param {number} afterSeq
   */
  joinChat(chatId, afterSeq) {
    this.chats.set(chatId, afterSeq);
    this.sendJoin(chatId, afterSeq);
  }

  /** @param {string} chatId */
  leaveChat(chatId) {
    if (this.chats.delete(chatId)) this.send({ type: 'leave_chat', chatId });
  }

  joinOfficers() {
    this.officers = true;
    this.send({ type: 'join_officers' });
  }

  /**
   * Tells the others in the chat that this user is typing (nothing is stored).
   * @param {string} chatId @returns {boolean} whether the frame went out
   */
  typing(chatId) {
    return this.send({ type: 'typing', chatId });
  }

  /**
   * Moves this user's read mark of a chat forward to `seq` (answered only if refused).
   * @param {string} chatId @param {number} seq @returns {boolean} whether the frame went out
   */
  read(chatId, seq) {
    return this.send({ type: 'read', chatId, seq });
  }

  /** Closes for good: nothing reconnects it but `connect`. */
  close() {
    this.suspended = false;
    removeEventListener('pagehide', this.onPageHide);
    removeEventListener('pageshow', this.onPageShow);
    this.shut();
  }

  shut() {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.close(1000);
    this.ws = null;
  }

  /** @param {string} chatId @param {number} afterSeq */
  sendJoin(chatId, afterSeq) {
    this.send({ type: 'join_chat', chatId, afterSeq });
  }

  /** @param {object} frame @returns {boolean} whether it went out */
  send(frame) {
    // Before `ready` nothing is sent: the rooms are (re)joined when it arrives.
    if (this.ws && this.ready && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }
}
