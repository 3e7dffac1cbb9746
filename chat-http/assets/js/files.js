// @ts-check
/**
 * What files this server takes, as it writes them into the page (a JSON data block,
 * `#attachments-data`: `{ enabled, maxBytes, types }`; docs/API.md, "Attachments"), and
 * the words for them: a file's size for people, the types in words, and why a file is
 * refused, before it is sent where the browser can tell (its size; a binary type the
 * browser names from the file's extension) and after the server's answer otherwise.
 * The server decides: an early refusal here is only a refusal the server would make for
 * certain. Reads the DOM only for the data block; writes nothing to it.
 */
import { ApiError } from './api.js';

/** @typedef {{ enabled: boolean, maxBytes: number, types: string[] }} FileRules */

/** What a page assumes when the server wrote no rules (the engine's defaults). */
const DEFAULT_RULES = /** @type {FileRules} */ ({
  enabled: true,
  maxBytes: 10 * 1024 * 1024,
  types: ['image/png', 'image/jpeg', 'image/webp', 'application/pdf', 'text/plain'],
});

/** The types in words, in the plural ("PDF documents"); others are named by MIME type. */
/** @type {Record<string, string>} */
const TYPE_WORDS = {
  'image/png': 'PNG images',
  'image/jpeg': 'JPEG images',
  'image/webp': 'WebP images',
  'image/gif': 'GIF images',
  'image/tiff': 'TIFF images',
  'application/pdf': 'PDF documents',
  'text/plain': 'plain text files',
  'text/csv': 'CSV tables',
};

/** Types a browser shows as pictures, which the pages draw as thumbnails. */
const PICTURES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);

/** @returns {FileRules} what the server wrote into the page */
export function fileRules() {
  const block = document.getElementById('attachments-data');
  try {
    const data = JSON.parse(block?.textContent ?? '');
    if (
      typeof data?.enabled === 'boolean' &&
      Number.isFinite(data.maxBytes) &&
      Array.isArray(data.types) &&
      data.types.every((/** @type {unknown} */ t) => typeof t === 'string')
    ) {
      return data;
    }
  } catch {
    // No block (a page saved to disk, an older server): the engine's defaults.
  }
  return DEFAULT_RULES;
}

/**
 * A number of bytes for people: "512 bytes", "52 KB", "1.5 MB" (1 KB = 1024 bytes).
 * @param {number} bytes
 */
export function humanSize(bytes) {
  if (bytes < 1024) return bytes === 1 ? '1 byte' : `${bytes} bytes`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
  return `${shown} ${units[unit]}`;
}

/** @param {FileRules} rules @returns {string} e.g. "PNG images, PDF documents or plain text files" */
export function typesInWords(rules) {
  const words = rules.types.map((t) => TYPE_WORDS[t] ?? t);
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

/** @param {string} contentType as a message's attachment gives it */
export function isPicture(contentType) {
  return PICTURES.has(contentType.split(';')[0].trim().toLowerCase());
}

/**
 * Why the server would refuse this file for certain, in words, or null when it may take
 * it. Certain: no attachments at all, an empty file, a file over the limit, and a type
 * the browser names that is not text and not allowed (for binary formats the browser's
 * type follows the extension, which the server requires to match the bytes). Text is
 * left to the server: it reads the bytes, and takes `.log` files the browser may call
 * `text/x-log`.
 * @param {File} file @param {FileRules} rules
 */
export function refusedBeforeSending(file, rules) {
  const name = `“${file.name}”`;
  if (!rules.enabled) return 'Files cannot be sent in this chat.';
  if (file.size === 0) return `${name} is empty: there is nothing to send.`;
  if (file.size > rules.maxBytes) {
    return `${name} is too large to send (${humanSize(file.size)}): files can be up to ${humanSize(rules.maxBytes)}.`;
  }
  const type = file.type.toLowerCase();
  const textAllowed = rules.types.some((t) => t.startsWith('text/'));
  if (type && !rules.types.includes(type) && !(type.startsWith('text/') && textAllowed)) {
    return `${name} cannot be sent: you can send ${typesInWords(rules)}.`;
  }
  return null;
}

/**
 * The `Content-Type` to send a file with: the browser's type when the server takes it,
 * else none in particular (`application/octet-stream`: the server reads the bytes), so
 * that a type the browser guessed differently (`text/x-log`) does not refuse a file the
 * server would take.
 * @param {File} file @param {FileRules} rules
 */
export function contentTypeOf(file, rules) {
  const type = file.type.toLowerCase();
  return rules.types.includes(type) ? type : 'application/octet-stream';
}

/**
 * Why the server refused an upload, in words (the outbox shows it under the file, with
 * Retry and Discard).
 * @param {unknown} err what api.uploadAttachment threw @param {FileRules} rules
 */
export function uploadRefusal(err, rules) {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
  if (err.status === 413) {
    // The engine says its limit in bytes; a proxy in front may have a lower one.
    const max = /larger than (\d+) bytes/.exec(err.message)?.[1];
    const limit = max ? ` Files can be up to ${humanSize(Number(max))}.` : '';
    return `The file is too large for the server.${limit}`;
  }
  if (err.status === 415) {
    return `The server does not take this file: ${err.message}. You can send ${typesInWords(rules)}.`;
  }
  if (err.code === 'upload_incomplete') {
    return 'The upload did not finish: the connection broke off or was too slow.';
  }
  if (err.code === 'invalid_parameter') return `The file's name was not accepted: ${err.message}.`;
  return err.message;
}
