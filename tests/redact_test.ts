import { strict as assert } from "node:assert";
import { redactUrl } from "../lib/redact.ts";

/** Asserts what redactUrl() makes of each text: `[text, what it shows]`. */
function assertRedacts(cases: readonly (readonly [text: string, shown: string])[]): void {
  for (const [text, shown] of cases) assert.equal(redactUrl(text), shown, text);
}

Deno.test("redactUrl() hides the password, and only the password", () => {
  assertRedacts([
    ["amqp://guest:secret@rabbit:5672/prod", "amqp://guest:***@rabbit:5672/prod"],
    ["amqps://u:p%40ss@h", "amqps://u:***@h"],
    ["amqp://rabbit:5672", "amqp://rabbit:5672"],
    ["a=amqp://x:1@h, b=amqp://y:2@k", "a=amqp://x:***@h, b=amqp://y:***@k"],
  ]);
});

Deno.test("redactUrl() hides an empty password and one holding ':' or '%', and keeps the user", () => {
  assertRedacts([
    ["amqp://guest:@rabbit", "amqp://guest:***@rabbit"],
    ["amqp://:secret@rabbit", "amqp://:***@rabbit"],
    ["amqp://u:pa:ss@rabbit/v", "amqp://u:***@rabbit/v"],
    ["amqp://u:100%25@rabbit", "amqp://u:***@rabbit"],
  ]);
});

Deno.test("redactUrl() leaves a URL without a password as it is", () => {
  for (
    const text of [
      "amqp://guest@rabbit:5672/",
      "http://rabbit:15672/api/queues/%2F/q",
      "sqlite:data/ledger.sqlite",
      "postgres://db:5432/orders?sslmode=require#top",
      "",
    ]
  ) {
    assert.equal(redactUrl(text), text);
  }
});

Deno.test("redactUrl() hides a password given in a URL's query string too", () => {
  assertRedacts([
    [
      "postgres://app@db:5432/orders?password=hunter2&sslmode=require",
      "postgres://app@db:5432/orders?password=***&sslmode=require",
    ],
    [
      "cannot open postgres://db/orders?sslmode=disable&PassWord=p%40ss:x refused",
      "cannot open postgres://db/orders?sslmode=disable&PassWord=*** refused",
    ],
    ["postgresql://u:one@db/o?sslpassword=two", "postgresql://u:***@db/o?sslpassword=***"],
    // Only a parameter named for a password: others, and the words in plain text, stay.
    ["postgres://db/o?user=app&passwords_seen=2", "postgres://db/o?user=app&passwords_seen=2"],
    ["the password=wrong was refused", "the password=wrong was refused"],
  ]);
});

Deno.test("redactUrl() ends a query password at '&', '#' or a space, whatever the case of its name", () => {
  assertRedacts([
    ["postgres://db/o?password=a#b", "postgres://db/o?password=***#b"],
    [
      "postgres://db/o?PASSWORD=x&user=u&ssl_password=y",
      "postgres://db/o?PASSWORD=***&user=u&ssl_password=***",
    ],
    ["postgres://db/o?password= trailing", "postgres://db/o?password=*** trailing"],
    ["postgres://db/o?password=", "postgres://db/o?password=***"],
  ]);
});

Deno.test("redactUrl() hides the login's password and the query's in one URL, and in each URL of a list", () => {
  assertRedacts([
    ["postgres://u:one@db/o?password=two", "postgres://u:***@db/o?password=***"],
    // RABBITMQ_URL takes a comma-separated list, which error messages repeat as given.
    [
      "amqp://a:1@r1:5672,amqps://b:2@r2:5671/prod",
      "amqp://a:***@r1:5672,amqps://b:***@r2:5671/prod",
    ],
  ]);
});

Deno.test("redactUrl() hides all of a password holding an '@' that is not percent-encoded", () => {
  // WHATWG URL parsing (amqplib's, pg's) takes the last '@' before the host as the end of the
  // login: `amqp://u:p@ss@rabbit` logs in as u with the password "p@ss". None of it may show.
  assert.equal(new URL("amqp://u:p@ss@rabbit:5672/prod").password, "p%40ss");
  assertRedacts([
    ["amqp://u:p@ss@rabbit:5672/prod", "amqp://u:***@rabbit:5672/prod"],
    ["postgres://app:s3cr@t@db:5432/orders", "postgres://app:***@db:5432/orders"],
    ["cannot connect to amqp://u:a@b@c@h: refused", "cannot connect to amqp://u:***@h: refused"],
  ]);
});
