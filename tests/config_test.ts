import { strict as assert } from "node:assert";
import { formatHelp, parseCommandLine, UsageError } from "../lib/cli.ts";
import { estoqueConfig, ordemConfig } from "../lib/config.ts";
import { CONSOLE_OPTIONS, ESTOQUE_OPTIONS, ORDEM_OPTIONS } from "../lib/options.ts";
import { parseAllowedHosts } from "../lib/console/allowed_hosts.ts";

const estoque = (args: string[], env: Record<string, string> = {}) =>
  estoqueConfig(parseCommandLine(ESTOQUE_OPTIONS, args, env));
const ordem = (args: string[], env: Record<string, string> = {}) =>
  ordemConfig(parseCommandLine(ORDEM_OPTIONS, args, env));

Deno.test("estoqueConfig() defaults match the Go original", () => {
  const config = estoque([]);
  assert.equal(config.url, "amqp://guest:guest@127.0.0.1:5672");
  assert.equal(config.count, 1);
  assert.equal(config.quantity, undefined);
  assert.deepEqual(estoque(["--quantity", "1-600"]).quantity, { min: 1, max: 600 });
  assert.equal(estoque(["--quantity", "42"]).quantity, 42);
  assert.throws(() => estoque(["--quantity", "600-1"]), /--quantity must be Q or MIN-MAX/);
  assert.equal(config.topology.exchange, "productionorder");
  assert.equal(config.topology.queue, "create.productionorder");
  assert.equal(config.topology.deadLetterExchange, "productionorder.dlx");
  assert.equal(config.topology.deadLetterQueue, "create.productionorder.dlx");
  assert.equal(config.topology.routingKey, "create");
  assert.deepEqual(config.policy, {
    maxRetries: 2,
    delayMs: 5000,
    strategy: "linear",
    maxDelayMs: 3_600_000,
    jitter: 0,
  });
  assert.deepEqual(config.topology.retryTiers.map((t) => t.delayMs), [5000, 10000]);
});

Deno.test("ordemConfig() defaults: prefetch 2,000, limit 500, ledger under data/", () => {
  const config = ordem([]);
  assert.equal(config.prefetch, 2_000);
  assert.equal(config.maxQuantity, 500);
  assert.equal(config.ledgerPath, "data/ledger.sqlite");
  assert.equal(config.drain, false);
  assert.match(config.instanceId, /.+:\d+/);
});

Deno.test("flags override env, env overrides defaults", () => {
  assert.equal(ordem([], { PREFETCH: "7" }).prefetch, 7);
  assert.equal(ordem(["--prefetch", "9"], { PREFETCH: "7" }).prefetch, 9);
  assert.equal(ordem([], { ORDEM_DRAIN: "yes" }).drain, true);
  assert.equal(estoque(["-n", "3", "--prefix=demo."]).topology.exchange, "demo.productionorder");
});

Deno.test("RABBITMQ_URL takes several comma-separated URLs, and TLS files from env", () => {
  const ca = Deno.makeTempFileSync({ suffix: ".pem" });
  const config = ordem([], {
    RABBITMQ_URL: "amqp://u:p@r1:5672, amqps://u:p@r2:5671/prod",
    RABBITMQ_CA_FILE: ca,
    RABBITMQ_CERT_FILE: "",
  });
  Deno.removeSync(ca);
  assert.deepEqual(config.urls, ["amqp://u:p@r1:5672", "amqps://u:p@r2:5671/prod"]);
  assert.equal(config.url, "amqp://u:p@r1:5672");
  assert.deepEqual(config.tls, {
    caFile: ca,
    certFile: undefined,
    keyFile: undefined,
  });
  assert.equal(config.topology.queueType, "classic");
  const quorum = ordem(["--queue-type", "quorum", "--delivery-limit", "7"]).topology;
  assert.equal(quorum.queueType, "quorum");
  assert.equal(quorum.deliveryLimit, 7);
});

Deno.test("LEDGER_URL picks SQLite or PostgreSQL; --ledger stays the SQLite path", () => {
  assert.equal(ordem([]).ledgerUrl, "sqlite:data/ledger.sqlite");
  assert.equal(ordem(["--ledger", "x.sqlite"]).ledgerUrl, "sqlite:x.sqlite");
  const sqlite = ordem([], { LEDGER_URL: "sqlite:/var/lib/po/ledger.sqlite" });
  assert.equal(sqlite.ledgerPath, "/var/lib/po/ledger.sqlite");
  const pg = ordem(["--ledger-url", "postgres://po:pw@db:5432/po"]);
  assert.equal(pg.ledgerUrl, "postgres://po:pw@db:5432/po");
});

