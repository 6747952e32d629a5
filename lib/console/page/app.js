// The console's page: three views on the console's JSON API, no framework, no build step.
// Every value from the API goes into the page as text (textContent), never as markup.

const page = document.getElementById("page");
const message = document.getElementById("message");
let session;
let stream;
let pollTimer;
let chartsStop;

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return element;
}

function say(text, kind = "error") {
  message.textContent = text;
  message.className = kind === "info" ? "info" : "";
  message.hidden = !text;
}

async function api(path, options = {}) {
  const init = { headers: {}, ...options };
  if (options.body !== undefined) {
    init.method = "POST";
    init.headers = { "content-type": "application/json", "x-csrf-token": session.csrf };
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  const body = await response.json().catch(() => ({ error: `${response.status}` }));
  if (!response.ok) throw new Error(body.error ?? `the console answered ${response.status}`);
  return body;
}

const number = (n, digits = 0) =>
  n === null || n === undefined ? "–" : Number(n).toLocaleString("en", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
/** Seconds as an operator reads them: ms under a second. */
const duration = (seconds) =>
  seconds === null || seconds === undefined
    ? "–"
    : seconds < 1
    ? `${number(seconds * 1000, 1)} ms`
    : `${number(seconds, 2)} s`;
const when = (iso) => iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";

function stop() {
  stream?.close();
  stream = undefined;
  clearTimeout(pollTimer);
  chartsStop?.();
  chartsStop = undefined;
}

// ---- Overview ---------------------------------------------------------------------------------

/** The operator's pause: the fleet's state, the instances holding off, and the button. */
function pauseBanner() {
  const box = h("section", { class: "pause", "data-testid": "pause" });
  let shown;
  const show = (p) => {
    const key = JSON.stringify(p);
    if (key === shown) return;
    shown = key;
    const state = p.state;
    box.classList.toggle("paused", state?.paused === true);
    const text = state === null
      ? "Whether the fleet is paused is unknown (see Sources)"
      : state.paused
      ? `Paused since ${when(state.since)} by ${state.by}: ${state.reason}`
      : "Taking orders" + (state.seq > 0 ? ` (resumed ${when(state.at)} by ${state.by})` : "");
    const instances = p.instances === null
      ? ""
      : `${p.paused} of ${p.instances} instance(s) holding off`;
    const button = !session.canAct || state === null
      ? null
      : state.paused
      ? h("button", { class: "primary", "data-action": "resume", text: "Resume", onclick: resume })
      : h("button", { class: "danger", "data-action": "pause", text: "Pause…", onclick: pause });
    box.replaceChildren(
      h("span", { class: "pause-state", "data-testid": "pause-state", text }),
      h("span", { class: "muted", "data-testid": "pause-instances", text: instances }),
      button,
    );
  };
  const change = async (action, reason) => {
    try {
      await api("/api/control", { body: { action, reason } });
      say(action === "pause" ? "paused: orders wait in the queue" : "resumed", "info");
    } catch (error) {
      say(error.message);
    }
  };
  async function pause() {
    const dialog = document.getElementById("pause-dialog");
    const reason = document.getElementById("pause-reason");
    reason.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
    if (dialog.returnValue !== "ok") return say("not paused", "info");
    await change("pause", reason.value);
  }
  async function resume() {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent =
      "Resume every OrdemDeProducao? The orders waiting in the queue are taken at once.";
    dialog.returnValue = "";
    dialog.showModal();
    await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
    if (dialog.returnValue !== "ok") return say("still paused", "info");
    await change("resume", "");
  }
  return { box, show };
}

// ---- Charts (uPlot, served by the console from its npm package) --------------------------------

const SERIES_COLORS = ["#1f5fbf", "#067647", "#b54708", "#b42318", "#6941c6", "#0e7090", "#475467"];

/** One chart: its element, and how to give it the points' columns. */
function chart(title, testId, unit) {
  const box = h("figure", { class: "chart", "data-testid": testId });
  const caption = h("figcaption", { text: title });
  const area = h("div", { class: "plot" });
  box.append(caption, area);
  let plot;
  let names = "";
  const set = (times, columns) => {
    // [name, values] pairs; a new set of names (a retry tier appeared) builds the chart again.
    const key = columns.map(([name]) => name).join("|");
    if (plot === undefined || key !== names) {
      plot?.destroy();
      names = key;
      plot = new uPlot(
        {
          width: Math.max(320, area.clientWidth || 560),
          height: 180,
          series: [
            {},
            ...columns.map(([name], i) => ({
              label: name,
              stroke: SERIES_COLORS[i % SERIES_COLORS.length],
              width: 1.5,
              value: (_, v) => v === null || v === undefined ? "–" : unit(v),
            })),
          ],
          axes: [{}, { values: (_, ticks) => ticks.map(unit), size: 70 }],
          scales: { x: { time: true } },
          legend: { live: false },
        },
        [times, ...columns.map(([, values]) => values)],
        area,
      );
    } else {
      plot.setData([times, ...columns.map(([, values]) => values)]);
    }
    // What the chart shows last, for whoever reads the page without looking at the canvas.
    for (const [name, values] of columns) {
      box.dataset[`last${name.replace(/[^A-Za-z0-9]/g, "")}`] = String(values.at(-1) ?? "");
    }
  };
  return { box, set };
}

/** The overview's charts of the last hour, kept up to date from /api/history. */
function charts() {
  const box = h("section", { class: "charts" });
  const rates = chart("Messages a second", "chart-rates", (v) => number(v, 1));
  const depths = chart("Ready messages by queue", "chart-depths", (v) => number(v));
  const critical = chart(
    "Critical time of the orders created in the minute before",
    "chart-critical",
    (v) => duration(v),
  );
  box.append(rates.box, depths.box, critical.box);
  const points = [];
  let timer;
  const draw = () => {
    if (points.length === 0) return;
    const times = points.map((p) => p.at / 1000);
    rates.set(times, [
      ["published", points.map((p) => p.published)],
      ["created", points.map((p) => p.created)],
      ["retried", points.map((p) => p.retried)],
      ["dead-lettered", points.map((p) => p.deadLettered)],
    ]);
    const queues = [...new Set(points.flatMap((p) => Object.keys(p.depth ?? {})))];
    depths.set(times, queues.map((q) => [q, points.map((p) => p.depth?.[q] ?? null)]));
    critical.set(times, [
      ["p50", points.map((p) => p.p50)],
      ["p99", points.map((p) => p.p99)],
    ]);
  };
  const load = async () => {
    try {
      const after = points.at(-1)?.at;
      const answer = await api(`/api/history${after === undefined ? "" : `?after=${after}`}`);
      points.push(...answer.points);
      const keepFrom = Date.now() - 3_600_000;
      while (points.length > 0 && points[0].at < keepFrom) points.shift();
      if (answer.points.length > 0) draw();
      timer = setTimeout(load, answer.intervalMs);
    } catch (error) {
      say(error.message);
      timer = setTimeout(load, 5_000);
    }
  };
  load();
  return { box, stop: () => clearTimeout(timer) };
}

/** A figure on the overview: its label, its value, and the test id the browser tests read. */
const card = (label, value, id) =>
  h(
    "div",
    { class: "card" },
    h("div", { class: "label", text: label }),
    h("div", { class: "value", "data-testid": id, text: value }),
  );

/** How long ago, in seconds, as an operator reads it: "12 s", "4 min", "2 h". */
const age = (seconds) =>
  seconds === null || seconds === undefined
    ? "–"
    : seconds < 120
    ? `${number(seconds, seconds < 10 ? 1 : 0)} s`
    : seconds < 7200
    ? `${number(seconds / 60)} min`
    : `${number(seconds / 3600, 1)} h`;

/** Estoque's outbox: requests unsent, the oldest one's age, the publish lag; or why not. */
function outboxPanel() {
  const state = h("p", { class: "muted", "data-testid": "outbox-state" });
  const cards = h("div", { class: "cards", "data-testid": "outbox-cards" });
  const box = h(
    "section",
    { class: "outbox", "data-testid": "outbox" },
    h("h2", { text: "Estoque's outbox" }),
    state,
    cards,
  );
  const show = (o) => {
    box.dataset.state = o.state;
    state.classList.toggle("error", o.state === "error");
    if (o.state === "off") {
      state.textContent = "No stock store configured: start the console with --stock-url " +
        "(STOCK_URL) to see Estoque's outbox.";
      cards.replaceChildren();
      return;
    }
    if (o.state === "error") {
      state.textContent = `The stock store cannot be read: ${o.error}`;
      cards.replaceChildren();
      return;
    }
    state.textContent = o.depth === 0
      ? "Every request published."
      : `${number(o.depth)} request(s) waiting for the broker's confirm.`;
    const lag = `sent in the last ${number(o.lag.windowSeconds)} s`;
    cards.replaceChildren(
      card("unsent requests", number(o.depth), "outbox-depth"),
      card("oldest unsent", age(o.oldestUnsentSeconds), "outbox-oldest"),
      card("most publish attempts", number(o.maxAttempts), "outbox-attempts"),
      card(`publish lag p50 (${lag})`, duration(o.lag.p50), "outbox-lag-p50"),
      card(`publish lag p99 (${lag})`, duration(o.lag.p99), "outbox-lag-p99"),
      card(`requests ${lag}`, number(o.lag.count), "outbox-sent"),
    );
  };
  return { box, show };
}

function overviewView() {
  const banner = pauseBanner();
  const outbox = outboxPanel();
  const history = charts();
  chartsStop = history.stop;
  const cards = h("div", { class: "cards", "data-testid": "rates" });
  const depth = h("tbody");
  const sources = h("tbody");
  page.replaceChildren(
    banner.box,
    h("h2", { text: "Flow (messages a second)" }),
    cards,
    h("h2", { text: "The last hour" }),
    history.box,
    outbox.box,
    h("h2", { text: "Queues" }),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h("tr", {}, h("th", { text: "queue" }), h("th", { class: "num", text: "ready" })),
      ),
      depth,
    ),
    h("h2", { text: "Sources" }),
    h("table", {}, sources),
  );
  const show = (o) => {
    banner.show(o.pause);
    outbox.show(o.outbox);
    cards.replaceChildren(
      card("published /s", number(o.rates.published, 1), "rate-published"),
      card("created /s", number(o.rates.created, 1), "rate-created"),
      card("retried /s", number(o.rates.retried, 1), "rate-retried"),
      card("dead-lettered /s", number(o.rates.deadLettered, 1), "rate-dead-lettered"),
      card("consumers", number(o.consumers), "consumers"),
      card("production orders", number(o.ledgerOrders), "ledger-orders"),
      card("created in all", number(o.totals.created), "total-created"),
      card("critical time p50", duration(o.criticalTime?.created.p50), "critical-p50"),
      card("critical time p99", duration(o.criticalTime?.created.p99), "critical-p99"),
      card(
        "to dead letter p99",
        duration(o.criticalTime?.deadLettered.p99),
        "critical-dead-lettered-p99",
      ),
    );
    depth.replaceChildren(
      ...Object.entries(o.depth ?? {}).map(([queue, n]) =>
        h(
          "tr",
          {},
          h("td", { text: queue }),
          h("td", { class: "num", "data-testid": `depth-${queue}`, text: number(n) }),
        )
      ),
    );
    sources.replaceChildren(
      ...Object.entries(o.sources).map(([name, state]) =>
        h(
          "tr",
          {},
          h("td", { text: name }),
          h("td", { class: state === "ok" ? "" : "muted", text: state }),
        )
      ),
    );
  };
  stream = new EventSource("/api/overview/stream");
  stream.onmessage = (event) => show(JSON.parse(event.data));
  stream.addEventListener("failure", (event) => say(JSON.parse(event.data)));
}

