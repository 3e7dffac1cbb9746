// @ts-check
/**
 * The login card both pages open with: a title, the page's own fields, a submit button
 * and an error line. While `login` runs the button is disabled; a failure is shown as
 * the server's sentence and the form can be sent again.
 */
import { h } from './dom.js';

/**
 * @param {{
 *   title: string,
 *   fields: (Node | string)[],
 *   submit: string,
 *   notice?: string,
 *   login: () => Promise<void>,
 * }} options
 * @returns {HTMLElement}
 */
export function loginForm({ title, fields, submit, notice, login }) {
  const error = h('p', { class: 'error', role: 'alert' }, notice ?? '');
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit' }, submit));
  return h(
    'form',
    {
      id: 'login-form',
      class: 'card login',
      onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        error.textContent = '';
        try {
          await login();
        } catch (err) {
          error.textContent = err instanceof Error ? err.message : String(err);
          button.disabled = false;
        }
      },
    },
    h('h1', {}, title),
    ...fields,
    button,
    error,
  );
}
