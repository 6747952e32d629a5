/** The entry scripts as a user runs them: flags, exit codes, signals, what they print. */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { Broker, redactUrl } from "../lib/broker.ts";
import { topology } from "../lib/topology.ts";
import { deleteTopology } from "../lib/declare_topology.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import {
  RABBITMQ_URL,
  runScript,
  scriptCommand,
  tempDir,
  uniquePrefix,
} from "../testing/broker.ts";
import { DEFAULT_BROKER, managementRequest, vhostPath } from "../testing/other_brokers.ts";

/** The broker under test's URL (RABBITMQ_URL) with some of its parts changed. */
function brokerUrl(changes: Partial<Pick<URL, "username" | "password" | "pathname">>): URL {
  const url = new URL(RABBITMQ_URL);
  Object.assign(url, changes);
  return url;
}

/** A URL without its user name and password. */
function withoutLogin(href: string): string {
  const url = new URL(href);
  url.username = "";
  url.password = "";
  return url.href;
}

async function cleanup(prefix: string): Promise<void> {
  const broker = await Broker.connect(RABBITMQ_URL);
  try {
    await deleteTopology(
      broker,
      topology({ prefix, retryDelays: retryDelays(DEFAULT_RETRY_POLICY) }),
    );
  } finally {
    await broker.close();
  }
}

Deno.test("estoque --help lists the flags and exits 0", async () => {
  const { code, stdout } = await runScript("estoque.ts", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /--count <N>\n +How many .*\(default: 1, env: ESTOQUE_COUNT\)/);
});

Deno.test("every command has --help naming its flags and their env variables", async () => {
  for (
    const [script, flag] of [
      ["ordem_de_producao.ts", "--prefetch <N>"],
      ["demo.ts", "--orders <N>"],
      ["dlq.ts", "--dry-run"],
      ["doctor.ts", "--management-url <http-url>"],
    ]
  ) {
    const { code, stdout } = await runScript(script!, ["--help"]);
    assert.equal(code, 0, script);
    assert.ok(stdout.includes(flag!), `${script} --help lacks ${flag}`);
    assert.match(stdout, /env: RABBITMQ_URL/, script);
  }
});

Deno.test("doctor exits 1 on a problem and 0 otherwise", async () => {
  const prefix = uniquePrefix("entry-doctor");
  const missing = await runScript("doctor.ts", ["--prefix", prefix]);
  // A missing topology (a typo in the prefix, say) is a problem: 4 objects, 2 retry tiers.
  assert.equal(missing.code, 1, missing.stdout);
  assert.match(missing.stdout, /6 problems, 0 warnings\./);
  // Declared (by Estoque) with nobody consuming: warnings only, exit 0.
  try {
    assert.equal((await runScript("estoque.ts", ["--prefix", prefix])).code, 0);
    const declared = await runScript("doctor.ts", ["--prefix", prefix]);
    assert.equal(declared.code, 0, declared.stdout);
    assert.match(declared.stdout, /warn {2}queue .*create\.productionorder: no consumer/);
    assert.match(declared.stdout, /0 problems, 1 warning\./);
  } finally {
    await cleanup(prefix);
  }
});

