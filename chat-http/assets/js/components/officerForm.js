// @ts-check
/**
 * The admin's form for a new officer: id, display name, password and, optionally, a
 * capacity of their own. It sends what was typed (the server decides what is
 * acceptable), clears itself once the officer exists, and shows a refusal in words.
 */
import { adminRefusal } from '../refusals.js';
import { h } from './dom.js';

/**
 * @param {(body: { id: string, password?: string, displayName?: string, capacity?: number }) => Promise<any>} create
 *   asks the server; resolves to the new officer
 * @returns {HTMLElement}
 */
export function officerForm(create) {
  const field = (/** @type {string} */ id, /** @type {string} */ label, /** @type {Record<string, string | boolean>} */ attrs) => {
    const input = /** @type {HTMLInputElement} */ (h('input', { id, ...attrs }));
    return { input, row: h('div', { class: 'field' }, h('label', { for: id }, label), input) };
  };
  const id = field('new-officer-id', 'Officer id', { name: 'id', required: true, autocomplete: 'off', maxlength: '64' });
  const name = field('new-officer-name', 'Display name', { name: 'displayName', autocomplete: 'off' });
  const password = field('new-officer-password', 'Password', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' });
  const capacity = field('new-officer-capacity', 'Capacity (optional)', {
    name: 'capacity',
    type: 'number',
    step: '1',
    inputmode: 'numeric',
    placeholder: 'server default',
    'aria-describedby': 'new-officer-capacity-hint',
  });
  const error = h('p', { id: 'create-error', class: 'error', role: 'alert' });
  const done = h('p', { id: 'create-done', class: 'notice info', role: 'status' });
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit' }, 'Create officer'));
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      {
        id: 'create-officer',
        class: 'officer-form',
        onsubmit: async (e) => {
          e.preventDefault();
          error.textContent = '';
          done.textContent = '';
          /** @type {{ id: string, password?: string, displayName?: string, capacity?: number }} */
          const body = { id: id.input.value.trim() };
          if (password.input.value) body.password = password.input.value;
          if (name.input.value.trim()) body.displayName = name.input.value.trim();
          if (capacity.input.value.trim() !== '') body.capacity = Number(capacity.input.value);
          button.disabled = true;
          try {
            const officer = await create(body);
            form.reset();
            done.textContent = `Officer ${officer.displayName ?? officer.id} (${officer.id}) was created.`;
            id.input.focus();
          } catch (err) {
            error.textContent = adminRefusal(err);
          } finally {
            button.disabled = false;
          }
        },
      },
      id.row,
      name.row,
      password.row,
      capacity.row,
      h('p', { id: 'new-officer-capacity-hint', class: 'hint' }, 'The most chats they may hold at once. Leave it empty for the server default.'),
      button,
      error,
      done,
    )
  );
  return h('section', { class: 'card', 'aria-labelledby': 'create-heading' }, h('h2', { id: 'create-heading' }, 'New officer'), form);
}
