export { Decoder, problemString, type Problem } from "./decoder.js";
export { Validator, SchemaError } from "./schema.js";
