/**
 * AMQP's integer field types, for tests that send each one raw.
 *
 * @module
 */

/** AMQP's integer field types, amqplib's name for each and its tag on the wire. */
export const INTEGER_TYPES = [
  ["byte", "b"],
  ["unsignedbyte", "B"],
  ["short", "s"],
  ["unsignedshort", "u"],
  ["int", "I"],
  ["unsignedint", "i"],
  ["long", "l"],
] as const;
