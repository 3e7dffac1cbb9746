// @ts-check
/**
 * The customer page's branded parts: the bank's colours (as CSS custom properties, so
 * only `#rrggbb` values ever reach CSS), the top bar with its logo and name, the opening
 * hours and whether the bank is open now. Every text is set as text (`h` makes text
 * nodes), never parsed as HTML. Whether the bank is open is recomputed every minute.
 */
import { DAYS, isOpen } from '../branding.js';
import { h } from './dom.js';

/** @typedef {import('../branding.js').Branding} Branding */

export const OPEN_SENTENCE = "We're open";
export const CLOSED_SENTENCE = "We're closed now, leave a message and we'll reply when we open.";

/**
 * Gives the page the bank's colours and its name in the tab's title.
 * @param {Branding} branding
 */
export function applyBranding(branding) {
  const style = document.documentElement.style;
  style.setProperty('--brand-primary', branding.primaryColor);
  style.setProperty('--brand-accent', branding.accentColor);
  document.title = `Chat with ${branding.name}`;
}

/**
 * Fills the page's banner (`<header id="brand">`): logo, name and a short open sign.
 * @param {HTMLElement} banner
 * @param {Branding} branding
 */
export function fillBanner(banner, branding) {
  const sign = h('p', { id: 'open-sign', class: 'open-sign', hidden: true });
  const logo = branding.logo
    ? // The name is written beside it: the logo adds nothing to read out.
      h('img', { class: 'brand-logo', src: branding.logo, alt: '' })
    : h('span', { class: 'brand-mark', 'aria-hidden': 'true' });
  banner.replaceChildren(
    h('div', { class: 'brand-inner' }, logo, h('p', { id: 'brand-name', class: 'brand-name' }, branding.name), sign),
  );
  if (branding.hours) {
    const hours = branding.hours;
    const update = () => {
      const open = isOpen(hours);
      sign.hidden = open === null;
      sign.textContent = open ? 'Open now' : 'Closed now';
      sign.className = `open-sign ${open ? 'open' : 'closed'}`;
    };
    update();
    setInterval(update, 60_000);
  }
}

/**
 * The sentence about now: open, or closed with what to do. Kept current every minute.
 * Null when no hours are configured or the browser cannot tell.
 * @param {Branding} branding
 * @param {string} id
 * @returns {HTMLElement | null}
 */
export function openNote(branding, id) {
  const hours = branding.hours;
  if (!hours) return null;
  const note = h('p', { id, class: 'open-note' });
  const update = () => {
    const open = isOpen(hours);
    note.hidden = open === null;
    note.textContent = open ? OPEN_SENTENCE : CLOSED_SENTENCE;
    note.className = `open-note ${open ? 'open' : 'closed'}`;
  };
  update();
  const timer = setInterval(() => (note.isConnected ? update() : clearInterval(timer)), 60_000);
  return note;
}

/**
 * The week's opening hours, with the sentence about now, as a labelled region.
 * @param {Branding} branding
 * @returns {HTMLElement | null} null when no hours are configured
 */
export function openingHours(branding) {
  const hours = branding.hours;
  if (!hours) return null;
  const rows = DAYS.map(([day, name]) => {
    const ranges = hours.days[day] ?? [];
    const times = ranges.length ? ranges.map((r) => `${r.from}–${r.to}`).join(', ') : 'Closed';
    return h('div', { class: 'hours-row', 'data-day': day }, h('dt', {}, name), h('dd', {}, times));
  });
  return h(
    'section',
    { id: 'opening-hours', class: 'card hours', 'aria-labelledby': 'hours-title' },
    h('h2', { id: 'hours-title' }, 'Opening hours'),
    openNote(branding, 'open-now'),
    h('dl', { class: 'hours-list' }, ...rows),
    h('p', { class: 'hint' }, `Times are ${hours.timeZone} time.`),
  );
}