Deno.test("a bad flag stops a command with exit code 2 and a message naming it", async () => {
  const unknown = await runScript("ordem_de_producao.ts", ["--prefech", "5"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown option '--prefech'/);
  const bad = await runScript("estoque.ts", ["--count=-3"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--count must be an integer from 1 to 10000000, got "-3"/);
  const env = await runScript("demo.ts", [], { DEMO_ORDERS: "lots" });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /DEMO_ORDERS must be an integer/);
});

Deno.test("a refused login exits 1 and never prints the password", async () => {
  const wrong = brokerUrl({ password: "s3cret-pw" });
  const { code, stderr } = await runScript("estoque.ts", [], { RABBITMQ_URL: wrong.href });
  assert.equal(code, 1);
  assert.ok(
    stderr.includes(`cannot connect to RabbitMQ at ${redactUrl(wrong.href)}`),
    `${redactUrl(wrong.href)} not in: ${stderr}`,
  );
  assert.match(stderr, /:\*\*\*@/);
  assert.ok(!stderr.includes("s3cret-pw"), stderr);
});

Deno.test("estoque publishes --count orders and prints a one-line summary", async () => {
  const prefix = uniquePrefix("entry-estoque");
  try {
    const { code, stdout } = await runScript("estoque.ts", [
      "--count",
      "25",
      "--prefix",
      prefix,
      "--quantity",
      "3",
    ]);
    assert.equal(code, 0);
    assert.match(
      stdout,
      new RegExp(
        `^estoque: 25/25 orders confirmed on ${
          prefix.replaceAll(".", "\\.")
        }productionorder in .* msg/s\\)\\n$`,
      ),
    );
    const broker = await Broker.connect(RABBITMQ_URL);
    assert.equal(await broker.messageCount(`${prefix}create.productionorder`), 25);
    await broker.close();
  } finally {
    await cleanup(prefix);
  }
});

Deno.test("ordem --drain processes what estoque sent and exits 0", async () => {
  const prefix = uniquePrefix("entry-drain");
  await using dir = await tempDir();
  try {
    assert.equal(
      (await runScript("estoque.ts", ["-n", "10", "--prefix", prefix, "--quantity", "7"])).code,
      0,
    );
    const ledger = join(dir.path, "ledger.sqlite");
    const { code, stderr } = await runScript("ordem_de_producao.ts", [
      "--prefix",
      prefix,
      "--drain",
      "--ledger",
      ledger,
      "--log-level",
      "debug",
      "--no-http",
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr.match(/msg="production order" kind=created/g)?.length, 10);
    assert.match(stderr, /msg=stopping why=drained/);
  } finally {
    await cleanup(prefix);
  }
});

Deno.test("ordem stops cleanly on SIGTERM and exits 0; a second instance on its SQLite ledger stops at once", async () => {
  const prefix = uniquePrefix("entry-signal");
  await using dir = await tempDir();
  const ledger = join(dir.path, "l.sqlite");
  const child = scriptCommand("ordem_de_producao.ts", [
    "--prefix",
    prefix,
    "--ledger",
    ledger,
    "--no-http",
  ]).spawn();
  try {
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const deadline = setTimeout(() => child.kill("SIGKILL"), 15_000);
    while (!seen.includes("msg=ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, /msg=ready/);
    // A second instance on the same SQLite ledger stops at once instead of sharing the file.
    const second = await runScript("ordem_de_producao.ts", [
      "--prefix",
      prefix,
      "--ledger",
      ledger,
      "--no-http",
    ]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /the SQLite ledger .* is in use by another process \(.+:\d+\)/);
    assert.match(second.stderr, /LEDGER_URL=postgres/);
    child.kill("SIGTERM");
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    clearTimeout(deadline);
    const status = await child.status;
    assert.equal(status.code, 0, seen);
    assert.match(seen, /msg=stopping why=signal/);
    assert.match(seen, /msg=stopped/);
    // Its lock went with it.
    const after = await runScript("ordem_de_producao.ts", [
      "--prefix",
      prefix,
      "--ledger",
      ledger,
      "--drain",
      "--no-http",
    ]);
    assert.equal(after.code, 0, after.stderr);
  } finally {
    await child.stdout.cancel().catch(() => {});
    await cleanup(prefix);
  }
});

Deno.test("a password with @ : / % ? # works from RABBITMQ_PASSWORD and RABBITMQ_PASSWORD_FILE, and is never shown", async () => {
  const user = `test-login-${crypto.randomUUID().slice(0, 8)}`;
  const password = "p@ss:w/rd%2F?#";
  // Made through the management API of the broker under test (RABBITMQ_MANAGEMENT_URL).
  await managementRequest(DEFAULT_BROKER, "PUT", `users/${user}`, { password, tags: "monitoring" });
  const prefix = uniquePrefix("login");
  await using dir = await tempDir();
  try {
    await managementRequest(
      DEFAULT_BROKER,
      "PUT",
      `permissions/${vhostPath(DEFAULT_BROKER)}/${user}`,
      { configure: ".*", write: ".*", read: ".*" },
    );
    // The broker under test and its management API with no login in them: the login comes apart.
    const base = {
      RABBITMQ_URL: brokerUrl({ username: "", password: "" }).href,
      RABBITMQ_MANAGEMENT_URL: withoutLogin(DEFAULT_BROKER.managementUrl),
      RABBITMQ_USER: user,
    };
    const fromEnv = await runScript("estoque.ts", ["--prefix", prefix], {
      ...base,
      RABBITMQ_PASSWORD: password,
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const file = join(dir.path, "password");
    await Deno.writeTextFile(file, `${password}\n`);
    const fromFile = await runScript("estoque.ts", ["--prefix", prefix], {
      ...base,
      RABBITMQ_PASSWORD_FILE: file,
    });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    // The doctor logs in to the management API with the same login.
    const doctor = await runScript("doctor.ts", ["--prefix", prefix], {
      ...base,
      RABBITMQ_PASSWORD_FILE: file,
    });
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /ok {4}management API/);
    for (const run of [fromEnv, fromFile, doctor]) {
      assert.ok(!(run.stdout + run.stderr).includes("p@ss"), "the password is never printed");
    }
    const missing = await runScript("estoque.ts", ["--prefix", prefix], {
      ...base,
      RABBITMQ_PASSWORD_FILE: join(dir.path, "nope"),
    });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /RABBITMQ_PASSWORD_FILE names ".*nope", which cannot be read/);
  } finally {
    await managementRequest(DEFAULT_BROKER, "DELETE", `users/${user}`);
    await cleanup(prefix);
  }
});

Deno.test("a missing vhost, a taken port, an unreadable TLS file and a bad management URL each stop the command at once, naming the setting", async () => {
  const started = performance.now();
  const vhost = await runScript("estoque.ts", [], {
    RABBITMQ_URL: brokerUrl({ pathname: "/no-such-vhost" }).href,
  });
  assert.equal(vhost.code, 1);
  assert.match(vhost.stderr, /refused to open vhost "no-such-vhost": it does not exist/);
  assert.ok(performance.now() - started < 10_000, "not retried for RECONNECT_TIMEOUT_MS");
  await using dir = await tempDir();
  const takenPort = new URL(RABBITMQ_URL).port || "5672";
  const port = await runScript("ordem_de_producao.ts", [
    "--prefix",
    uniquePrefix("entry-port"),
    "--ledger",
    join(dir.path, "l.sqlite"),
    "--http-port",
    takenPort, // the broker's own
  ]);
  assert.equal(port.code, 1);
  assert.ok(
    port.stderr.includes(`cannot listen on 127.0.0.1:${takenPort}: the port is taken;`),
    port.stderr,
  );
  assert.match(port.stderr, /the port is taken; .*--http-port/);
  const tls = await runScript("estoque.ts", ["--tls-ca", "/nope.pem"], {
    RABBITMQ_URL: "amqps://guest:guest@127.0.0.1:5671",
  });
  assert.equal(tls.code, 2);
  assert.equal(tls.stderr.split("\n").filter((l) => l.startsWith("error:")).length, 1);
  assert.match(tls.stderr, /--tls-ca \/nope\.pem cannot be read/);
  const management = await runScript("doctor.ts", ["--management-url", "notaurl"]);
  assert.equal(management.code, 2);
  assert.match(management.stderr, /--management-url must be an http:\/\/ or https:\/\/ URL/);
});

Deno.test("dlq checks its whole command line before it connects: a bad flag exits 2 naming it, with no broker to reach", async () => {
  // Nothing listens on port 1: a command that got as far as connecting would exit 1.
  const nowhere = { RABBITMQ_URL: "amqp://guest:guest@127.0.0.1:1" };
  for (
    const [args, message] of [
      [["replay", "--from-file", "a.jsonl", "--reason", "invalid"], /--from-file replays a whole/],
      [["replay", "--rate", "0"], /--rate must be a number from 0\.1 to 1000000, got "0"/],
      [["purge", "--json"], /--json does not apply to "dlq purge"/],
      [["list", "--prefix", "a b"], /--prefix: prefix may hold only letters/],
    ] as const
  ) {
    const run = await runScript("dlq.ts", [...args], nowhere);
    assert.equal(run.code, 2, `dlq ${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /cannot connect/);
  }
});
