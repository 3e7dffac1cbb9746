// @ts-check
/**
 * The REST half of the wire contract (docs/API.md): one function per endpoint the pages
 * use. Every failure is thrown as an ApiError carrying the contract's error code.
 * Must not touch the DOM.
 */

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the server could not be reached)
   * @param {string} code the contract's snake_case error code
   * @param {string} message a sentence a person can act on
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * @param {string} method
 * @param {string} path
 * @param {{ token?: string | null, body?: unknown }} [options]
 * @returns {Promise<any>}
 */
async function request(method, path, { token, body } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'The server cannot be reached. Check your connection.');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error;
    throw new ApiError(
      response.status,
      error?.code ?? 'http_error',
      error?.message ?? `The server answered ${response.status}.`,
    );
  }
  return data;
}

/** @param {string} officerId @param {string} [password] */
export const officerLogin = (officerId, password) =>
  request('POST', '/api/officers/login', {
    body: password ? { officerId, password } : { officerId },
  });

/** @param {string} customerId @param {string | null} [signature] */
export const customerLogin = (customerId, signature) =>
  request('POST', '/api/customers/login', {
    body: signature ? { customerId, signature } : { customerId },
  });

/** @param {string} identityToken a JWT from the host application */
export const customerLoginWithToken = (identityToken) =>
  request('POST', '/api/customers/login', { body: { identityToken } });

/** Revokes the token (an extension of the contract). @param {string} token */
export const logout = (token) => request('POST', '/api/logout', { token });

/** @param {string} token */
export const queue = (token) => request('GET', '/api/officers/queue', { token });

/**
 * An officer's chats: `open` (pending or assigned) or `resolved`, newest activity first.
 * @param {string} token @param {string} officerId @param {'open' | 'resolved' | 'all'} status
 */
export const officerChats = (token, officerId, status) =>
  request('GET', `/api/officers/${encodeURIComponent(officerId)}/chats?status=${status}`, { token });

/** Every officer, with display names (officers and the admin only). @param {string} token */
export const officers = (token) => request('GET', '/api/officers', { token });

/** A customer's chats, newest first. @param {string} token @param {string} customerId */
export const customerChats = (token, customerId) =>
  request('GET', `/api/customers/${encodeURIComponent(customerId)}/chats`, { token });

/** @param {string} token @param {string} officerId @param {string} chatId */
export const claim = (token, officerId, chatId) =>
  request(
    'POST',
    `/api/officers/${encodeURIComponent(officerId)}/claim/${encodeURIComponent(chatId)}`,
    { token },
  );

/** @param {string} token @param {string} chatId */
export const chat = (token, chatId) =>
  request('GET', `/api/chats/${encodeURIComponent(chatId)}`, { token });

/**
 * The newest `limit` messages of a chat, ascending by seq.
 * @param {string} token @param {string} chatId @param {number} [limit]
 */
export const latestMessages = (token, chatId, limit = 100) =>
  request(
    'GET',
    `/api/chats/${encodeURIComponent(chatId)}/messages?before=${Number.MAX_SAFE_INTEGER}&limit=${limit}`,
    { token },
  );

/**
 * Sends a message. The clientMessageId makes a retry of the same send harmless.
 * @param {string} token @param {string} chatId @param {string} content @param {string} clientMessageId
 */
export const sendMessage = (token, chatId, content, clientMessageId) =>
  request('POST', `/api/chats/${encodeURIComponent(chatId)}/messages`, {
    token,
    body: { content, clientMessageId },
  });

/**
 * Sends a file as a message (`POST /api/chats/{chatId}/attachments`), the raw bytes as
 * the body. With XMLHttpRequest, not fetch, because only it reports the upload's
 * progress. The clientMessageId makes a retry harmless, as for a text. Rejects with an
 * ApiError, or with a DOMException named `AbortError` once `signal` aborts.
 * @param {string} token @param {string} chatId @param {File} file
 * @param {string} clientMessageId
 * @param {{ contentType: string, onProgress?: (sent: number, total: number) => void, signal?: AbortSignal }} options
 * @returns {Promise<any>} the stored message, with its `attachment`
 */