// ---- Failures ---------------------------------------------------------------------------------

const filterFields = ["reason", "ref", "since", "until", "text", "group"];

function failuresView(params) {
  const filter = Object.fromEntries(filterFields.map((f) => [f, params.get(f) ?? ""]));
  const offset = Number(params.get("offset") ?? 0);
  const input = (name, label, placeholder) =>
    h(
      "label",
      {},
      label,
      h("input", { name, value: filter[name], placeholder, "data-testid": `filter-${name}` }),
    );
  const form = h(
    "form",
    { class: "filters", "data-testid": "filters" },
    input("reason", "reason", "exhausted, invalid…"),
    input("ref", "RefCode", ""),
    input("since", "since", "1h or a date"),
    input("until", "until", "a date"),
    input("text", "text", "in RefCode or error"),
    filter.group ? h("input", { type: "hidden", name: "group", value: filter.group }) : null,
    h("button", { class: "primary", type: "submit", text: "Filter" }),
    h("button", { type: "button", text: "Clear", onclick: () => location.hash = "#/failures" }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) data.set(name, value);
    location.hash = `#/failures?${data}`;
  });
  const status = h("p", { class: "muted", "data-testid": "index-status" });
  const groups = h("tbody", { "data-testid": "groups" });
  const letters = h("tbody", { "data-testid": "letters" });
  const pager = h("div", { class: "pager" });
  const selected = new Set();
  const selectionBar = h("div", { class: "toolbar" });
  const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v));
  const refresh = h("button", {
    text: "Walk the queue again",
    onclick: () => load(true),
  });
  page.replaceChildren(
    form,
    h("div", { class: "toolbar" }, status, refresh),
    filter.group ? h("p", {}, "Group: ", h("code", { text: filter.group })) : "",
    h("h2", { text: "Failures by cause" }),
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["reason", "error", "count", "first seen", "last seen", ""].map((t) =>
            h("th", { class: t === "count" ? "num" : "", text: t })
          ),
        ),
      ),
      groups,
    ),
    h("h2", { text: "Dead letters" }),
    selectionBar,
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["", "RefCode", "reason", "attempts", "last error", "dead-lettered", "replays"].map((
            t,
          ) => h("th", { text: t })),
        ),
      ),
      letters,
    ),
    pager,
  );

  const selectionActions = () => {
    selectionBar.replaceChildren(
      h("span", {
        class: "muted",
        "data-testid": "selected-count",
        text: `${selected.size} selected`,
      }),
      actionButtons(() => ({ refs: [...selected] }), "selection", selected.size === 0),
      h("span", { class: "muted", text: "or, for everything the filter shows:" }),
      actionButtons(() => filter, "filter", false),
    );
  };

  async function load(fresh = false) {
    say("");
    const q = new URLSearchParams(query);
    if (fresh) q.set("fresh", "1");
    try {
      const [g, l] = await Promise.all([
        api(`/api/groups?${q}`),
        api(`/api/dead-letters?${q}&offset=${offset}&limit=50`),
      ]);
      status.textContent =
        `${number(l.total)} dead letters in the queue as of ${when(l.snapshotAt)}; ${
          number(l.matched)
        } match` +
        (l.walking
          ? ` (walking the queue: ${number(l.walking.seen)} of ${number(l.walking.total)})`
          : "");
      groups.replaceChildren(
        ...g.groups.map((group) =>
          h(
            "tr",
            { "data-testid": "group" },
            h("td", { text: group.reason }),
            h("td", {}, h("code", { text: group.error || "(no error text)" })),
            h("td", { class: "num", "data-testid": "group-count", text: number(group.count) }),
            h("td", { text: when(group.firstSeen) }),
            h("td", { text: when(group.lastSeen) }),
            h(
              "td",
              {},
              h("a", {
                href: `#/failures?${new URLSearchParams({
                  reason: group.reason,
                  group: group.error,
                })}`,
                text: "show",
              }),
              " ",
              actionButtons(
                () => ({ ...filter, reason: group.reason, group: group.error }),
                "group",
                false,
              ),
            ),
          )
        ),
      );
      letters.replaceChildren(
        ...l.letters.map((letter) =>
          h(
            "tr",
            { "data-testid": "letter" },
            h(
              "td",
              {},
              h("input", {
                type: "checkbox",
                "aria-label": `select ${letter.refCode}`,
                disabled: letter.refCode === null,
                onchange: (event) => {
                  if (event.target.checked) selected.add(letter.refCode);
                  else selected.delete(letter.refCode);
                  selectionActions();
                },
              }),
            ),
            h(
              "td",
              {},
              letter.refCode === null ? "–" : h("a", {
                href: `#/journey?ref=${encodeURIComponent(letter.refCode)}`,
                text: letter.refCode,
              }),
            ),
            h("td", { text: letter.reason }),
            h("td", { class: "num", text: letter.attempts }),
            h("td", {}, h("code", { text: letter.lastError })),
            h("td", { text: when(letter.deadLetteredAt) }),
            h("td", { class: "num", text: letter.replays }),
          )
        ),
      );
      const go = (to) => {
        const next = new URLSearchParams(query);
        next.set("offset", String(to));
        location.hash = `#/failures?${next}`;
      };
      pager.replaceChildren(
        h("button", {
          text: "‹ previous",
          disabled: offset === 0,
          onclick: () => go(Math.max(0, offset - 50)),
        }),
        h("span", {
          class: "muted",
          "data-testid": "page-info",
          text: l.matched === 0
            ? "nothing matches"
            : `${offset + 1}–${offset + l.letters.length} of ${number(l.matched)}`,
        }),
        h("button", {
          text: "next ›",
          disabled: offset + 50 >= l.matched,
          onclick: () => go(offset + 50),
        }),
      );
      selectionActions();
      if (l.walking) pollTimer = setTimeout(() => load(), 1000);
    } catch (error) {
      say(error.message);
    }
  }
  load();
}