Deno.test("bad values stop with a message naming the flag or env variable and the value", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => estoque(["--count", "abc"]), /--count must be an integer from 1 to 10000000, got "abc"/],
    [() => estoque(["--count", "0"]), /--count must be an integer/],
    [() => ordem([], { PREFETCH: "-1" }), /PREFETCH must be an integer from 1 to 65535, got "-1"/],
    [
      () => ordem(["--retry-backend", "redis"]),
      /--retry-backend must be one of ttl, plugin, got "redis"/,
    ],
    [() => ordem(["--retry-jitter", "0.2"]), /--retry-jitter needs --retry-backend plugin/],
    [
      () => ordem(["--retry-jitter", "2", "--retry-backend", "plugin"]),
      /--retry-jitter must be a number from 0 to 1/,
    ],
    [() => ordem(["--retry-max-delay", "10", "--retry-delay", "100"]), /must not be below/],
    [
      () => ordem(["--url", "http://x"]),
      /--url: each broker URL must be an amqp:\/\/ or amqps:\/\//,
    ],
    [
      () => ordem([], { RABBITMQ_URL: "amqp://a:5672, ftp://b" }),
      /RABBITMQ_URL: each broker URL must be .*got "ftp:\/\/b"/,
    ],
    [() => ordem(["--queue-type", "stream"]), /--queue-type must be one of classic, quorum/],
    [
      () => ordem(["--queue-type", "quorum", "--retry-backend", "plugin"]),
      /--queue-type: quorum queues need the ttl retry backend/,
    ],
    [() => ordem([], { DELIVERY_LIMIT: "0" }), /DELIVERY_LIMIT must be an integer from 1/],
    [() => estoque(["--reconnect-timeout", "soon"]), /--reconnect-timeout must be an integer/],
    [
      () => ordem([], { LEDGER_URL: "mysql://u:pw@db/x" }),
      /LEDGER_URL must be sqlite:PATH or a postgres:\/\/ URL, got "mysql:\/\/u:\*\*\*@db\/x"/,
    ],
    [() => ordem(["--ledger-url", "sqlite:"]), /--ledger-url sqlite: needs a path/],
    [() => ordem(["--prefix", "a b"]), /--prefix: prefix may hold only/],
    [() => ordem([], { ORDEM_DRAIN: "maybe" }), /ORDEM_DRAIN must be true or false/],
    [() => ordem(["--bogus"]), /Unknown option '--bogus'/],
    [() => ordem(["--prefetch"]), /--prefetch/],
    [() => ordem(["--log-level", "loud"]), /--log-level must be one of/],
  ];
  for (const [run, message] of cases) {
    assert.throws(run, (e: unknown) => e instanceof UsageError && message.test(e.message));
  }
});

Deno.test("a bad URL is shown without its password", () => {
  assert.throws(
    () => ordem(["--url", "http://user:hunter2@host"]),
    (e: Error) => !e.message.includes("hunter2"),
  );
});

Deno.test("formatHelp() lists every flag with its default and env variable", () => {
  const help = formatHelp("deno task ordem [options]", "OrdemDeProducao", ORDEM_OPTIONS);
  for (const [name, spec] of Object.entries(ORDEM_OPTIONS)) {
    const negated = spec.type === "boolean" && "default" in spec && spec.default === "true";
    assert.match(help, new RegExp(`--${negated ? "no-" : ""}${name}( <|\n)`), name);
  }
  assert.match(help, /--prefetch <N>\n +Unacknowledged .*\(default: 2000, env: PREFETCH\)/);
  assert.match(help, /--no-http\n/);
  assert.match(help, /-h, --help/);
});

Deno.test("secrets come from <VAR>_FILE too (the Docker-secrets convention), the trailing newline dropped", () => {
  const url = Deno.makeTempFileSync();
  const ledger = Deno.makeTempFileSync();
  Deno.writeTextFileSync(url, "amqp://u:from-file@r1:5672\n");
  Deno.writeTextFileSync(ledger, "postgres://u:pw@db:5432/orders\n");
  const config = ordem([], { RABBITMQ_URL_FILE: url, LEDGER_URL_FILE: ledger });
  assert.equal(config.url, "amqp://u:from-file@r1:5672");
  assert.equal(config.ledgerUrl, "postgres://u:pw@db:5432/orders");
  // The variable itself, or a flag, wins over the file.
  assert.equal(ordem([], { RABBITMQ_URL: "amqp://r2", RABBITMQ_URL_FILE: url }).url, "amqp://r2");
  Deno.removeSync(url);
  Deno.removeSync(ledger);
  assert.throws(
    () => ordem([], { RABBITMQ_URL_FILE: url }),
    /RABBITMQ_URL_FILE names .* cannot be read/,
  );
});

Deno.test("the console's --allowed-hosts: the loopback names unless CONSOLE_ALLOWED_HOSTS or the flag says", () => {
  const allowed = (args: string[], env: Record<string, string> = {}) => {
    const option = parseCommandLine(CONSOLE_OPTIONS, args, env).options["allowed-hosts"]!;
    return [option.label, parseAllowedHosts(String(option.value)).map((h) => h.name)];
  };
  assert.deepEqual(allowed([]), [
    "--allowed-hosts (default)",
    ["localhost", "127.0.0.1", "[::1]"],
  ]);
  assert.deepEqual(allowed([], { CONSOLE_ALLOWED_HOSTS: "console.test" }), [
    "CONSOLE_ALLOWED_HOSTS",
    ["console.test"],
  ]);
  assert.deepEqual(
    allowed(["--allowed-hosts", "ops.test:8443"], { CONSOLE_ALLOWED_HOSTS: "console.test" }),
    ["--allowed-hosts", ["ops.test"]],
  );
  const help = formatHelp("deno task console", "The console", CONSOLE_OPTIONS);
  assert.match(
    help,
    /--allowed-hosts <host\[:port\]\[,...\]>\n +The host names .*\(default: localhost,127\.0\.0\.1,\[::1\], env: CONSOLE_ALLOWED_HOSTS\)/,
  );
});
