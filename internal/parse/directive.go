package parse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/token"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/atpgo/atp/internal/didyoumean"
)

// The directive names after "//atp:".
const (
	dirTool        = "tool"
	dirSchema      = "schema"
	dirConstructor = "constructor"
)

// directiveNames are the directive names, for "did you mean".
var directiveNames = []string{dirTool, dirSchema, dirConstructor}

// toolOptionKeys lists the //atp:tool options in the order messages give them.
var toolOptionKeys = []string{"name", "auth", "auth_type", "auth_with", "readonly", "destructive", "idempotent", "timeout"}

var (
	toolNameRE     = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$`)
	authProviderRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

	// looksLikeDirective matches the comment lines that were probably meant
	// as an atp directive: "atp" and a colon after "//", with spaces or
	// capitals anywhere ("// atp:tool", "//ATP:tool", "//atp: tool"). A
	// prose comment such as "// ATP: the Agent Tool Protocol" is left alone:
	// with a capitalised ATP after a space, the colon must be directly
	// followed by a directive name for the line to count.
	looksLikeDirective = regexp.MustCompile(`^//\s*atp\s*:|^//(?i:atp)\s*:|^//\s*(?i:atp)\s*:(?i:tool|schema|constructor)`)
	// nearMissParts splits such a line for the diagnosis.
	nearMissParts = regexp.MustCompile(`^//(\s*)([A-Za-z]+)(\s*):(\s*)(\S*)`)
	// blockDirective matches a line of a /* */ comment that holds a directive.
	blockDirective = regexp.MustCompile(`^\s*\*?\s*(?i:atp)\s*:\s*(?i:tool|schema|constructor)\b`)
)

// commentOwner says what a comment group documents.
type commentOwner struct {
	what string        // "func F", "type T", "field X", ... ("" when floating)
	fn   *ast.FuncDecl // the function, when the group is its doc comment
	typ  *ast.Ident    // the type name, when the group is a type's doc comment
}

// commentOwners maps every doc and line comment group of f to what it
// documents. Groups not in the map float: inside bodies, between
// declarations, or separated from a declaration by a blank line.
func commentOwners(f *ast.File) map[*ast.CommentGroup]commentOwner {
	owners := make(map[*ast.CommentGroup]commentOwner)
	set := func(g *ast.CommentGroup, o commentOwner) {
		if g != nil {
			owners[g] = o
		}
	}
	set(f.Doc, commentOwner{what: "the package clause"})
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			what := "func " + d.Name.Name
			if d.Recv != nil {
				what = "method " + d.Name.Name
			}
			set(d.Doc, commentOwner{what: what, fn: d})
		case *ast.GenDecl:
			lone := !d.Lparen.IsValid() && len(d.Specs) == 1
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					o := commentOwner{what: "type " + s.Name.Name, typ: s.Name}
					set(s.Doc, o)
					set(s.Comment, commentOwner{what: "type " + s.Name.Name})
					if lone {
						set(d.Doc, o)
					}
				case *ast.ValueSpec:
					o := commentOwner{what: d.Tok.String() + " " + s.Names[0].Name}
					set(s.Doc, o)
					set(s.Comment, o)
					if lone {
						set(d.Doc, o)
					}
				case *ast.ImportSpec:
					set(s.Doc, commentOwner{what: "an import"})
					set(s.Comment, commentOwner{what: "an import"})
					if lone {
						set(d.Doc, commentOwner{what: "an import"})
					}
				}
			}
			if !lone {
				set(d.Doc, commentOwner{what: "a " + d.Tok.String() + " group"})
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		var fields *ast.FieldList
		kind := "field"
		switch n := n.(type) {
		case *ast.StructType:
			fields = n.Fields
		case *ast.InterfaceType:
			fields, kind = n.Methods, "interface method"
		case *ast.FuncType:
			if n.Params != nil {
				for _, p := range n.Params.List {
					o := commentOwner{what: "a parameter"}
					set(p.Doc, o)
					set(p.Comment, o)
				}
			}
			return true
		}
		if fields == nil {
			return true
		}
		for _, field := range fields.List {
			name := "(embedded)"
			if len(field.Names) > 0 {
				name = field.Names[0].Name
			} else if id := embeddedFieldIdent(field.Type); id != nil {
				name = id.Name
			}
			o := commentOwner{what: kind + " " + name}
			set(field.Doc, o)
			set(field.Comment, o)
		}
		return true
	})
	return owners
}

