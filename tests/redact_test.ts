// The usual URLs (a login, ?password=, &sslpassword=, several in one text) are in broker_test.ts.
import { strict as assert } from "node:assert";
import { redactUrl } from "../lib/redact.ts";

Deno.test("redactUrl() hides an empty password and one holding ':' or '%', and keeps the user", () => {
  assert.equal(redactUrl("amqp://guest:@rabbit"), "amqp://guest:***@rabbit");
  assert.equal(redactUrl("amqp://:secret@rabbit"), "amqp://:***@rabbit");
  assert.equal(redactUrl("amqp://u:pa:ss@rabbit/v"), "amqp://u:***@rabbit/v");
  assert.equal(redactUrl("amqp://u:100%25@rabbit"), "amqp://u:***@rabbit");
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

Deno.test("redactUrl() ends a query password at '&', '#' or a space, whatever the case of its name", () => {
  assert.equal(
    redactUrl("postgres://db/o?password=a#b"),
    "postgres://db/o?password=***#b",
  );
  assert.equal(
    redactUrl("postgres://db/o?PASSWORD=x&user=u&ssl_password=y"),
    "postgres://db/o?PASSWORD=***&user=u&ssl_password=***",
  );
  assert.equal(
    redactUrl("postgres://db/o?password= trailing"),
    "postgres://db/o?password=*** trailing",
  );
  assert.equal(redactUrl("postgres://db/o?password="), "postgres://db/o?password=***");
});

Deno.test("redactUrl() hides the login's password and the query's in one URL, and in each URL of a list", () => {
  assert.equal(
    redactUrl("postgres://u:one@db/o?password=two"),
    "postgres://u:***@db/o?password=***",
  );
  // RABBITMQ_URL takes a comma-separated list, which error messages repeat as given.
  assert.equal(
    redactUrl("amqp://a:1@r1:5672,amqps://b:2@r2:5671/prod"),
    "amqp://a:***@r1:5672,amqps://b:***@r2:5671/prod",
  );
});

Deno.test("redactUrl() hides all of a password holding an '@' that is not percent-encoded", () => {
  // WHATWG URL parsing (amqplib's, pg's) takes the last '@' before the host as the end of the
  // login: `amqp://u:p@ss@rabbit` logs in as u with the password "p@ss". None of it may show.
  assert.equal(new URL("amqp://u:p@ss@rabbit:5672/prod").password, "p%40ss");
  assert.equal(redactUrl("amqp://u:p@ss@rabbit:5672/prod"), "amqp://u:***@rabbit:5672/prod");
  assert.equal(
    redactUrl("postgres://app:s3cr@t@db:5432/orders"),
    "postgres://app:***@db:5432/orders",
  );
  assert.equal(
    redactUrl("cannot connect to amqp://u:a@b@c@h: refused"),
    "cannot connect to amqp://u:***@h: refused",
  );
});
