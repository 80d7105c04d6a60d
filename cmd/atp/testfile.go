package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/atpgo/atp/internal/didyoumean"
)

// defaultTestFiles are looked for, in order, in each package's directory
// when atp test gets neither --file nor --params.
var defaultTestFiles = []string{"atp-tests.yaml", "atp-tests.yml", "atp-tests.json"}

// testFile is a tests file:
//
//	shared_receiver: false          # optional; see below
//	tests:
//	  - name: greets Ada            # optional; default: the tool's name
//	    tool: greet
//	    params: {name: Ada, times: 2}
//	    expect_success: true        # the default
//	    expect_result: "Hello, Ada! Hello, Ada!"   # optional: the exact result
//	  - tool: greet
//	    params: {name: ""}
//	    expect_error: name is empty  # a substring of the error
//	  - tool: greet
//	    params: {name: Ada, times: 9}
//	    expect_error: true           # any error
//
// expect_success: false and expect_error: true expect any error;
// expect_error: false is expect_success: true. auth_token passes the end
// user's token to a tool that needs one. Each case calls method tools on
// receivers of its own (made by their //atp:constructor, else zero
// values); with shared_receiver: true the cases of the file share them, in
// file order.
type testFile struct {
	Cases          []*testCase
	SharedReceiver bool
}

// testCase is one case of a tests file.
type testCase struct {
	Name          string
	Tool          string
	Params        json.RawMessage
	ExpectSuccess *bool
	// ExpectError is the substring the error must contain; "" with
	// ExpectAnyError set means any error.
	ExpectError    *string
	ExpectAnyError bool
	ExpectResult   json.RawMessage
	AuthToken      string
	// fresh: the call gets receivers of its own (not shared_receiver).
	fresh bool
	// where says where the case is, for messages: "tests.yaml:12" or
	// "--params".
	where string
}

// expectsError reports whether the case expects the call to fail.
func (c *testCase) expectsError() bool {
	return c.ExpectError != nil || c.ExpectAnyError || (c.ExpectSuccess != nil && !*c.ExpectSuccess)
}

var (
	testFileKeys   = []string{"tests", "shared_receiver"}
	testCaseFields = []string{"name", "tool", "params", "expect_success", "expect_error", "expect_result", "auth_token"}
)

// label is how the case is named in output.
func (c *testCase) label() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Tool
}

// readTestFile reads a tests file, YAML or JSON (JSON is YAML too), and
// checks every case: all problems at once, each with its line.
func readTestFile(path string) (*testFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the tests file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty: expected a mapping with a tests list", path)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: expected a mapping with a tests list, got %s", path, root.Line, kindName(root))
	}
	var tests *yaml.Node
	tf := &testFile{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "tests":
			tests = v
		case "shared_receiver":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&tf.SharedReceiver) != nil {
				return nil, fmt.Errorf("%s:%d: shared_receiver: expected true or false, got %s", path, v.Line, describeNode(v))
			}
		default:
			hint := ""
			if s := didyoumean.Suggest(k.Value, testFileKeys); s != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", s)
			}
			return nil, fmt.Errorf("%s:%d: unknown key %q%s: the file holds tests and, optionally, shared_receiver", path, k.Line, k.Value, hint)
		}
	}
	if tests == nil {
		return nil, fmt.Errorf("%s: no tests key: expected tests: [{tool, params, expect_success | expect_error}]", path)
	}
	if tests.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: tests: expected a list, got %s", path, tests.Line, kindName(tests))
	}
	if len(tests.Content) == 0 {
		return nil, fmt.Errorf("%s:%d: tests is empty", path, tests.Line)
	}
	var problems []string
	for i, n := range tests.Content {
		c, errs := decodeCase(n)
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("%s:%d: tests[%d]: %s", path, e.line, i, e.msg))
		}
		c.where = fmt.Sprintf("%s:%d", path, n.Line)
		c.fresh = !tf.SharedReceiver
		tf.Cases = append(tf.Cases, c)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return tf, nil
}

type lineError struct {
	line int
	msg  string
}

