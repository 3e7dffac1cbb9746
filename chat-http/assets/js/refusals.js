// @ts-check
/**
 * What a refused action means to the person who tried it, by the contract's error code:
 * an officer's lifecycle actions (claim, end, put back, transfer, reopen; docs/API.md,
 * "Lifecycle"), an officer's change of their own availability, and the admin's
 * management of officers (create, capacity, disable, enable). The server decides; this
 * only words its answer. Must not touch the DOM.
 */
import { ApiError } from './api.js';

/** @type {Record<string, string>} */
const SENTENCES = {
  already_assigned: 'Too late: another officer has already taken this chat.',
  not_assigned: 'This chat is waiting in the queue: claim it first.',
  chat_resolved: 'This conversation has already ended.',
  not_resolved: 'This conversation is open again already (someone reopened it, or it never ended).',
  customer_has_open_chat:
    'The customer has started a new conversation since this one ended: continue there instead of reopening this one.',
  officer_not_found: 'That colleague no longer exists. Pick another one.',
  officer_disabled: "That colleague's account is disabled. Pick another one.",
  at_capacity: 'That officer has no room for another chat right now.',
  chat_not_found: 'This chat no longer exists.',
  forbidden: 'This chat is no longer yours, so you cannot do that.',
};

/**
 * @param {unknown} err what an api.js call threw
 * @returns {string} a sentence a person can act on
 */
export function refusal(err) {
  if (err instanceof ApiError) {
    return SENTENCES[err.code] ?? (err.status === 403 ? SENTENCES.forbidden : err.message);
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The one sentence for a claim another officer won: "Too late: Bob took the chat of
 * cust-202." The winner is the chat's owner as the console last heard it (the queue's
 * `queue_chat_claimed` event often comes first), else the officer the refusal names
 * (chatcore's `already_assigned` message ends with their id), else no one in particular.
 * @param {unknown} err the claim's refusal (`already_assigned`)
 * @param {string} customer who the chat is with, e.g. "cust-202"
 * @param {string | null | undefined} owner the chat's owner as the console knows it
 * @param {(officerId: string) => string} nameOf an officer's display name, else their id
 * @returns {string}
 */
export function lostClaim(err, customer, owner, nameOf) {
  const named = err instanceof ApiError ? /assigned to officer ([A-Za-z0-9._-]{1,64})$/.exec(err.message)?.[1] : undefined;
  const winner = owner ?? named;
  return `Too late: ${winner ? nameOf(winner) : 'another officer'} took the chat of ${customer}.`;
}

/** An officer's refusals about themselves (their availability). */
/** @type {Record<string, (err: ApiError) => string>} */
const SELF_SENTENCES = {
  forbidden: () => 'Only you or the administrator may change your availability.',
  officer_not_found: () => 'Your officer account no longer exists.',
  invalid_field: (err) => `Not accepted: ${err.message}.`,
  invalid_body: (err) => `Not accepted: ${err.message}.`,
};

/**
 * @param {unknown} err what an api.js call about the officer themselves threw
 * @returns {string} a sentence the officer can act on
 */
export function selfRefusal(err) {
  if (err instanceof ApiError) {
    const sentence = SELF_SENTENCES[err.code];
    return sentence ? sentence(err) : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The admin's refusals; the server's own message where it names what to fix. */
/** @type {Record<string, (err: ApiError) => string>} */
const ADMIN_SENTENCES = {
  officer_exists: () => 'An officer with this id exists already. Choose another id.',
  invalid_id: (err) => `The id was not accepted: ${err.message}.`,
  invalid_field: (err) => `Not accepted: ${err.message}.`,
  invalid_body: (err) => `Not accepted: ${err.message}.`,
  officer_not_found: () => 'That officer no longer exists.',
  unauthorized: () => 'The admin token is no longer accepted. Sign in again.',
  forbidden: () => 'Only the administrator may do this. Sign in again with the admin token.',
};

/**
 * @param {unknown} err what an api.js call threw
 * @returns {string} a sentence the admin can act on
 */
export function adminRefusal(err) {
  if (err instanceof ApiError) {
    const sentence = ADMIN_SENTENCES[err.code];
    return sentence ? sentence(err) : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
