import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Validator, problemString, SchemaError } from "../src/index.js";
import { pkgRoot } from "./helpers.js";

interface Case {
  name: string;
  schema: string;
  params: string;
  problems: string[];
}

// The cases come from the Go validator (test/go/validatorcases writes and
// checks the file): the TypeScript validator must word every problem the
// same, in the same order.
const cases = JSON.parse(readFileSync(path.join(pkgRoot, "test/go/validatorcases/testdata/cases.json"), "utf8")) as Case[];

test("the cases file is not empty", () => {
  assert.ok(cases.length >= 150, `only ${cases.length} cases`);
});

test("problems are worded exactly as the Go validator words them", () => {
  const compiled = new Map<string, Validator>();
  const failures: string[] = [];
  for (const c of cases) {
    let v = compiled.get(c.schema);
    if (!v) {
      v = Validator.compile(c.schema);
      compiled.set(c.schema, v);
    }
    const got = v.validate(c.params).map(problemString);
    try {
      assert.deepEqual(got, c.problems);
    } catch {
      failures.push(`${c.name}: ${c.params}\n   got: ${JSON.stringify(got)}\n  want: ${JSON.stringify(c.problems)}`);
    }
  }
  assert.equal(failures.length, 0, `${failures.length} of ${cases.length} cases differ:\n${failures.join("\n")}`);
});

test("schemas the validator cannot read are refused with the keyword and pointer", () => {
  const bad: [string, string][] = [
    [`{`, "schema at root: not valid JSON"],
    [`{"type":"strin"}`, `schema at root: type: unknown type "strin"`],
    [`{"properties":{"a":{"minLength":-1}}}`, "schema at /properties/a: minLength: expected a non-negative integer, got -1"],
    [`{"properties":{"a":{"$ref":"#/$defs/missing"}}}`, `schema at /properties/a: $ref: cannot resolve "#/$defs/missing"`],
    [`{"$ref":"#"}`, "schema at root: $ref: the reference leads back to itself"],
    [`{"properties":{"a":{"pattern":"("}}}`, "schema at /properties/a: pattern: JavaScript cannot compile"],
    [`{"type":"object","required":["x"],"additionalProperties":false}`, `schema at root: required: "x" is required but not in properties`],
    [`{"$ref":"http://example.com/s.json"}`, "only local references"],
  ];
  for (const [schema, want] of bad) {
    assert.throws(() => Validator.compile(schema), (e: unknown) => e instanceof SchemaError && e.message.includes(want), schema);
  }
});

test("notes list what is not evaluated", () => {
  const v = Validator.compile({ type: "object", properties: { a: { oneOf: [{ type: "string" }, { type: "integer" }] } } });
  assert.deepEqual(v.notes, ["oneOf at /properties/a: general oneOf is not evaluated"]);
});
