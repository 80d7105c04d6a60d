// Package model is the plain data that flows from internal/parse to gen: the
// tools of one Go package, their parameters and the types those use, with
// source positions. It holds no go/types or go/ast values, so gen can be
// tested from hand-built models and the model can be dumped as JSON.
package model

import (
	"fmt"
	"time"
)

// Pos is a source position. File is as the user should see it (relative to
// the working directory when possible).
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// String is "file:line:col", or just "file" for a problem with no line (a
// package that failed to load).
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Package is one Go package with tools.
type Package struct {
	Path string `json:"path"` // import path
	Name string `json:"name"` // package name
	Dir  string `json:"dir"`  // directory holding the package's files (absolute)

	// Tools are the package-level functions with //atp:tool, sorted by tool name.
	Tools []*Tool `json:"tools,omitempty"`
	// Receivers are the types whose methods are tools, sorted by type name.
	Receivers []*Receiver `json:"receivers,omitempty"`
	// Named holds every named type the tools use, keyed by Named.ID. Types
	// refer to them by ID so that recursive types are plain data.
	Named map[string]*Named `json:"named,omitempty"`
}

// Receiver is a type whose methods are tools: generated code gets a
// func (r *T) ATPTools() []*runtime.Tool.
type Receiver struct {
	TypeName string  `json:"type_name"` // the Go type name, declared in Package
	Pos      Pos     `json:"pos"`
	Tools    []*Tool `json:"tools"` // sorted by tool name
	// Constructor makes a ready receiver for programs that serve the tools
	// without the user's main (atp test, atp mcp); nil means such programs
	// use new(TypeName), the zero value.
	Constructor *Constructor `json:"constructor,omitempty"`
}

// Constructor is a package-level function marked //atp:constructor that
// returns a ready *T for a Receiver T: func() *T or func() (*T, error),
// optionally taking a context.Context.
type Constructor struct {
	GoName       string `json:"go_name"` // exported: other packages call it
	Pos          Pos    `json:"pos"`
	TakesContext bool   `json:"takes_context,omitempty"`
	ReturnsError bool   `json:"returns_error,omitempty"`
}

// Tool is one function or method marked with //atp:tool.
type Tool struct {
	Pos Pos `json:"pos"` // the position of the func keyword's name

	GoName      string `json:"go_name"`                // function or method name
	Receiver    string `json:"receiver,omitempty"`     // type name for a method, "" for a function
	PtrReceiver bool   `json:"ptr_receiver,omitempty"` // the method has a pointer receiver

	Name        string `json:"name"`        // the tool name (name= or snake_case of GoName)
	Description string `json:"description"` // the doc comment without directives, trimmed

	AuthProvider string `json:"auth_provider,omitempty"` // auth=
	AuthType     string `json:"auth_type,omitempty"`     // auth_type= (default "OAuth2" when AuthProvider is set)
	AuthWith     string `json:"auth_with,omitempty"`     // auth_with= (default "access_token" when AuthProvider is set)
	// NeedsAuthToken: the signature takes a runtime.AuthToken, or auth= is set.
	NeedsAuthToken bool `json:"needs_auth_token,omitempty"`

	ReadOnly    bool          `json:"readonly,omitempty"`
	Destructive bool          `json:"destructive,omitempty"`
	Idempotent  bool          `json:"idempotent,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`

	// Args are the function's parameters in call order.
	Args []Arg `json:"args"`
	// Input is the shape of the params object.
	Input InputKind `json:"input"`
	// Fields are the properties of the params object: for InputPlain, one per
	// plain parameter (GoPath is the parameter name); for InputStruct and
	// InputStructPtr, the struct's properties (the same as the Named's Fields).
	Fields []*Field `json:"fields,omitempty"`
	// InputType is the struct type for InputStruct and InputStructPtr.
	InputType *Type `json:"input_type,omitempty"`

	// Result is the non-error result's type; nil when there is none.
	Result *Type `json:"result,omitempty"`
	// ReturnsError: the last result is an error.
	ReturnsError bool `json:"returns_error,omitempty"`
}

// InputKind says how a tool takes its params.
type InputKind string

const (
	InputNone      InputKind = "none"       // no params (only injected parameters, if any)
	InputPlain     InputKind = "plain"      // named parameters, one property each
	InputStruct    InputKind = "struct"     // one struct parameter
	InputStructPtr InputKind = "struct_ptr" // one pointer-to-struct parameter
)

// ArgKind says what one Go parameter of a tool is.
type ArgKind string