func decodeCase(n *yaml.Node) (*testCase, []lineError) {
	c := &testCase{}
	var errs []lineError
	bad := func(at *yaml.Node, format string, args ...any) {
		errs = append(errs, lineError{at.Line, fmt.Sprintf(format, args...)})
	}
	if n.Kind != yaml.MappingNode {
		bad(n, "expected a mapping {tool, params, ...}, got %s", kindName(n))
		return c, errs
	}
	str := func(k, v *yaml.Node) string {
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			bad(v, "%s: expected a string, got %s", k.Value, kindName(v))
			return ""
		}
		return v.Value
	}
	seen := map[string]bool{}
	expectErrorFalse := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			bad(k, "%s is given twice", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "name":
			c.Name = str(k, v)
		case "tool":
			c.Tool = str(k, v)
		case "auth_token":
			c.AuthToken = str(k, v)
		case "expect_error":
			// A boolean is "any error" (or, false, none); anything else is
			// a substring of the error.
			if v.Kind == yaml.ScalarNode && v.Tag == "!!bool" {
				var b bool
				if v.Decode(&b) != nil {
					bad(v, "expect_error: expected true, false or a substring of the error, got %s", describeNode(v))
				}
				if b {
					c.ExpectAnyError = true
				} else {
					expectErrorFalse = true
				}
				continue
			}
			s := str(k, v)
			c.ExpectError = &s
		case "expect_success":
			var b bool
			if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
				bad(v, "expect_success: expected true or false, got %s", describeNode(v))
			}
			c.ExpectSuccess = &b
		case "params":
			raw, err := nodeJSON(v)
			if err != nil {
				bad(v, "params: %v", err)
			} else if v.Kind != yaml.MappingNode && v.Tag != "!!null" {
				bad(v, "params: expected an object (a mapping), got %s", kindName(v))
			}
			c.Params = raw
		case "expect_result":
			raw, err := nodeJSON(v)
			if err != nil {
				bad(v, "expect_result: %v", err)
			}
			c.ExpectResult = raw
		default:
			hint := ""
			if s := didyoumean.Suggest(k.Value, testCaseFields); s != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", s)
			}
			bad(k, "unknown field %q%s: expected one of %s", k.Value, hint, strings.Join(testCaseFields, ", "))
		}
	}
	if c.Tool == "" && !seen["tool"] {
		bad(n, "tool is missing: name the tool to call")
	}
	if expectErrorFalse {
		if c.ExpectSuccess != nil && !*c.ExpectSuccess {
			bad(n, "expect_success: false and expect_error: false contradict each other: keep one")
		}
		yes := true
		c.ExpectSuccess = &yes
	} else if (c.ExpectError != nil || c.ExpectAnyError) && c.ExpectSuccess != nil && *c.ExpectSuccess {
		bad(n, "expect_success: true and expect_error contradict each other: keep one")
	}
	if c.ExpectResult != nil && c.expectsError() {
		bad(n, "expect_result goes with a call that succeeds, not with expect_error or expect_success: false")
	}
	return c, errs
}

// nodeJSON converts a YAML node to JSON. Numbers keep their text when it is
// a JSON number, so that 12345678901234567890 and 0.10 reach the tool as
// written.
func nodeJSON(n *yaml.Node) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := yamlToJSON(&b, n, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func yamlToJSON(b *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > 100 {
		return fmt.Errorf("line %d: nested too deeply", n.Line)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("null")
			return nil
		}
		return yamlToJSON(b, n.Content[0], depth+1)
	case yaml.AliasNode:
		return yamlToJSON(b, n.Alias, depth+1)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				return fmt.Errorf("line %d: keys must be plain strings", k.Line)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			key, _ := json.Marshal(k.Value)
			b.Write(key)
			b.WriteByte(':')
			if err := yamlToJSON(b, v, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, v := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := yamlToJSON(b, v, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			b.WriteString("null")
		case "!!bool":
			var v bool
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: %v", n.Line, err)
			}
			b.WriteString(strconv.FormatBool(v))
		case "!!int", "!!float":
			if isJSONNumber(n.Value) {
				b.WriteString(n.Value)
				return nil
			}
			var v float64
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: %v", n.Line, err)
			}
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
			}
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		default:
			s, _ := json.Marshal(n.Value)
			b.Write(s)
		}
	default:
		return fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
	return nil
}

func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return describeNode(n)
	}
	return "something else"
}

func describeNode(n *yaml.Node) string {
	switch n.Tag {
	case "!!null":
		return "null"
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return n.Value
	}
	return "a " + strings.TrimPrefix(n.Tag, "!!") + " value"
}
