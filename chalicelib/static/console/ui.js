// Small DOM helpers shared by the console's views: error and notice lines, elements, polling.

const POLL_MAX_FAILURES = 5; // a live view stops polling after this many failures in a row

/** Show a failure: WaGo's error text from the API (ApiError) with the route that failed. */
export function showError(error) {
  const line = document.getElementById("error");
  const where = error && error.route ? `${error.route}: ` : "";
  const status = error && error.status ? ` (HTTP ${error.status})` : "";
  line.textContent = `${where}${error && error.message ? error.message : String(error)}${status}`;
}

export function clearError() {
  document.getElementById("error").textContent = "";
}

/** A short success message in the polite status line. */
export function notice(text) {
  document.getElementById("notice").textContent = text;
}

/** Create an element: el("td", {className: "x"}, "text", otherNode). */
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

/** Set text only when it changed (no churn for assistive technology during polling). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** Run a form's submit handler with errors shown and the submit button disabled meanwhile. */
export function onSubmit(form, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      clearError();
      await handler(new FormData(form));
    } catch (error) {
      showError(error);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** A click handler with errors shown. */
export function onClick(button, handler) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      clearError();
      await handler();
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  });
}

/**
 * Call `task` now and then every `ms` milliseconds until stopped (the returned object's stop()).
 * `task(isLatest)`: draw only while isLatest() is true, so an answer that arrives after a newer
 * tick began (a refresh() right after a change) never paints the older state. Failures are shown; after POLL_MAX_FAILURES in a row polling pauses (a notice says so) until
 * refresh() is called, so a dead gateway is not hammered.
 */
export function poll(ms, task) {
  let timer = null;
  let stopped = false;
  let failures = 0;
  let generation = 0; // a refresh() during a tick must not start a second chain of timers
  const tick = async () => {
    const mine = ++generation;
    clearTimeout(timer);
    if (stopped) return;
    try {
      await task(() => !stopped && mine === generation);
      failures = 0;
    } catch (error) {
      failures += 1;
      showError(error);
      if (failures >= POLL_MAX_FAILURES) {
        notice("Live updates paused after repeated errors: press Refresh to resume.");
        return;
      }
    }
    if (!stopped && mine === generation) timer = setTimeout(tick, ms);
  };
  tick();
  return {
    stop() { stopped = true; clearTimeout(timer); },
    refresh() { failures = 0; return tick(); },
  };
}