const (
	ArgContext   ArgKind = "context"    // context.Context (first only)
	ArgAuthToken ArgKind = "auth_token" // runtime.AuthToken (injected)
	ArgCall      ArgKind = "call"       // *runtime.Call (injected)
	ArgParam     ArgKind = "param"      // a plain parameter: Field names its property
	ArgInput     ArgKind = "input"      // the struct or pointer-to-struct input
)

// Arg is one Go parameter of a tool function.
type Arg struct {
	Kind   ArgKind `json:"kind"`
	GoName string  `json:"go_name,omitempty"` // the parameter's name ("" or "_" when unnamed)
	// Field is the index into Tool.Fields for ArgParam.
	Field int `json:"field,omitempty"`
	Pos   Pos `json:"pos"`
}

// Kind is the JSON-relevant kind of a Go type.
type Kind string

const (
	KindBool     Kind = "bool"
	KindInt      Kind = "int"      // int, int8 ... int64 (Bits)
	KindUint     Kind = "uint"     // uint, uint8 ... uint64, uintptr (Bits)
	KindFloat    Kind = "float"    // float32, float64 (Bits)
	KindString   Kind = "string"   //
	KindBytes    Kind = "bytes"    // []byte: base64 string
	KindTime     Kind = "time"     // time.Time: RFC 3339 date-time string
	KindDuration Kind = "duration" // time.Duration: Go duration string
	KindAny      Kind = "any"      // any / interface{}: any JSON value
	KindRaw      Kind = "raw"      // json.RawMessage: any JSON value, kept as bytes
	KindSlice    Kind = "slice"    // []Elem (not []byte)
	KindArray    Kind = "array"    // [Len]Elem
	KindMap      Kind = "map"      // map[string-kind]Elem; Key is the key type
	KindPointer  Kind = "pointer"  // *Elem: optional and nullable
	KindStruct   Kind = "struct"   // an anonymous struct: Fields
	KindNamed    Kind = "named"    // a named type: Ref is its ID in Package.Named
)

// Type is a Go type as the generator needs it.
type Type struct {
	Kind Kind  `json:"kind"`
	Bits int   `json:"bits,omitempty"` // KindInt, KindUint, KindFloat: 8, 16, 32, 64; 0 for int and uint (the platform's size)
	Elem *Type `json:"elem,omitempty"` // KindSlice, KindArray, KindMap (value), KindPointer
	Key  *Type `json:"key,omitempty"`  // KindMap: a string kind or a named type whose underlying type is string
	Len  int64 `json:"len,omitempty"`  // KindArray
	// Fields are the properties of an anonymous struct (KindStruct).
	Fields []*Field `json:"fields,omitempty"`
	// Ref is the Named.ID of a KindNamed type.
	Ref string `json:"ref,omitempty"`
}

// Named is a named Go type that a tool uses.
type Named struct {
	ID      string `json:"id"`       // PkgPath + "." + Name (plus type arguments for instantiated generics)
	PkgPath string `json:"pkg_path"` // import path of the declaring package
	PkgName string `json:"pkg_name"` // its package name
	Name    string `json:"name"`
	Pos     Pos    `json:"pos"`
	Doc     string `json:"doc,omitempty"` // the type's doc comment

	// Underlying is the type's underlying type. A named type whose underlying
	// type is a struct has Underlying.Kind == KindStruct with its Fields
	// (embedded structs already flattened).
	Underlying *Type `json:"underlying"`

	// Enum lists the constants of this type declared in its package, in
	// source order, when there are any: the type's values are limited to them.
	Enum []EnumValue `json:"enum,omitempty"`

	// Recursive: the type refers to itself, directly or not. Its schema goes
	// in $defs and is used through $ref.
	Recursive bool `json:"recursive,omitempty"`

	// Special handling by what the type implements.
	// KindTime, KindDuration, KindRaw and KindBytes are recognised by
	// identity (time.Time, time.Duration, json.RawMessage) and are never Named.
	//
	// JSONUnmarshaler: *T implements json.Unmarshaler. Its value is decoded
	// by handing the raw JSON to UnmarshalJSON; its schema comes from
	// SchemaJSON, or is {} (any value) without one.
	JSONUnmarshaler bool `json:"json_unmarshaler,omitempty"`
	// TextUnmarshaler: *T implements encoding.TextUnmarshaler (and not
	// json.Unmarshaler): the value is a JSON string handed to UnmarshalText,
	// as encoding/json does.
	TextUnmarshaler bool `json:"text_unmarshaler,omitempty"`
	// JSONMarshaler: T or *T implements json.Marshaler, so encoding/json
	// writes its results with MarshalJSON: a result's schema comes from
	// SchemaJSON, or is {}. TextMarshaler: likewise with encoding.TextMarshaler
	// (and not json.Marshaler): the result is a JSON string.
	//
	// For a type decoded or encoded through its own methods, Underlying is
	// only analysed when the type is also used the other way (an
	// UnmarshalJSON type used in a result, ...); otherwise it is the basic
	// kind of the underlying type, or KindAny.
	JSONMarshaler bool `json:"json_marshaler,omitempty"`
	TextMarshaler bool `json:"text_marshaler,omitempty"`
	// SchemaJSON is the schema the type declares for itself with a
	// //atp:schema <json> line in its doc comment (raw JSON, checked by the
	// parser). Required for JSONUnmarshaler types to get more than {}.
	SchemaJSON string `json:"schema_json,omitempty"`
}