// fileDirectives is what scanning one file's comments found.
type fileDirectives struct {
	// tools maps each function to the //atp:tool comments in its doc.
	tools map[*ast.FuncDecl][]*ast.Comment
	// schemas maps a type's name to the //atp:schema comments in its doc.
	schemas map[*ast.Ident][]*ast.Comment
	// constructors maps each function to the //atp:constructor comments in
	// its doc.
	constructors map[*ast.FuncDecl][]*ast.Comment
}

// scanDirectives checks every comment of f: atp directives must be well
// formed and in the right doc comment; near-misses are errors.
func (l *loader) scanDirectives(f *ast.File) fileDirectives {
	fd := fileDirectives{
		tools:        make(map[*ast.FuncDecl][]*ast.Comment),
		schemas:      make(map[*ast.Ident][]*ast.Comment),
		constructors: make(map[*ast.FuncDecl][]*ast.Comment),
	}
	owners := commentOwners(f)
	for _, g := range f.Comments {
		owner := owners[g]
		for _, c := range g.List {
			if strings.HasPrefix(c.Text, "/*") {
				l.checkBlockComment(c)
				continue
			}
			if !looksLikeDirective.MatchString(c.Text) {
				continue
			}
			d, ok := ast.ParseDirective(c.Slash, c.Text)
			if !ok || d.Tool != "atp" || (d.Name != dirTool && d.Name != dirSchema && d.Name != dirConstructor) {
				l.errorAt(c.Slash, "%s", nearMissMessage(c.Text))
				continue
			}
			switch d.Name {
			case dirTool:
				if owner.fn == nil {
					l.errorAt(c.Slash, "%s", misplaced("//atp:tool", "a func or method", owner.what))
					continue
				}
				fd.tools[owner.fn] = append(fd.tools[owner.fn], c)
			case dirSchema:
				if owner.typ == nil {
					l.errorAt(c.Slash, "%s", misplaced("//atp:schema", "a type declaration", owner.what))
					continue
				}
				fd.schemas[owner.typ] = append(fd.schemas[owner.typ], c)
			case dirConstructor:
				if owner.fn == nil {
					l.errorAt(c.Slash, "%s", misplaced("//atp:constructor", "a func that returns the receiver of tool methods", owner.what))
					continue
				}
				fd.constructors[owner.fn] = append(fd.constructors[owner.fn], c)
			}
		}
	}
	return fd
}

func misplaced(directive, where, owner string) string {
	if owner == "" {
		return fmt.Sprintf("%s is not in a doc comment: put it in the doc comment of %s, directly above the declaration with no blank line in between", directive, where)
	}
	return fmt.Sprintf("%s must be in the doc comment of %s, not of %s", directive, where, owner)
}

// nearMissMessage explains why a comment line that looks like an atp
// directive is not one, and what to write instead.
func nearMissMessage(text string) string {
	m := nearMissParts.FindStringSubmatch(text)
	if m == nil {
		return fmt.Sprintf("%q is not a directive: write //atp:tool or //atp:schema", firstWord(text))
	}
	written := m[0]
	name := m[5]
	known := ""
	switch strings.ToLower(name) {
	case dirTool, dirSchema, dirConstructor:
		known = strings.ToLower(name)
	}
	var faults []string
	if m[1] != "" {
		faults = append(faults, "with no space after //")
	}
	if m[3] != "" {
		faults = append(faults, "with no space before the colon")
	}
	if m[4] != "" {
		faults = append(faults, "with no space after the colon")
	}
	if m[2] != "atp" || (known != "" && name != known) {
		faults = append(faults, "in lower case")
	}
	if known != "" {
		return fmt.Sprintf("%q is not a directive: write //atp:%s %s", written, known, strings.Join(faults, ", "))
	}
	guess := didyoumean.Suggest(strings.TrimRight(name, ":,;."), directiveNames)
	for _, d := range directiveNames {
		if guess == "" && strings.HasPrefix(strings.ToLower(name), d) {
			guess = d
		}
	}
	what := fmt.Sprintf("unknown directive %q", written)
	if len(faults) > 0 {
		what = fmt.Sprintf("%q is not a directive", written)
	}
	if guess != "" {
		return fmt.Sprintf("%s: did you mean //atp:%s?", what, guess)
	}
	return what + ": the atp directives are //atp:tool (on a func or method), //atp:constructor (on a func) and //atp:schema (on a type)"
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t"); i > 0 {
		return s[:i]
	}
	return s
}

