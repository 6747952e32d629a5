/**
 * The console's HTTP side, on `Deno.serve`: the page and its two assets (served from this folder:
 * nothing from a CDN, no build step), the charting library (uPlot, from the npm package pinned in
 * deno.json, served from here too), and a JSON API the page reads. Every request must be
 * addressed to one of the console's host names (lib/console/allowed_hosts.ts: 421 otherwise, so a
 * DNS-rebound page reads nothing), come from an address not waiting out its failed logins
 * (lib/console/login_limit.ts: 429), not come from a page on another site once credentials are
 * configured (its credentials are not looked at: 401) and have a principal (lib/console/auth.ts);
 * every action also needs the operator role, the CSRF token, a same-origin request and a console
 * that is not read-only. No broker or database credential is ever part of an answer.
 *
 * @module
 */

import { type DeadLetter, deadLetterJson, isEmptyFilter } from "../dead_letters.ts";
import { describeError } from "../errors.ts";
import type { HttpServer } from "../http_server.ts";
import type { LedgerReader } from "../ledger.ts";
import { logger } from "../log.ts";
import { redactUrl } from "../redact.ts";
import type { DeadLetterActions } from "./actions.ts";
import type { FleetControl } from "./control.ts";
import type { FlowHistory } from "./history.ts";
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import type { Principal } from "./auth.ts";
import { admit, type Gate } from "./admission.ts";
import { jsonResponse, serveApi } from "./api_server.ts";
import { BodyTooLargeError, readBodyText } from "./request_body.ts";
import { type DeadLetterIndex, pageOf } from "./dead_letter_index.ts";
import { buildJourney } from "./journey.ts";
import type { OverviewSampler } from "./overview.ts";
import {
  BadRequest,
  queryFields,
  readAction,
  readControl,
  readFilter,
  wholeNumber,
} from "./requests.ts";

/** What the server answers from. */
export interface ConsoleServerOptions {
  readonly hostname: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Its host names, who may read and act, and the count of failed logins (admission.ts). */
  readonly gate: Gate;
  readonly index: DeadLetterIndex;
  readonly overview: OverviewSampler;
  readonly actions: DeadLetterActions;
  /** Pause and resume of the fleet. */
  readonly control: FleetControl;
  /** The overview's last hour, for its charts. */
  readonly history: FlowHistory;
  /** The ledger, or undefined when it cannot be opened (yet). */
  readonly ledger: () => Promise<LedgerReader | undefined>;
  readonly readOnly: boolean;
  readonly maxSelection: number;
  /** Names shown on the page: the queues, the broker (without its password). */
  readonly about: Readonly<Record<string, string>>;
  /** How often the live overview is pushed, in milliseconds. @default {1000} */
  readonly overviewIntervalMs?: number;
  readonly signal?: AbortSignal;
}

const ASSETS: Readonly<Record<string, string>> = {
  "/": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
  "/vendor/uplot.js": "uplot.js",
  "/vendor/uplot.css": "uplot.css",
};

/** The charting library's files, from its npm package (no CDN). */
const VENDOR: Readonly<Record<string, string>> = {
  "uplot.js": uplotJs,
  "uplot.css": uplotCss,
};

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

/** Headers on every answer: no framing, no inline script, nothing from elsewhere. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** The most a posted body may be. */
const MAX_BODY = 1 << 20;

const log = logger("console");

function json(value: unknown, status = 200, extra: Record<string, string> = {}): Response {
  return jsonResponse(value, status, { ...SECURITY_HEADERS, ...extra });
}

/** A refusal or failure the page shows: `{error}`. */
function problem(message: string, status: number, extra: Record<string, string> = {}): Response {
  return json({ error: message }, status, extra);
}

/** A dead letter as a row of the failures page: what `dlq list --json` prints, and its size. */
function row(letter: DeadLetter) {
  return { ...deadLetterJson(letter, false), bytes: letter.size };
}

async function readJson(request: Request): Promise<unknown> {
  if (!(request.headers.get("content-type") ?? "").startsWith("application/json")) {
    throw new BadRequest("send JSON (content-type: application/json)", 415);
  }
  let text: string;
  try {
    // Refused at its content-length, or as soon as a chunked body passes the cap: never whole.
    text = await readBodyText(request, MAX_BODY);
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw new BadRequest("the request is too large", 413);
    throw error;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequest("the request is not valid JSON");
  }
}