export function uploadAttachment(token, chatId, file, clientMessageId, { contentType, onProgress, signal }) {
  const query = `name=${encodeURIComponent(file.name)}&clientMessageId=${encodeURIComponent(clientMessageId)}`;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException('The upload was cancelled.', 'AbortError'));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/chats/${encodeURIComponent(chatId)}/attachments?${query}`);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', contentType);
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
      } else {
        const error = data && data.error;
        reject(
          new ApiError(xhr.status, error?.code ?? 'http_error', error?.message ?? `The server answered ${xhr.status}.`),
        );
      }
    };
    xhr.onerror = () =>
      reject(new ApiError(0, 'unreachable', 'The server cannot be reached. Check your connection.'));
    xhr.onabort = () => reject(new DOMException('The upload was cancelled.', 'AbortError'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

/**
 * An attachment's bytes (`GET /api/attachments/{id}`), fetched with the bearer token,
 * which an `<img src>` or a link could not send.
 * @param {string} token @param {string} attachmentId @returns {Promise<Blob>}
 */
export async function attachmentBlob(token, attachmentId) {
  let response;
  try {
    response = await fetch(`/api/attachments/${encodeURIComponent(attachmentId)}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'The server cannot be reached. Check your connection.');
  }
  if (!response.ok) {
    let error = null;
    try {
      error = (await response.json())?.error;
    } catch {
      error = null;
    }
    throw new ApiError(
      response.status,
      error?.code ?? 'http_error',
      error?.message ?? `The server answered ${response.status}.`,
    );
  }
  return response.blob();
}

/** Ends a chat (its officer, its customer). @param {string} token @param {string} chatId */
export const resolve = (token, chatId) =>
  request('POST', `/api/chats/${encodeURIComponent(chatId)}/resolve`, { token });

/** Puts a chat back in the queue (its officer). @param {string} token @param {string} chatId */
export const release = (token, chatId) =>
  request('POST', `/api/chats/${encodeURIComponent(chatId)}/release`, { token });

/**
 * Hands a chat to another officer (its officer).
 * @param {string} token @param {string} chatId @param {string} officerId
 */
export const transfer = (token, chatId, officerId) =>
  request('POST', `/api/chats/${encodeURIComponent(chatId)}/transfer`, {
    token,
    body: { officerId },
  });

/** Opens a resolved chat again, as the caller's. @param {string} token @param {string} chatId */
export const reopen = (token, chatId) =>
  request('POST', `/api/chats/${encodeURIComponent(chatId)}/reopen`, { token, body: {} });

/** Who a token is: `{ role, subject, officer? }`. @param {string} token */
export const me = (token) => request('GET', '/api/me', { token });

/**
 * Creates an officer (the admin).
 * @param {string} token
 * @param {{ id: string, password?: string, displayName?: string, capacity?: number }} officer
 */
export const createOfficer = (token, officer) =>
  request('POST', '/api/officers', { token, body: officer });

/**
 * Sets an officer's capacity (the admin); null asks for the server's default.
 * @param {string} token @param {string} officerId @param {number | null} capacity
 */
export const setCapacity = (token, officerId, capacity) =>
  request('PUT', `/api/officers/${encodeURIComponent(officerId)}/capacity`, {
    token,
    body: { capacity },
  });

/**
 * Sets whether an officer takes chats now (that officer, or the admin).
 * @param {string} token @param {string} officerId @param {'available' | 'away'} availability
 */
export const setAvailability = (token, officerId, availability) =>
  request('PUT', `/api/officers/${encodeURIComponent(officerId)}/availability`, {
    token,
    body: { availability },
  });

/** Disables an officer (the admin). @param {string} token @param {string} officerId */
export const disableOfficer = (token, officerId) =>
  request('POST', `/api/officers/${encodeURIComponent(officerId)}/disable`, { token });

/** Enables a disabled officer again (the admin). @param {string} token @param {string} officerId */
export const enableOfficer = (token, officerId) =>
  request('POST', `/api/officers/${encodeURIComponent(officerId)}/enable`, { token });

// Webhooks (the admin; docs/API.md, "Webhooks").

/** Every webhook with its pending and dead deliveries (no secret). @param {string} token */
export const webhooks = (token) => request('GET', '/api/webhooks', { token });

/**
 * Makes a webhook's dead deliveries pending again (the admin); answers `{ retried }`.
 * @param {string} token @param {string} webhookId
 */
export const retryWebhook = (token, webhookId) =>
  request('POST', '/api/webhooks/retry', { token, body: { webhookId } });
/**
 * The desk report of a period (the admin): chats created and resolved, time to first
 * reply and to resolution (median, p90), the same per officer.
 * @param {string} token @param {string} from RFC 3339 @param {string} to RFC 3339
 */
export const deskReport = (token, from, to) =>
  request('GET', `/api/reports/desk?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, { token });
