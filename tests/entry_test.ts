/** The entry scripts as a user runs them: flags, exit codes, signals, what they print. */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { Broker } from "../lib/broker.ts";
import { deleteTopology, topology } from "../lib/topology.ts";
import { DEFAULT_RETRY_POLICY, retryDelays } from "../lib/retry_policy.ts";
import { RABBITMQ_URL, runScript, scriptCommand, tempDir, uniquePrefix } from "./_broker.ts";

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
  assert.equal(missing.code, 0, missing.stdout);
  assert.match(missing.stdout, /0 problems, 6 warnings\./); // 4 objects, 2 retry tiers
  const plugin = await runScript("doctor.ts", [
    "--prefix",
    prefix,
    "--retry-backend",
    "plugin",
    "--json",
  ]);
  const checks = JSON.parse(plugin.stdout) as { status: string; subject: string }[];
  const pluginCheck = checks.find((c) => c.subject === "delayed-message plugin")!;
  assert.equal(plugin.code, pluginCheck.status === "fail" ? 1 : 0);
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
  const { code, stderr } = await runScript("estoque.ts", [], {
    RABBITMQ_URL: "amqp://guest:s3cret-pw@127.0.0.1:5672",
  });
  assert.equal(code, 1);
  assert.match(stderr, /cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672/);
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
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr.match(/msg="production order" kind=created/g)?.length, 10);
    assert.match(stderr, /msg=stopping why=drained/);
  } finally {
    await cleanup(prefix);
  }
});

Deno.test("ordem stops cleanly on SIGTERM and exits 0", async () => {
  const prefix = uniquePrefix("entry-signal");
  await using dir = await tempDir();
  const child = scriptCommand("ordem_de_producao.ts", [
    "--prefix",
    prefix,
    "--ledger",
    join(dir.path, "l.sqlite"),
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
  } finally {
    await child.stdout.cancel().catch(() => {});
    await cleanup(prefix);
  }
});