/** Loads the page's files once. */
async function loadAssets(): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const encoder = new TextEncoder();
  for (const name of new Set(Object.values(ASSETS))) {
    const vendored = VENDOR[name];
    files.set(
      name,
      vendored === undefined
        ? await Deno.readFile(new URL(`./page/${name}`, import.meta.url))
        : encoder.encode(vendored),
    );
  }
  return files;
}

/** Serves the console until aborted or shut down; resolves once it listens. */
export async function serveConsole(options: ConsoleServerOptions): Promise<HttpServer> {
  const assets = await loadAssets();
  // The handler gets the port the Host header must name (the one picked, for 0).
  return await serveApi(
    {
      hostname: options.hostname,
      port: options.port,
      signal: options.signal,
      what: "the console",
      remedy: "choose another with --port (CONSOLE_PORT)",
      onError: (error) => {
        log.error("console request failed", { error: describeError(error) });
        return problem("the console failed to answer; see its log", 500);
      },
    },
    (request, client, port) => handle(request, client, port, options, assets),
  );
}

async function handle(
  request: Request,
  client: string,
  port: number,
  o: ConsoleServerOptions,
  assets: Map<string, Uint8Array>,
): Promise<Response> {
  // In admission.ts's order: the host first (a page whose name was rebound to this address gets
  // nothing, not even a 401), then failed logins, another site's page, and the credential.
  const admitted = admit(o.gate, request, client, port);
  if (admitted.refusal !== undefined) {
    const { message, status, headers } = admitted.refusal;
    return problem(message, status, headers);
  }
  const { principal } = admitted;
  const url = new URL(request.url);
  try {
    if (request.method === "POST") return await post(request, url, principal, o);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return problem("method not allowed", 405, { allow: "GET, HEAD, POST" });
    }
    const asset = ASSETS[url.pathname];
    if (asset !== undefined) {
      const type = TYPES[asset.slice(asset.lastIndexOf(".") + 1)]!;
      return new Response(assets.get(asset) as BodyInit, {
        headers: { ...SECURITY_HEADERS, "content-type": type },
      });
    }
    return await get(request, url, principal, o);
  } catch (error) {
    if (error instanceof BadRequest) return problem(error.message, error.status);
    log.error("console request failed", { path: url.pathname, error: describeError(error) });
    return problem(redactUrl(describeError(error)), 502);
  }
}