// checkBlockComment reports atp directives written inside /* */ comments,
// which Go does not treat as directives.
func (l *loader) checkBlockComment(c *ast.Comment) {
	body := c.Text[2:]
	offset := 2
	for line := range strings.SplitSeq(body, "\n") {
		if blockDirective.MatchString(line) {
			indent := len(line) - len(strings.TrimLeft(line, " \t*"))
			l.errorAt(c.Slash+token.Pos(offset+indent), "atp directives must be line comments: write //atp:tool (or //atp:schema, //atp:constructor) on its own line")
		}
		offset += len(line) + 1
	}
}

// toolOptions are the parsed arguments of one //atp:tool directive.
type toolOptions struct {
	name    string
	namePos token.Pos // of the name= argument, when given

	auth, authType, authWith string

	readOnly, destructive, idempotent bool
	timeout                           time.Duration
}

// parseToolDirective parses the arguments of a //atp:tool comment,
// reporting each bad argument at its position. ok is false when there was
// any problem.
func (l *loader) parseToolDirective(c *ast.Comment) (opts toolOptions, ok bool) {
	ok = true
	bad := func(pos token.Pos, format string, args ...any) {
		l.errorAt(pos, format, args...)
		ok = false
	}
	d, _ := ast.ParseDirective(c.Slash, c.Text)
	args, err := d.ParseArgs()
	if err != nil {
		pos := d.ArgsPos
		// ParseArgs names the rest of the line from the bad quote on.
		if _, rest, found := strings.Cut(err.Error(), "//atp:tool: "); found && len(rest) <= len(d.Args) {
			pos = d.ArgsPos + token.Pos(len(d.Args)-len(rest))
		}
		bad(pos, "bad quoting in //atp:tool: a quoted argument must be a complete Go string followed by a space or the end of the line")
		return opts, false
	}

	seen := make(map[string]token.Pos)
	var skipUntil token.Pos // the end of a quoted value that spanned several args
	for _, a := range args {
		if a.Pos < skipUntil {
			continue
		}
		key, val, hasValue := strings.Cut(a.Arg, "=")
		// The value's position is exact for a bare word; for a quoted
		// argument, point at the argument.
		valPos := a.Pos
		bare := false
		if off := int(a.Pos - c.Slash); off < len(c.Text) && c.Text[off] != '"' && c.Text[off] != '`' {
			valPos, bare = a.Pos+token.Pos(len(key)+1), true
		}
		if bare && hasValue && len(val) > 0 && (val[0] == '"' || val[0] == '`') {
			// key="quoted value": ParseArgs splits it at spaces, so take
			// the quoted string from the line.
			rest := c.Text[int(valPos-c.Slash):]
			q, err := strconv.QuotedPrefix(rest)
			if err == nil && (len(q) == len(rest) || rest[len(q)] == ' ' || rest[len(q)] == '\t') {
				val, _ = strconv.Unquote(q)
				skipUntil = valPos + token.Pos(len(q))
			} else {
				bad(valPos, "option %s: the quoted value %s is not a complete Go string", key, firstWord(rest))
				skipUntil = valPos + token.Pos(len(rest))
				continue
			}
		}
		if !isToolOption(key) {
			hint := ""
			if s := didyoumean.Suggest(key, toolOptionKeys); s != "" {
				hint = fmt.Sprintf(": did you mean %s?", s)
			}
			bad(a.Pos, "unknown //atp:tool option %q%s (options: %s)", key, hint, strings.Join(toolOptionKeys, ", "))
			continue
		}
		if first, dup := seen[key]; dup {
			p := l.fset.Position(first)
			bad(a.Pos, "option %s given twice in //atp:tool (first at column %d): keep one", key, p.Column)
			continue
		}
		seen[key] = a.Pos

		switch key {
		case "readonly", "destructive", "idempotent":
			if hasValue {
				bad(a.Pos, "%s is a flag and takes no value: write %s alone", key, key)
				continue
			}
			switch key {
			case "readonly":
				opts.readOnly = true
			case "destructive":
				opts.destructive = true
			case "idempotent":
				opts.idempotent = true
			}
			continue
		}
		if !hasValue || val == "" {
			bad(a.Pos, "option %s needs a value: write %s=%s", key, key, optionPlaceholder(key))
			continue
		}
		switch key {
		case "name":
			if !toolNameRE.MatchString(val) {
				bad(valPos, "invalid tool name %q: use 1 to 64 letters, digits, _ or -, starting with a letter or _", val)
				continue
			}
			opts.name, opts.namePos = val, a.Pos
		case "auth":
			if !authProviderRE.MatchString(val) {
				bad(valPos, "invalid auth provider %q: use letters, digits, _, . or -, as in auth=hubspot", val)
				continue
			}
			opts.auth = val
		case "auth_type":
			if val != "OAuth2" && val != "apiKey" {
				bad(valPos, "invalid auth_type %q: expected OAuth2 or apiKey", val)
				continue
			}
			opts.authType = val
		case "auth_with":
			if val != "access_token" && val != "api_key" {
				bad(valPos, "invalid auth_with %q: expected access_token or api_key", val)
				continue
			}
			opts.authWith = val
		case "timeout":
			dur, err := time.ParseDuration(val)
			if err != nil || dur <= 0 {
				bad(valPos, "invalid timeout %q: expected a positive Go duration such as 30s or 2m", val)
				continue
			}
			opts.timeout = dur
		}
	}
	if opts.auth == "" {
		for _, key := range []string{"auth_type", "auth_with"} {
			if pos, given := seen[key]; given {
				bad(pos, "%s needs auth=<provider> in the same directive", key)
			}
		}
	} else {
		if opts.authType == "" {
			opts.authType = "OAuth2"
		}
		if opts.authWith == "" {
			opts.authWith = "access_token"
		}
	}
	return opts, ok
}