// EnumValue is one constant of an enum type.
type EnumValue struct {
	GoName string `json:"go_name"`
	// Value is the constant's value as a JSON literal: "\"celsius\"" or "3".
	Value string `json:"value"`
	Doc   string `json:"doc,omitempty"` // the constant's doc or line comment
	Pos   Pos    `json:"pos"`
}

// Field is one property of a params object or of a struct.
type Field struct {
	Pos Pos `json:"pos"`

	// GoPath is how generated code reaches the field from the struct value:
	// ["Location"], or ["Base", "ID"] for a field promoted from an embedded
	// struct. For a plain parameter it is the parameter's name.
	GoPath []string `json:"go_path"`
	// EmbedPtr marks, for each step of GoPath but the last, whether that
	// embedded field is a pointer (generated code allocates it first).
	EmbedPtr []bool `json:"embed_ptr,omitempty"`

	JSONName string `json:"json_name"` // the property name
	Doc      string `json:"doc,omitempty"`
	Type     *Type  `json:"type"`

	// Required: the property must be present. False for pointers, fields with
	// omitempty/omitzero or a default, and plain parameters of pointer type or
	// with a default.
	Required bool `json:"required,omitempty"`

	Constraints Constraints `json:"constraints"`
}

// Constraints are the jsonschema:"..." tag's keywords (invopop syntax), or,
// for plain parameters, the same keywords from the parameter's doc line.
// Numbers and JSON values keep their source text.
type Constraints struct {
	Title            string   `json:"title,omitempty"`
	Description      string   `json:"description,omitempty"` // overrides Doc when set
	Minimum          string   `json:"minimum,omitempty"`
	Maximum          string   `json:"maximum,omitempty"`
	ExclusiveMinimum string   `json:"exclusive_minimum,omitempty"`
	ExclusiveMaximum string   `json:"exclusive_maximum,omitempty"`
	MultipleOf       string   `json:"multiple_of,omitempty"`
	MinLength        *int     `json:"min_length,omitempty"`
	MaxLength        *int     `json:"max_length,omitempty"`
	MinItems         *int     `json:"min_items,omitempty"`
	MaxItems         *int     `json:"max_items,omitempty"`
	UniqueItems      bool     `json:"unique_items,omitempty"`
	Pattern          string   `json:"pattern,omitempty"`
	Format           string   `json:"format,omitempty"`
	Enum             []string `json:"enum,omitempty"`     // JSON literals, e.g. "\"a\"", "3"
	Default          string   `json:"default,omitempty"`  // a JSON literal
	Examples         []string `json:"examples,omitempty"` // JSON literals
	Deprecated       bool     `json:"deprecated,omitempty"`
	ReadOnly         bool     `json:"read_only,omitempty"`
	WriteOnly        bool     `json:"write_only,omitempty"`
	// Nullable: the jsonschema tag says "nullable" (a non-pointer that also
	// accepts null, decoded as its zero value).
	Nullable bool `json:"nullable,omitempty"`
	// Items holds, for a slice or array (not []byte), the keywords that
	// apply to each element, as invopop/jsonschema applies them: enum,
	// example, minimum..., minLength, maxLength, pattern and format on a
	// []T field constrain its items. Default on such a field is a JSON array
	// of the (repeatable) default= values.
	Items *Constraints `json:"items,omitempty"`
}

// Problem is a source problem, reported as "pos: message".
type Problem struct {
	Pos     Pos    `json:"pos"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Pos.String() + ": " + p.Message }
