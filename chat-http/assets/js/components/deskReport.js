// @ts-check
/**
 * The desk report for the admin: a period chosen by days (from the start of the first
 * day to the end of the last, in this browser's time zone), then the server's figures
 * for it: chats created and resolved, time to first reply and to resolution (median and
 * 90th percentile), and the same per officer. The figures and what they mean are the
 * server's (docs/API.md, "Reports"); a refusal is shown in its words.
 */
import { h } from './dom.js';
import { duration } from './queueStats.js';

/** A day as `YYYY-MM-DD` in this browser's time zone. @param {Date} d */
function day(d) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Seconds as a duration, or a dash when there is none. @param {number | null} s */
const shown = (s) => (s === null || s === undefined ? '–' : duration(s * 1000));

/** @param {{ count: number, medianSeconds: number | null, p90Seconds: number | null }} d */
const cells = (d) => [h('td', {}, String(d.count)), h('td', {}, shown(d.medianSeconds)), h('td', {}, shown(d.p90Seconds))];

export class DeskReport {
  /** @param {(from: string, to: string) => Promise<any>} read */
  constructor(read) {
    const today = day(new Date());
    this.from = /** @type {HTMLInputElement} */ (h('input', { id: 'report-from', name: 'from', type: 'date', value: today, required: true }));
    this.to = /** @type {HTMLInputElement} */ (h('input', { id: 'report-to', name: 'to', type: 'date', value: today, required: true }));
    this.notice = h('p', { id: 'report-notice', class: 'notice', role: 'alert' });
    this.result = h('div', { id: 'report-result', 'aria-live': 'polite' });
    const form = h(
      'form',
      { class: 'report-form' },
      h('label', { for: 'report-from' }, 'From'),
      this.from,
      h('label', { for: 'report-to' }, 'To (included)'),
      this.to,
      h('button', { type: 'submit', id: 'report-show' }, 'Show report'),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      this.notice.textContent = '';
      const from = new Date(`${this.from.value}T00:00:00`);
      const to = new Date(`${this.to.value}T00:00:00`);
      to.setDate(to.getDate() + 1);
      if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
        this.notice.textContent = 'Choose the first and the last day of the period.';
        return;
      }
      try {
        this.show(await read(from.toISOString(), to.toISOString()));
      } catch (err) {
        this.result.replaceChildren();
        this.notice.textContent = err instanceof Error ? err.message : String(err);
      }
    });
    this.element = h(
      'section',
      { id: 'desk-report', class: 'card report', 'aria-labelledby': 'report-heading' },
      h('h2', { id: 'report-heading' }, 'Desk report'),
      form,
      this.notice,
      this.result,
    );
  }

  /** @param {any} report */
  show(report) {
    const head = () =>
      h('tr', {}, h('th', { scope: 'col' }, ''), h('th', { scope: 'col' }, 'Chats'), h('th', { scope: 'col' }, 'Median'), h('th', { scope: 'col' }, '90th percentile'));
    const totals = h(
      'table',
      { id: 'report-totals' },
      h('caption', {}, `Chats created: ${report.chatsCreated}; resolved: ${report.chatsResolved}`),
      h('thead', {}, head()),
      h(
        'tbody',
        {},
        h('tr', {}, h('th', { scope: 'row' }, 'Time to first reply'), ...cells(report.firstReply)),
        h('tr', {}, h('th', { scope: 'row' }, 'Time to resolution'), ...cells(report.resolution)),
      ),
    );
    const officers = report.officers.length
      ? h(
          'table',
          { id: 'report-officers' },
          h('caption', {}, 'Per officer'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Officer'),
              h('th', { scope: 'col' }, 'First replies'),
              h('th', { scope: 'col' }, 'Median'),
              h('th', { scope: 'col' }, '90th percentile'),
              h('th', { scope: 'col' }, 'Resolved'),
              h('th', { scope: 'col' }, 'Median'),
              h('th', { scope: 'col' }, '90th percentile'),
            ),
          ),
          h(
            'tbody',
            {},
            ...report.officers.map((/** @type {any} */ o) =>
              h('tr', { 'data-officer': o.officerId }, h('th', { scope: 'row' }, o.officerId), ...cells(o.firstReply), ...cells(o.resolution)),
            ),
          ),
        )
      : h('p', { class: 'hint' }, 'No officer replied to or resolved a chat in this period.');
    this.result.replaceChildren(h('div', { class: 'table-scroll' }, totals), h('div', { class: 'table-scroll' }, officers));
  }
}
