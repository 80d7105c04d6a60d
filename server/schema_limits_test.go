package server

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/schemavalidate"
)

// enumValues returns n distinct JSON strings.
func enumValues(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("v%d", i)
	}
	return out
}

// nestedObject nests n object properties.
func nestedObject(n int) map[string]any {
	s := map[string]any{"type": "string"}
	for range n {
		s = map[string]any{"type": "object", "properties": map[string]any{"a": s}}
	}
	return s
}

func manyProperties(n int) map[string]any {
	props := map[string]any{}
	for i := range n {
		props[fmt.Sprintf("p%d", i)] = map[string]any{"type": "integer"}
	}
	return props
}

// goRegistration is a register_tool body as a Go toolkit sends it.
func goRegistration(key string, input, output any) map[string]any {
	md := map[string]any{"params": []string{}, "required_params": []string{}, "description": "d", "input_schema": input}
	if output != nil {
		md["output_schema"] = output
	}
	return map[string]any{"function_id": "pick", "api_key": key, "app_name": "limits", "programming_language": "Go",
		"code_hash": "c", "toolkit_hash": "h", "metadata": md}
}

// register_tool refuses a schema over a limit with a 400 that names the
// limit, what the schema has, and the flag that sets it; the answer stays
// short whatever the schema holds.
func TestRegisterRefusesSchemasOverLimits(t *testing.T) {
	e := newEnv(t, Config{MaxSchemaBytes: 64 << 10, MaxSchemaDepth: 16, MaxSchemaEnum: 20, MaxSchemaProperties: 30})
	obj := func(props map[string]any, extra ...any) map[string]any {
		m := map[string]any{"type": "object", "properties": props}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	enumOf := func(n int) map[string]any {
		return obj(map[string]any{"x": map[string]any{"type": "string", "enum": enumValues(n)}})
	}
	required := make([]string, 31)
	for i := range required {
		required[i] = fmt.Sprint("r", i)
	}
	bigDescription := obj(map[string]any{}, "description", strings.Repeat("x", 70<<10))
	bytesIn := len(compactJSON(mustJSON(t, bigDescription)))
	python := map[string]any{"function_id": "py", "api_key": e.tkKey, "app_name": "limits", "programming_language": "Python",
		"code_hash": "c", "toolkit_hash": "h", "metadata": map[string]any{"params": required, "required_params": []string{}, "description": "d"}}
	for _, tc := range []struct {
		name string
		body any
		want string
	}{
		{"enum", goRegistration(e.tkKey, enumOf(21), nil),
			"register_tool: metadata.input_schema: schema at /properties/x: enum has 21 values, over the limit of 20 values (a limit of this server: atp serve --max-schema-enum)"},
		{"huge enum", goRegistration(e.tkKey, enumOf(5000), nil),
			"metadata.input_schema: schema at /properties/x: enum has 5000 values, over the limit of 20 values"},
		{"properties", goRegistration(e.tkKey, obj(manyProperties(31)), nil),
			"metadata.input_schema: schema at root: properties has 31 members, over the limit of 30 properties per object (a limit of this server: atp serve --max-schema-properties)"},
		{"required", goRegistration(e.tkKey, obj(map[string]any{}, "required", required), nil),
			"metadata.input_schema: schema at root: required has 31 names, over the limit of 30 properties per object"},
		{"depth", goRegistration(e.tkKey, nestedObject(9), nil),
			"metadata.input_schema: the schema nests 19 levels deep (objects and arrays), over the limit of 16 levels; the first value past it is at /properties/a/properties/a/properties/a/properties/a/properties/a/properties/a/properties/a/properties/a (a limit of this server: atp serve --max-schema-depth)"},
		{"bytes", goRegistration(e.tkKey, bigDescription, nil),
			fmt.Sprintf("metadata.input_schema: the schema is %d bytes, over the limit of 65536 bytes (a limit of this server: atp serve --max-schema-bytes)", bytesIn)},
		{"output schema", goRegistration(e.tkKey, obj(map[string]any{}), enumOf(25)),
			"metadata.output_schema: schema at /properties/x: enum has 25 values, over the limit of 20 values"},
		{"python params", python,
			"metadata.params: 31 parameters, over the limit of 30 properties per object (a limit of this server: atp serve --max-schema-properties)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := e.postRaw("/api/v1/register_tool", tc.body)
			var reply struct{ Error string }
			json.Unmarshal(raw, &reply)
			if status != 400 || !strings.Contains(reply.Error, tc.want) {
				t.Fatalf("status %d, error %q\nwant 400 and an error containing %q", status, reply.Error, tc.want)
			}
			if len(raw) > 1024 {
				t.Fatalf("the refusal is %d bytes long: it echoes the schema", len(raw))
			}
		})
	}
	// A required name that is not a parameter: the parameters are named,
	// the first twenty of them.
	pyBad := map[string]any{"function_id": "py", "api_key": e.tkKey, "app_name": "limits", "programming_language": "Python",
		"code_hash": "c", "toolkit_hash": "h", "metadata": map[string]any{"params": required[:25], "required_params": []string{"nope"}, "description": "d"}}
	_, raw := e.postRaw("/api/v1/register_tool", pyBad)
	if !strings.Contains(string(raw), `\"nope\" is not in metadata.params (r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, and 5 more)`) {
		t.Fatalf("required name not in params: %s", raw)
	}
	// At the limits, the schema is taken.
	deep := map[string]any{"type": "array", "items": nestedObject(6)} // 16 levels at /properties/deep
	at := obj(map[string]any{"x": map[string]any{"type": "string", "enum": enumValues(20)}, "deep": deep, "many": obj(manyProperties(30))})
	if status, reply := e.post("/api/v1/register_tool", goRegistration(e.tkKey, at, nil)); status != 200 {
		t.Fatalf("a schema at the limits: %d %v", status, reply)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSchemaLimitsConfig(t *testing.T) {
	for _, cfg := range []Config{{MaxSchemaBytes: -1}, {MaxSchemaDepth: -1}, {MaxSchemaEnum: -1}, {MaxSchemaProperties: -1}} {
		if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "expected a positive limit") {
			t.Errorf("New(%+v) = %v, want a refusal of the negative limit", cfg, err)
		}
	}
	e := newEnv(t, Config{})
	want := schemavalidate.Limits{MaxBytes: 256 << 10, MaxDepth: 64, MaxEnum: 1000, MaxProperties: 1000}
	if got := e.srv.cfg.schemaLimits(); got != want {
		t.Errorf("default limits %+v, want %+v", got, want)
	}
}

// A schema stored under looser limits does not stop the server or slow its
// start: it is compiled at its tool's first call, refused then with a log
// line that says why, and the tool's calls are only checked to be a JSON
// object of UTF-8 text. A long enum's problem never lists its values.
func TestStoredSchemaOverNewLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atp.db")
	e := newEnv(t, Config{DBPath: path})
	schema := map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"type": "string", "enum": enumValues(500)}},
		"additionalProperties": false}
	if status, reply := e.post("/api/v1/register_tool", goRegistration(e.tkKey, schema, nil)); status != 200 {
		t.Fatalf("register: %d %v", status, reply)
	}
	call := func(e *testEnv, params string) (status string, message string) {
		t.Helper()
		req := pyTaskRequest(e.llmKey, "limits", 0, "pick", json.RawMessage(params))
		body := mustJSON(t, req) // a json.RawMessage keeps bytes that are not UTF-8
		_, raw := e.postRaw("/api/v1/atp/llm-client/process/", body, "Authorization", "ApiKey "+e.llmKey)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("reply %s: %v", raw, err)
		}
		s, _ := m["status"].(string)
		msg, _ := m["message"].(string)
		return s, msg
	}
	if _, msg := call(e, `{"x":"nope"}`); !strings.Contains(msg, `x: expected one of 500 values, got "nope"`) {
		t.Fatalf("call against the stored schema: %q", msg)
	}
	e.srv.Close()
	e.http.Close()

	// Restart with a lower enum limit.
	e2 := newEnv(t, Config{DBPath: path, MaxSchemaEnum: 100})
	if strings.Contains(e2.logs.String(), "stored input schema refused") {
		t.Fatal("the schema was compiled at start-up")
	}
	if _, msg := call(e2, `{"x":"nope","other":1}`); strings.Contains(msg, "invalid params") || !strings.Contains(msg, "offline") {
		t.Fatalf("call after the restart: %q, want it routed (the toolkit is offline)", msg)
	}
	logs := e2.logs.String()
	if !strings.Contains(logs, "stored input schema refused") || !strings.Contains(logs, "enum has 500 values, over the limit of 100 values") {
		t.Fatalf("no log line saying why the stored schema is not used:\n%s", logs)
	}
	if _, msg := call(e2, `[1]`); !strings.Contains(msg, "invalid params for pick: params: expected object, got array") {
		t.Fatalf("params that are not an object: %q", msg)
	}
}