/** Replay and purge buttons for what `target()` names (a filter, or `{refs}`). */
function actionButtons(target, what, disabled) {
  if (!session.canAct) return h("span");
  return h(
    "span",
    {},
    ...["replay", "purge"].map((action) =>
      h("button", {
        text: `${action[0].toUpperCase()}${action.slice(1)} ${what}`,
        "data-action": `${action}-${what}`,
        disabled,
        onclick: () => act(action, target()),
      })
    ),
  );
}

function cleanFilter(filter) {
  return Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== "" && v !== undefined));
}

/** Preview (exact count), ask, then run as a job and follow its progress. */
async function act(action, rawFilter) {
  const filter = cleanFilter(rawFilter);
  say("");
  let preview;
  try {
    preview = await api("/api/actions/preview", { body: { action, filter } });
  } catch (error) {
    return say(error.message);
  }
  if (preview.matched === 0) return say(`nothing to ${action}: no dead letter matches`, "info");
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = action === "replay"
    ? `Replay ${preview.matched} dead letter(s) of ${preview.total} to the work queue?`
    : `Purge ${preview.matched} dead letter(s) of ${preview.total}? They are archived first.`;
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "ok") return say(`${action} cancelled; nothing changed`, "info");
  let job;
  try {
    job = await api("/api/actions/run", { body: { action, filter, expected: preview.matched } });
  } catch (error) {
    return say(error.message);
  }
  const bar = h("progress", { max: job.expected, value: 0, "data-testid": "job-progress" });
  const label = h("span", { "data-testid": "job-state", text: "running" });
  message.replaceChildren(`${action}: `, bar, " ", label);
  message.className = "info";
  message.hidden = false;
  while (job.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await api(`/api/jobs/${job.id}`);
    bar.value = job.progress;
    label.textContent = `${job.progress} of ${job.expected}`;
  }
  if (job.state === "failed") return say(`${action} failed: ${job.error}`);
  const c = job.counts;
  say(
    `${action} done: ${c.done} ${
      action === "replay" ? "replayed" : "purged"
    }, ${c.failed} failed, ${c.left} left in the queue` +
      (job.archive ? `; archived to ${job.archive}` : ""),
    "info",
  );
  document.querySelector("[data-testid=job-done]")?.remove();
  document.body.append(
    h("span", { hidden: true, "data-testid": "job-done", text: JSON.stringify(c) }),
  );
  if (location.hash.startsWith("#/failures")) {
    failuresView(new URLSearchParams(location.hash.split("?")[1] ?? ""));
  }
}