async function get(
  request: Request,
  url: URL,
  principal: Principal,
  o: ConsoleServerOptions,
): Promise<Response> {
  const params = url.searchParams;
  const now = new Date();
  switch (url.pathname) {
    case "/api/session":
      return json({
        user: principal.name,
        role: principal.role,
        readOnly: o.readOnly,
        canAct: principal.role === "operator" && !o.readOnly,
        csrf: o.gate.auth.csrfToken(principal),
        maxSelection: o.maxSelection,
        about: o.about,
      });
    case "/api/overview":
      return json(await o.overview.sample());
    case "/api/overview/stream":
      return overviewStream(request, o);
    case "/api/history": {
      const after = params.get("after");
      return json({
        intervalMs: o.history.intervalMs,
        points: o.history.points(
          after === null ? undefined : wholeNumber(after, "after", 0, 0, Number.MAX_SAFE_INTEGER),
        ),
      });
    }
    case "/api/dead-letters": {
      const filter = readFilter(queryFields(params), { now, maxSelection: o.maxSelection });
      const offset = wholeNumber(params.get("offset"), "offset", 0, 0, 100_000_000);
      const limit = wholeNumber(params.get("limit"), "limit", 50, 1, 500);
      const snapshot = await o.index.snapshot(params.get("fresh") === "1");
      const page = pageOf(snapshot.letters, filter, offset, limit);
      return json({
        snapshotAt: snapshot.at.toISOString(),
        walking: o.index.progress ?? null,
        total: snapshot.letters.length,
        matched: page.matched,
        offset,
        letters: page.letters.map(row),
      });
    }
    case "/api/groups": {
      const filter = readFilter(queryFields(params), { now, maxSelection: o.maxSelection });
      const snapshot = await o.index.snapshot(params.get("fresh") === "1");
      const filtered = isEmptyFilter(filter)
        ? snapshot
        : { ...snapshot, letters: pageOf(snapshot.letters, filter, 0, Infinity).letters };
      return json({
        snapshotAt: snapshot.at.toISOString(),
        walking: o.index.progress ?? null,
        total: snapshot.letters.length,
        matched: filtered.letters.length,
        groups: o.index.groups(filtered).slice(0, 200),
      });
    }
    case "/api/journey": {
      const ref = (params.get("ref") ?? "").trim();
      if (ref === "") throw new BadRequest("give a RefCode");
      if (ref.length > 200) throw new BadRequest("a RefCode is at most 200 characters");
      // Without a ledger (not created yet, or unreachable), the dead letters still tell.
      let ledgerState = "ok";
      const [ledger, snapshot] = await Promise.all([
        o.ledger().then((reader) => reader?.journey(ref)).catch((error) => {
          ledgerState = redactUrl(describeError(error));
          return undefined;
        }),
        o.index.snapshot(params.get("fresh") === "1"),
      ]);
      const letters = o.index.lettersOf(snapshot, ref).slice(0, 100);
      const journey = buildJourney(ref, ledger ?? { order: undefined, forwards: [] }, letters);
      if (journey === undefined) {
        throw new BadRequest(
          `nothing is known of RefCode ${JSON.stringify(ref)}: no production order, no retry ` +
            `and no dead letter of it${
              ledgerState === "ok" ? "" : ` (the ledger: ${ledgerState})`
            }`,
          404,
        );
      }
      return json({ ...journey, snapshotAt: snapshot.at.toISOString(), ledger: ledgerState });
    }
    default: {
      const job = /^\/api\/jobs\/([0-9a-f-]{36})$/.exec(url.pathname)?.[1];
      if (job !== undefined) {
        const found = o.actions.job(job);
        return found ? json(found) : problem("no such job", 404);
      }
      return problem(`no page ${url.pathname}`, 404);
    }
  }
}

async function post(
  request: Request,
  url: URL,
  principal: Principal,
  o: ConsoleServerOptions,
): Promise<Response> {
  const refused = o.gate.auth.refuseAction(request, principal);
  if (refused !== undefined) return problem(refused, 403);
  const control = url.pathname === "/api/control";
  if (o.readOnly) {
    return problem(
      control
        ? "the console is read-only: the fleet cannot be paused or resumed from it"
        : "the console is read-only: nothing can be replayed or purged",
      403,
    );
  }
  if (principal.role !== "operator") {
    return problem(
      control
        ? "pause and resume need the operator role"
        : "replay and purge need the operator role",
      403,
    );
  }
  const options = { now: new Date(), maxSelection: o.maxSelection };
  switch (url.pathname) {
    case "/api/actions/preview": {
      const action = readAction(await readJson(request), options);
      const counts = await o.actions.preview(action.action, action.filter, principal);
      return json({ action: action.action, ...counts });
    }
    case "/api/actions/run": {
      const action = readAction(await readJson(request), options);
      if (action.expected === undefined) {
        throw new BadRequest("preview first: a confirmed action names the previewed count");
      }
      return json(o.actions.start(action.action, action.filter, action.expected, principal), 202);
    }
    case "/api/control": {
      const change = readControl(await readJson(request));
      const state = await o.control.change(change.action === "pause", change.reason, principal);
      return json(state);
    }
    default:
      return problem(`no action ${url.pathname}`, 404);
  }
}

/** Server-sent events: one overview a second until the page goes away. */
function overviewStream(request: Request, o: ConsoleServerOptions): Response {
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const push = async () => {
        let event: string;
        try {
          event = `data: ${JSON.stringify(await o.overview.sample())}\n\n`;
        } catch (error) {
          event = `event: failure\ndata: ${JSON.stringify(redactUrl(describeError(error)))}\n\n`;
        }
        if (request.signal.aborted) return;
        try {
          controller.enqueue(encoder.encode(event));
        } catch {
          return; // the page went away
        }
        timer = setTimeout(push, o.overviewIntervalMs ?? 1_000);
      };
      request.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        try {
          controller.close();
        } catch { /* already closed */ }
      });
      push();
    },
    cancel() {
      clearTimeout(timer);
    },
  });
  return new Response(body, {
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream; charset=utf-8",
    },
  });
}
