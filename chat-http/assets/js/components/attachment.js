// @ts-check
/**
 * A message's attachment, drawn in its bubble: a picture (PNG, JPEG, WebP) as a
 * thumbnail, any other file (PDF, text) as an icon with its name and size; either is a
 * button that saves the file. The bytes need the bearer token, which an `<img src>` or a
 * link cannot send, so they are fetched (`FileSource`, the page's, with its token) and
 * shown or saved through an object URL (`blob:`, which the pages' policy allows for
 * images only). A thumbnail is fetched when it comes near the screen, and its object URL
 * is revoked once it is no longer in the page (`releaseHidden`, which the timeline calls
 * when it is drawn anew). Also the small icons the attach controls use. Shows names as
 * text only.
 */
import { humanSize, isPicture } from '../files.js';
import { h } from './dom.js';

/**
 * Where a page gets a file's bytes: `api.attachmentBlob` with its token.
 * @typedef {{ blob: (attachmentId: string) => Promise<Blob> }} FileSource
 */

const SVG = 'http://www.w3.org/2000/svg';

/** Outlines drawn with the text's colour, 24 x 24. */
const ICONS = {
  clip: 'M16.5 6.5 8.6 14.4a1.9 1.9 0 0 0 2.7 2.7l7.9-7.9a3.8 3.8 0 0 0-5.4-5.4l-7.9 7.9a5.7 5.7 0 0 0 8.1 8.1l7-7',
  document: 'M14 2.5H6.5a1.5 1.5 0 0 0-1.5 1.5v16a1.5 1.5 0 0 0 1.5 1.5h11a1.5 1.5 0 0 0 1.5-1.5V7.5zM14 2.5v5h5M8.5 12.5h7M8.5 16h7',
  picture: 'M4.5 3.5h15a1 1 0 0 1 1 1v15a1 1 0 0 1-1 1h-15a1 1 0 0 1-1-1v-15a1 1 0 0 1 1-1zM3.5 16.5l5-5 4 4 2.5-2.5 5.5 5.5M15.5 8.5a1 1 0 1 1 0 .01',
};

/**
 * An inline icon, hidden from assistive technology (the control next to it is named).
 * @param {keyof typeof ICONS} name
 */
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon icon-${name}`);
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

/** Object URLs of thumbnails, by their image, until the image leaves the page. */
/** @type {Map<HTMLImageElement, string>} */
const thumbnails = new Map();

/** Revokes the object URLs of thumbnails no longer in the page. */
export function releaseHidden() {
  for (const [img, url] of thumbnails) {
    if (img.isConnected) continue;
    URL.revokeObjectURL(url);
    thumbnails.delete(img);
  }
}

/** Loads of thumbnails not yet near the screen, by their element. */
/** @type {WeakMap<Element, () => void>} */
const waiting = new WeakMap();
const nearScreen =
  typeof IntersectionObserver === 'function'
    ? new IntersectionObserver(
        (entries) => {
          for (const entry of entries) {
            if (!entry.isIntersecting) continue;
            nearScreen?.unobserve(entry.target);
            waiting.get(entry.target)?.();
            waiting.delete(entry.target);
          }
        },
        { rootMargin: '200px' },
      )
    : null;

/** Why a file could not be fetched, in words. @param {unknown} err */
function fetchRefusal(err) {
  const status = /** @type {any} */ (err)?.status;
  if (status === 404) return 'This file is no longer available.';
  if (status === 401 || status === 403) return 'You can no longer open this file.';
  if (status === 0) return 'The server cannot be reached. Check your connection.';
  return err instanceof Error ? err.message : String(err);
}

/**
 * Saves a file through a temporary link: the browser downloads it under `name`.
 * @param {string} url an object URL @param {string} name
 */
function save(url, name) {
  const link = /** @type {HTMLAnchorElement} */ (h('a', { href: url, download: name, hidden: true }));
  document.body.append(link);
  link.click();
  link.remove();
}

/**
 * The attachment of a stored message.
 * @param {{ id: string, name: string, contentType: string, size: number }} attachment
 * @param {FileSource} source
 * @returns {HTMLElement}
 */
export function attachmentView(attachment, source) {
  const picture = isPicture(attachment.contentType);
  /** The thumbnail's object URL, once loaded: a download reuses it. */
  /** @type {string | null} */
  let shownUrl = null;
  const error = h('span', { class: 'file-error' });
  const caption = h(
    'span',
    { class: 'file-caption' },
    h('span', { class: 'visually-hidden' }, 'Download '),
    h('span', { class: 'file-name' }, attachment.name),
    h('span', { class: 'file-size' }, humanSize(attachment.size)),
  );
  const img = /** @type {HTMLImageElement} */ (h('img', { class: 'thumb', alt: '', decoding: 'async' }));
  const button = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        class: `attachment ${picture ? 'picture loading' : 'document'}`,
        'data-attachment-id': attachment.id,
        title: `Download ${attachment.name}`,
      },
      picture ? h('span', { class: 'frame' }, icon('picture'), img) : icon('document'),
      caption,
    )
  );
  const view = h('div', { class: 'attachment-view' }, button, error);

  /** Without a thumbnail (not loaded, or not an image after all) it looks like a file. */
  const asDocument = () => {
    button.classList.remove('picture', 'loading');
    button.classList.add('document');
    button.querySelector('.frame')?.replaceWith(icon('document'));
  };

  const saveIt = async () => {
    if (button.getAttribute('aria-busy') === 'true') return;
    error.textContent = '';
    error.removeAttribute('role');
    button.setAttribute('aria-busy', 'true');
    try {
      if (shownUrl) {
        save(shownUrl, attachment.name);
      } else {
        const url = URL.createObjectURL(await source.blob(attachment.id));
        save(url, attachment.name);
        // Long enough for the browser to have taken the bytes.
        setTimeout(() => URL.revokeObjectURL(url), 60000);
      }
    } catch (err) {
      error.setAttribute('role', 'alert');
      error.textContent = fetchRefusal(err);
    } finally {
      button.removeAttribute('aria-busy');
    }
  };
  button.addEventListener('click', saveIt);

  if (picture) {
    img.addEventListener('load', () => button.classList.remove('loading'));
    // Bytes a browser cannot draw: shown and saved as a file.
    img.addEventListener('error', asDocument);
    const load = async () => {
      try {
        const blob = await source.blob(attachment.id);
        releaseHidden();
        if (!img.isConnected) return;
        shownUrl = URL.createObjectURL(blob);
        thumbnails.set(img, shownUrl);
        img.src = shownUrl;
      } catch {
        asDocument();
      }
    };
    if (nearScreen) {
      waiting.set(button, load);
      nearScreen.observe(button);
    } else {
      setTimeout(load, 0);
    }
  }
  return view;
}
