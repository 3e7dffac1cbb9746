// @ts-check
/**
 * What a refused lifecycle action (claim, end, put back, transfer, reopen) means to the
 * person who tried it, by the contract's error code (docs/API.md, "Lifecycle"). The
 * server decides; this only words its answer. Must not touch the DOM.
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