func isToolOption(key string) bool {
	for _, k := range toolOptionKeys {
		if k == key {
			return true
		}
	}
	return false
}

func optionPlaceholder(key string) string {
	switch key {
	case "name":
		return "<tool name>"
	case "auth":
		return "<provider>"
	case "auth_type":
		return "OAuth2|apiKey"
	case "auth_with":
		return "access_token|api_key"
	case "timeout":
		return "<duration, e.g. 30s>"
	}
	return "<value>"
}

// schemaOf checks the //atp:schema comments of one type and returns the
// schema, compacted.
func (l *loader) schemaOf(comments []*ast.Comment, fset *token.FileSet) (string, bool) {
	if len(comments) == 0 {
		return "", true
	}
	if len(comments) > 1 {
		first := fset.Position(comments[0].Slash)
		l.errorf(fset.Position(comments[1].Slash), "second //atp:schema for this type (first at line %d): keep one", first.Line)
		return "", false
	}
	c := comments[0]
	d, _ := ast.ParseDirective(c.Slash, c.Text)
	if d.Args == "" {
		l.errorf(fset.Position(c.Slash), "//atp:schema needs a JSON Schema object on the same line, as in //atp:schema {\"type\": \"string\"}")
		return "", false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(d.Args), &obj); err != nil || obj == nil {
		why := "it is not a JSON object"
		if err != nil && !json.Valid([]byte(d.Args)) {
			why = "it is not valid JSON: " + err.Error()
		}
		l.errorf(fset.Position(d.ArgsPos), "//atp:schema must be followed by a JSON Schema object; %s", why)
		return "", false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(d.Args)); err != nil {
		return "", false
	}
	return buf.String(), true
}

// schemaComments finds the //atp:schema lines of a doc comment (for types of
// dependencies, whose files are not scanned).
func schemaComments(doc *ast.CommentGroup) []*ast.Comment {
	if doc == nil {
		return nil
	}
	var out []*ast.Comment
	for _, c := range doc.List {
		if d, ok := ast.ParseDirective(c.Slash, c.Text); ok && d.Tool == "atp" && d.Name == dirSchema {
			out = append(out, c)
		}
	}
	return out
}
