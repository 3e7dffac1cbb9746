// @ts-check
/**
 * The bank's branding of the customer page, as `GET /api/branding` answers it (docs/API.md,
 * "Branding"; the server writes the same JSON into the page as a data block, so that the
 * first view already wears it), and what its opening hours mean right now, computed in
 * the browser in the bank's time zone. The server has checked every value at start; this
 * checks their shape again so that a colour can only ever be `#rrggbb`. Reads the DOM
 * only for the data block; writes nothing to it.
 */

/**
 * @typedef {{ from: string, to: string }} Range
 * @typedef {{ timeZone: string, days: Record<string, Range[]> }} Hours
 * @typedef {{
 *   name: string, primaryColor: string, accentColor: string, welcome: string,
 *   logo: string | null, hours: Hours | null,
 * }} Branding
 */

/** The days as the wire names them, Monday first, with their names for people. */
export const DAYS = /** @type {const} */ ([
  ['mon', 'Monday'],
  ['tue', 'Tuesday'],
  ['wed', 'Wednesday'],
  ['thu', 'Thursday'],
  ['fri', 'Friday'],
  ['sat', 'Saturday'],
  ['sun', 'Sunday'],
]);

/** The look when the server cannot be asked (the same as the server's default). */
export const DEFAULT_BRANDING = /** @type {Branding} */ ({
  name: 'Customer support',
  primaryColor: '#1f4e79',
  accentColor: '#0f766e',
  welcome: 'Hello! Ask us about your loan or your account: an officer will answer you here.',
  logo: null,
  hours: null,
});

const COLOR = /^#[0-9a-f]{6}$/;
const CLOCK = /^([01]\d|2[0-4]):[0-5]\d$/;

/**
 * The branding the server wrote into the page (`<script type="application/json"
 * id="branding-data">`), or the default one when there is none or it does not parse.
 * @returns {Branding}
 */
export function pageBranding() {
  try {
    return checked(JSON.parse(document.getElementById('branding-data')?.textContent ?? 'null'));
  } catch {
    return DEFAULT_BRANDING;
  }
}

/**
 * @param {any} b what the server answered
 * @returns {Branding} the same, with any value of the wrong shape replaced by the default's
 */
function checked(b) {
  const text = (/** @type {unknown} */ v, /** @type {string} */ fallback) => (typeof v === 'string' ? v : fallback);
  const color = (/** @type {unknown} */ v, /** @type {string} */ fallback) =>
    typeof v === 'string' && COLOR.test(v) ? v : fallback;
  return {
    name: text(b?.name, DEFAULT_BRANDING.name) || DEFAULT_BRANDING.name,
    primaryColor: color(b?.primaryColor, DEFAULT_BRANDING.primaryColor),
    accentColor: color(b?.accentColor, DEFAULT_BRANDING.accentColor),
    welcome: text(b?.welcome, DEFAULT_BRANDING.welcome),
    // Only a path of this server: the page's policy allows no other image source anyway.
    logo: typeof b?.logo === 'string' && b.logo.startsWith('/') && !b.logo.startsWith('//') ? b.logo : null,
    hours: checkedHours(b?.hours),
  };
}

/** @param {any} hours @returns {Hours | null} */
function checkedHours(hours) {
  if (!hours || typeof hours.timeZone !== 'string' || typeof hours.days !== 'object') return null;
  /** @type {Record<string, Range[]>} */
  const days = {};
  for (const [day] of DAYS) {
    const ranges = Array.isArray(hours.days[day]) ? hours.days[day] : [];
    days[day] = ranges.filter(
      (/** @type {any} */ r) => typeof r?.from === 'string' && typeof r?.to === 'string' && CLOCK.test(r.from) && CLOCK.test(r.to),
    );
  }
  return { timeZone: hours.timeZone, days };
}

/**
 * The weekday and the time of day at `now` in `timeZone`.
 * @param {string} timeZone
 * @param {Date} now
 * @returns {{ day: string, clock: string } | null} null when the browser does not know the zone
 */
export function localNow(timeZone, now) {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).formatToParts(now);
    const part = (/** @type {string} */ type) => parts.find((p) => p.type === type)?.value ?? '';
    const day = part('weekday').slice(0, 3).toLowerCase();
    return { day, clock: `${part('hour').padStart(2, '0')}:${part('minute')}` };
  } catch {
    return null;
  }
}

/**
 * Whether the bank is open at `now`.
 * @param {Hours} hours
 * @param {Date} [now]
 * @returns {boolean | null} null when it cannot be told (a time zone the browser lacks)
 */
export function isOpen(hours, now = new Date()) {
  const here = localNow(hours.timeZone, now);
  if (!here) return null;
  const ranges = hours.days[here.day] ?? [];
  return ranges.some((r) => r.from <= here.clock && here.clock < r.to);
}