// ---- Journey ----------------------------------------------------------------------------------

function journeyView(params) {
  const ref = params.get("ref") ?? "";
  const form = h(
    "form",
    { class: "filters" },
    h(
      "label",
      {},
      "RefCode",
      h("input", { name: "ref", value: ref, required: true, "data-testid": "journey-ref" }),
    ),
    h("button", { class: "primary", type: "submit", text: "Show" }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/journey?ref=${encodeURIComponent(new FormData(form).get("ref").trim())}`;
  });
  const body = h("div", { "data-testid": "journey" });
  page.replaceChildren(form, body);
  if (!ref) return;
  api(`/api/journey?ref=${encodeURIComponent(ref)}`).then((journey) => {
    const order = journey.productionOrder;
    body.replaceChildren(
      h("h2", { text: `Journey of ${journey.refCode}` }),
      order
        ? h("p", {
          "data-testid": "journey-order",
          text: `Production order: ${order.quantity} of colour ${order.colorCode}, created ${
            when(order.createdAt)
          } by ${order.instanceId} at attempt ${order.attempt}.`,
        })
        : h("p", { class: "muted", text: "No production order." }),
      ...(order?.extra && Object.keys(order.extra).length > 0
        ? [
          h("h3", { text: "Fields this reader does not know (kept, not refused)" }),
          h("pre", {
            "data-testid": "order-extra-fields",
            text: JSON.stringify(order.extra, null, 2),
          }),
        ]
        : []),
      h(
        "ol",
        { class: "steps", "data-testid": "steps" },
        ...journey.steps.map((step) =>
          h(
            "li",
            { "data-kind": step.kind },
            h("span", { class: `step-kind kind-${step.kind}`, text: step.kind }),
            h("span", {
              class: "muted",
              text: `${when(step.at)}${
                step.attempt === undefined ? "" : ` · attempt ${step.attempt}`
              } · `,
            }),
            step.detail,
          )
        ),
      ),
      ...journey.deadLetters.flatMap((letter, i) => [
        h("h2", { text: `Dead letter ${i + 1}: ${letter.reason}` }),
        h("p", {
          class: "muted",
          text: `${letter.bodyBytes} bytes, dead-lettered ${when(letter.deadLetteredAt)}`,
        }),
        ...(letter.bodyTruncated
          ? [h("p", {
            class: "muted",
            "data-testid": "body-truncated",
            text: `Too large to show whole: the first ${
              letter.bodyHex.length / 2
            } bytes only (deno task dlq show prints it all).`,
          })]
          : []),
        letter.messageVersion === null ? null : h("p", {
          class: "muted",
          "data-testid": "message-version",
          text: `Message version ${letter.messageVersion}`,
        }),
        h("h3", { text: "Body" }),
        letter.bodyText === null
          ? h("p", { class: "muted", text: "Not UTF-8 text: shown in hex only." })
          : h("pre", { "data-testid": "body-text", text: letter.bodyText }),
        h("pre", {
          "data-testid": "body-hex",
          text: letter.bodyHex.replace(/(..)/g, "$1 ").replace(/((?:.. ){16})/g, "$1\n").trim(),
        }),
        ...(letter.extraFields && Object.keys(letter.extraFields).length > 0
          ? [
            h("h3", { text: "Fields this reader does not know (kept, not refused)" }),
            h("pre", {
              "data-testid": "extra-fields",
              text: JSON.stringify(letter.extraFields, null, 2),
            }),
          ]
          : []),
        h("h3", { text: "Headers" }),
        h("pre", { "data-testid": "headers", text: JSON.stringify(letter.headers, null, 2) }),
        h("h3", { text: "Properties" }),
        h("pre", { text: JSON.stringify(letter.properties, null, 2) }),
      ]),
    );
  }).catch((error) => {
    body.replaceChildren();
    say(error.message);
  });
}

// ---- Routing ----------------------------------------------------------------------------------

function route() {
  stop();
  say("");
  const [path, query] = (location.hash.slice(1) || "/overview").split("?");
  const params = new URLSearchParams(query ?? "");
  const name = path.replace(/^\//, "") || "overview";
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.dataset.page === name);
  }
  if (name === "failures") failuresView(params);
  else if (name === "journey") journeyView(params);
  else overviewView();
}

async function start() {
  try {
    session = await api("/api/session");
  } catch (error) {
    return say(error.message);
  }
  document.getElementById("who").textContent = `${session.user} · ${session.role}` +
    (session.readOnly ? " · read-only" : "") + ` · ${session.about.broker}`;
  addEventListener("hashchange", route);
  route();
}

start();
