// @ts-check
/**
 * The admin's webhooks: each webhook's address (without its query, which may hold a
 * receiver's token), the events it takes, how many deliveries are pending and how many
 * are dead, and a button that retries the dead ones. The numbers are the server's, read
 * by the page; the retry is the page's callback, which asks the server.
 */
import { h } from './dom.js';

/** @param {string} url */
const shown = (url) => url.split(/[?#]/)[0];

export class WebhookTable {
  /**
   * @param {{ retry: (webhookId: string) => Promise<void> }} actions
   */
  constructor(actions) {
    this.actions = actions;
    this.notice = h('p', { id: 'webhooks-notice', class: 'notice', role: 'status' });
    this.body = h('tbody');
    this.empty = h('p', { id: 'webhooks-empty', class: 'hint' }, 'No webhook is configured (--webhook-url, or POST /api/webhooks).');
    this.table = h(
      'table',
      { id: 'webhooks', class: 'webhooks' },
      h('caption', { class: 'visually-hidden' }, 'Webhooks and their deliveries'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Address'),
          h('th', { scope: 'col' }, 'Events'),
          h('th', { scope: 'col' }, 'Pending'),
          h('th', { scope: 'col' }, 'Dead'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')),
        ),
      ),
      this.body,
    );
    this.element = h(
      'section',
      { class: 'card webhooks-card', 'aria-labelledby': 'webhooks-heading' },
      h('h2', { id: 'webhooks-heading' }, 'Webhooks'),
      this.notice,
      this.empty,
      h('div', { class: 'table-scroll' }, this.table),
    );
    this.set([]);
  }

  /** @param {string} text @param {boolean} [info] */
  say(text, info = false) {
    this.notice.className = info ? 'notice info' : 'notice';
    this.notice.textContent = text;
  }

  /** Shows the webhooks as the server listed them. @param {any[]} webhooks */
  set(webhooks) {
    this.empty.hidden = webhooks.length > 0;
    this.table.hidden = webhooks.length === 0;
    this.body.replaceChildren(
      ...webhooks.map((w) => {
        const retry = /** @type {HTMLButtonElement} */ (
          h('button', { type: 'button', class: 'secondary retry-dead', 'aria-label': `Retry the dead deliveries of ${shown(w.url)}` }, 'Retry dead')
        );
        retry.disabled = !w.dead;
        retry.addEventListener('click', async () => {
          retry.disabled = true;
          await this.actions.retry(w.id);
        });
        return h(
          'tr',
          { 'data-webhook': w.id },
          h('td', { class: 'url' }, shown(w.url)),
          h('td', { class: 'events' }, w.events.join(', ')),
          h('td', { class: 'pending' }, String(w.pending)),
          h('td', { class: 'dead' }, String(w.dead)),
          h('td', {}, retry),
        );
      }),
    );
  }
}
