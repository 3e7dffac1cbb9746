// @ts-check
/**
 * Coalesces bursts of requests for the same refresh: `throttled(task, gapMs)` returns a
 * function that runs `task` at most once per `gapMs`, never two at once, and always once
 * more after the last request (so the last change is reflected). Must not touch the DOM.
 */

/**
 * @param {() => Promise<void>} task
 * @param {number} gapMs the least time between the starts of two runs
 * @returns {() => void} ask for a run
 */
export function throttled(task, gapMs) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let running = false;
  let again = false;
  let lastStart = -Infinity;

  const run = async () => {
    timer = null;
    running = true;
    lastStart = Date.now();
    try {
      await task();
    } finally {
      running = false;
      if (again) {
        again = false;
        request();
      }
    }
  };

  const request = () => {
    if (running) {
      // A run that began before this request may have read the state before it.
      again = true;
      return;
    }
    if (timer) return;
    timer = setTimeout(run, Math.max(0, lastStart + gapMs - Date.now()));
  };
  return request;
}
