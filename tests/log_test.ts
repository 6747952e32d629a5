import { strict as assert } from "node:assert";
import { logger, setupLogging } from "../lib/log.ts";

Deno.test("log lines are logfmt with structured fields, and never carry a URL's password", () => {
  const lines: string[] = [];
  try {
    setupLogging({ level: "info", write: (line) => lines.push(line) });
    const log = logger("test");
    log.info("connected", {
      broker: "amqp://guest:s3cret@rabbit:5672",
      refCode: "abc",
      attempt: 2,
    });
    log.debug("not shown at info");
  } finally {
    setupLogging({ level: "fatal" });
  }
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.match(line, /level=info logger=productionorder\.test msg=connected/);
  assert.match(line, /refCode=abc attempt=2/);
  assert.ok(line.includes("amqp://guest:***@rabbit:5672"), line);
  assert.ok(!line.includes("s3cret"), line);
});

Deno.test("setupLogging() fields go on every line, so instances sharing a queue can be told apart", () => {
  const lines: string[] = [];
  try {
    setupLogging({
      level: "info",
      write: (line) => lines.push(line),
      fields: { instanceId: "h:1" },
    });
    logger("test").info("ready", { queue: "q" });
    logger("other").warning("lost");
  } finally {
    setupLogging({ level: "fatal" });
  }
  assert.equal(lines.length, 2);
  for (const line of lines) assert.match(line, /instanceId=h:1\n$/);
  assert.match(lines[0]!, /msg=ready queue=q instanceId=h:1/);
});
