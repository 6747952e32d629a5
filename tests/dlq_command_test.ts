/** The dlq command line, read once into one record per subcommand: no broker needed. */

import { strict as assert } from "node:assert";
import { parseCommandLine, UsageError } from "../lib/cli.ts";
import { dlqCommand, dlqHelp, parseDlqCommand } from "../lib/dlq_command.ts";
import { DLQ_OPTIONS } from "../lib/options.ts";

const NOW = new Date("2024-05-01T12:00:00Z");

/** Parses `args` with no environment but `env`, at {@linkcode NOW}. */
const parse = (args: string[], env: Record<string, string> = {}) => parseDlqCommand(args, env, NOW);

/** Asserts that `args` stop with a UsageError whose message matches `message`. */
function refused(args: string[], message: RegExp, env: Record<string, string> = {}): void {
  assert.throws(
    () => parse(args, env),
    (e: unknown) => e instanceof UsageError && message.test(e.message),
    `${args.join(" ")} should be refused with ${message}`,
  );
}

Deno.test("parseDlqCommand() reads list's filters once: --since counts back from the time given, --limit is a number", () => {
  const command = parse(["list", "--reason", "invalid", "--since", "2h", "--limit", "5", "--json"]);
  assert.equal(command.verb, "list");
  if (command.verb !== "list") return;
  assert.deepEqual(command.selection, {
    filter: { reason: "invalid", ref: undefined, since: new Date("2024-05-01T10:00:00Z") },
    limit: 5,
  });
  assert.equal(command.json, true);
  assert.equal(command.now, NOW);
  assert.equal(command.topology.deadLetterQueue, "create.productionorder.dlx");
  assert.equal(command.logLevel, "warning");
  assert.deepEqual(command.urls, ["amqp://guest:guest@127.0.0.1:5672"]);
});

Deno.test("parseDlqCommand() without filters selects everything, and a broker's own reason is taken", () => {
  const all = parse(["list", "--prefix", "demo."]);
  assert.ok(all.verb === "list");
  assert.deepEqual(all.selection, {
    filter: { reason: undefined, ref: undefined, since: undefined },
    limit: undefined,
  });
  assert.equal(all.json, false);
  assert.equal(all.topology.deadLetterQueue, "demo.create.productionorder.dlx");
  const broker = parse(["list", "--reason", "broker:delivery_limit"]);
  assert.ok(broker.verb === "list");
  assert.equal(broker.selection.filter.reason, "broker:delivery_limit");
});

Deno.test("parseDlqCommand() takes show's one RefCode", () => {
  const command = parse(["show", "REF-1", "--json"]);
  assert.ok(command.verb === "show");
  assert.equal(command.ref, "REF-1");
  assert.equal(command.json, true);
  refused(["show"], /^show takes one RefCode: deno task dlq show REF$/);
  refused(["show", "a", "b"], /^show takes one RefCode/);
});

Deno.test("parseDlqCommand() reads replay's pace and audit, and an archive to replay instead of the DLQ", () => {
  const command = parse(["replay", "--rate", "2.5", "--dry-run", "--operator", "ops"], {
    DLQ_WINDOW: "10",
    DLQ_AUDIT_LOG: "audit.jsonl",
  });
  assert.ok(command.verb === "replay");
  assert.equal(command.rate, 2.5);
  assert.equal(command.window, 10);
  assert.equal(command.dryRun, true);
  assert.equal(command.fromFile, undefined);
  assert.deepEqual(command.audit, { log: "audit.jsonl", operator: "ops" });
  const defaults = parse(["replay"]);
  assert.ok(defaults.verb === "replay");
  assert.equal(defaults.rate, undefined);
  assert.equal(defaults.window, 5000);
  assert.equal(defaults.dryRun, false);
  assert.deepEqual(defaults.audit, { log: "data/dlq-audit.jsonl", operator: undefined });
  const archive = parse(["replay", "--from-file", "purge.jsonl"]);
  assert.ok(archive.verb === "replay");
  assert.equal(archive.fromFile, "purge.jsonl");
});

Deno.test("parseDlqCommand() reads purge's archive folder, none with --no-archive, and --yes", () => {
  const command = parse(["purge", "--reason", "invalid", "--yes"], { DLQ_ARCHIVE_DIR: "arch" });
  assert.ok(command.verb === "purge");
  assert.equal(command.yes, true);
  assert.equal(command.dryRun, false);
  assert.equal(command.archiveDir, "arch");
  assert.equal(command.selection.filter.reason, "invalid");
  const bare = parse(["purge", "--no-archive", "-y", "--dry-run"]);
  assert.ok(bare.verb === "purge");
  assert.equal(bare.archiveDir, undefined);
  assert.equal(bare.yes, true);
  assert.equal(bare.dryRun, true);
  const plain = parse(["purge"]);
  assert.ok(plain.verb === "purge");
  assert.equal(plain.archiveDir, "data/dlq-archive");
  assert.equal(plain.yes, false);
});

