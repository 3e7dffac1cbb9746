// @ts-check
/** The connection indicator: says in words (and colour) whether live updates flow. */
import { h } from './dom.js';

const LABELS = {
  connecting: 'Connecting…',
  connected: 'Live',
  reconnecting: 'Reconnecting…',
  unauthorized: 'Signed out',
};

export class ConnectionBadge {
  constructor() {
    this.element = h('span', { class: 'connection connecting', role: 'status', 'aria-live': 'polite' }, LABELS.connecting);
  }

  /** @param {keyof typeof LABELS} state */
  set(state) {
    this.element.className = `connection ${state}`;
    this.element.textContent = LABELS[state];
    this.element.setAttribute('data-state', state);
  }
}