Deno.test("parseDlqCommand() refuses a missing or unknown command, and arguments where none are taken", () => {
  refused([], /^name a command: list, show, replay, purge$/);
  refused(
    ["frobnicate"],
    /^the command must be one of list, show, replay, purge, got "frobnicate"$/,
  );
  refused(["list", "extra"], /^list takes no arguments, got "extra"$/);
});

Deno.test("parseDlqCommand() refuses a flag another subcommand takes, naming it and what the subcommand takes", () => {
  refused(
    ["list", "--rate", "5"],
    /^--rate does not apply to "dlq list" \(it takes --reason, --since, --ref, --limit, --json\)$/,
  );
  refused(
    ["show", "REF", "--limit", "1"],
    /^--limit does not apply to "dlq show" \(it takes --json\)$/,
  );
  refused(["replay", "--yes"], /^--yes does not apply to "dlq replay"/);
  refused(["purge", "--no-archive", "--json"], /^--json does not apply to "dlq purge"/);
});

Deno.test("parseDlqCommand() reads an environment variable only for the subcommands it applies to", () => {
  // DLQ_WINDOW is replay's: a bad one does not stop a list, and stops a replay naming it.
  assert.equal(parse(["list"], { DLQ_WINDOW: "lots" }).verb, "list");
  refused(["replay"], /^DLQ_WINDOW must be an integer from 1 to 100000, got "lots"$/, {
    DLQ_WINDOW: "lots",
  });
});

Deno.test("parseDlqCommand() refuses bad values naming the flag and the value seen", () => {
  refused(
    ["list", "--reason", "bogus"],
    /^--reason must be one of exhausted, invalid, unroutable, rejected, unsupported-version, unknown or broker:<reason>, got "bogus"$/,
  );
  refused(
    ["list", "--since", "yesterday"],
    /^--since must be a duration such as 90s, 15m, 2h or 7d, or a date, got "yesterday"$/,
  );
  refused(["list", "--limit", "0"], /^--limit must be an integer from 1 to 10000000, got "0"$/);
  refused(["replay", "--rate", "0"], /^--rate must be a number from 0.1 to 1000000, got "0"$/);
  refused(["replay", "--window", "0"], /^--window must be an integer from 1 to 100000, got "0"$/);
  refused(["list", "--log-level", "loud"], /^--log-level must be one of trace, debug/);
  refused(["list", "--prefix", "a b"], /^--prefix: prefix may hold only letters/);
  refused(["list", "--url", "http://x"], /^--url: /);
  refused(["list", "--tls-ca", "/no/such/ca.pem"], /^--tls-ca \/no\/such\/ca\.pem cannot be read/);
});

Deno.test("parseDlqCommand() refuses a filter or --limit with --from-file before connecting: an archive is replayed whole", () => {
  for (
    const extra of [["--reason", "invalid"], ["--since", "1h"], ["--ref", "R"], ["--limit", "3"]]
  ) {
    refused(
      ["replay", "--from-file", "purge.jsonl", ...extra],
      /^--from-file replays a whole archive: it takes no filter or --limit$/,
    );
  }
});

Deno.test("dlqCommand() of a parsed command line is parseDlqCommand() of its arguments", () => {
  const args = ["purge", "--since", "90s", "--limit", "2", "--yes"];
  const cl = parseCommandLine(DLQ_OPTIONS, args, {}, { allowPositionals: true });
  assert.deepEqual(dlqCommand(cl, NOW), parse(args));
});

Deno.test("dlqHelp() lists a subcommand's own options only, and nothing without one", () => {
  const help = (args: string[]) =>
    dlqHelp(parseCommandLine(DLQ_OPTIONS, args, {}, { allowPositionals: true }));
  const list = help(["list", "--help"]) ?? "";
  assert.match(list, /^Lists dead letters/);
  assert.match(list, /Usage: deno task dlq list \[options\]/);
  assert.match(list, /--reason/);
  assert.doesNotMatch(list, /--rate|--yes|--archive/);
  assert.match(help(["show", "--help"]) ?? "", /Usage: deno task dlq show REF \[options\]/);
  assert.equal(help(["--help"]), undefined);
});
