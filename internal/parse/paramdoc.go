package parse

import (
	"go/ast"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/atpgo/atp/internal/didyoumean"
)

// paramDoc is what a tool's doc comment says about one plain parameter.
type paramDoc struct {
	text string
	kvs  []tagKV // the backquoted constraints, parsed
	loc  tagLocator
	line int // of the parameter's line, for "documented twice"
}

var (
	// paramLineRE matches "name: text", "- name: text" and "* name: text".
	paramLineRE    = regexp.MustCompile(`^(\s*)(?:[-*]\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s+(.*))?$`)
	paramHeadingRE = regexp.MustCompile(`^\s*(?i:parameters|params)\s*:\s*$`)
	// trailingTagRE matches constraints written as a struct tag in
	// backquotes at the end of a parameter's description.
	trailingTagRE = regexp.MustCompile("^(.*?)\\s*`([A-Za-z_][A-Za-z0-9_]*:\"[^`]*)`\\s*$")
)

// docLine is one line of a // comment, without the // and one space.
type docLine struct {
	c    *ast.Comment
	text string
	lead int // bytes of c.Text before text
}

// paramDocs splits a tool's doc comment into the tool's description and the
// descriptions of its plain parameters (byName maps Go and JSON names to
// indexes; goNames are the parameters' Go names, in order). See the package
// documentation for the convention. A list item, or a line after a
// "Parameters:" heading, whose name is a likely typo of a parameter's is an
// error.
func (pl *pkgLoader) paramDocs(doc *ast.CommentGroup, byName map[string]int, goNames []string) (string, map[int]*paramDoc) {
	docs := make(map[int]*paramDoc)
	if doc == nil {
		return "", docs
	}
	names := slices.Sorted(maps.Keys(byName))
	removed := make([]bool, len(doc.List))
	var headings []int

	type block struct {
		idx    int
		indent int
		parts  []string
		last   docLine
	}
	var cur *block
	flush := func() {
		if cur == nil {
			return
		}
		pd := docs[cur.idx]
		text := strings.Join(cur.parts, " ")
		if m := trailingTagRE.FindStringSubmatch(text); m != nil {
			text = m[1]
			tag := m[2]
			base := pl.fset.Position(cur.last.c.Slash)
			if i := strings.LastIndex(cur.last.text, "`"+tag+"`"); i >= 0 {
				shift := cur.last.lead + i + 1
				base.Column += shift
				base.Offset += shift
			}
			pd.loc = tagLocator{base: base, exact: true}
			kvs, err := parseStructTag(tag)
			switch {
			case err != nil:
				pl.errorf(base, "parameter doc: %v", err)
			default:
				for _, kv := range kvs {
					if kv.key != "jsonschema" {
						pl.errorf(pd.loc.keyAt(kv), "parameter doc: only jsonschema:\"...\" constraints can follow a parameter's description, not %s", kv.key)
						kvs = nil
						break
					}
				}
			}
			pd.kvs = kvs
		}
		pd.text = strings.TrimSpace(text)
		cur = nil
	}

	for i, c := range doc.List {
		if !strings.HasPrefix(c.Text, "//") {
			flush()
			continue
		}
		line := docLine{c: c, text: c.Text[2:], lead: 2}
		if strings.HasPrefix(line.text, " ") {
			line.text, line.lead = line.text[1:], 3
		} else if _, isDir := ast.ParseDirective(c.Slash, c.Text); isDir {
			continue // directives are not part of the text
		}
		if m := paramLineRE.FindStringSubmatchIndex(line.text); m != nil {
			name := line.text[m[4]:m[5]]
			idx, isParam := byName[name]
			listItem := strings.TrimSpace(line.text[m[2]:m[4]]) != ""
			if !isParam && (listItem || len(headings) > 0) {
				// A near miss in the parameters' list would silently stay
				// in the description the model reads.
				if guess := didyoumean.Suggest(name, names); guess != "" {
					p := pl.fset.Position(c.Slash)
					p.Column += line.lead + m[4]
					p.Offset += line.lead + m[4]
					pl.errorf(p, "%q is not a parameter: did you mean %s? (parameters: %s)", name, guess, strings.Join(goNames, ", "))
				}
			}
			if isParam {
				text := ""
				if m[6] >= 0 {
					text = line.text[m[6]:m[7]]
				}
				flush()
				removed[i] = true
				p := pl.fset.Position(c.Slash)
				if first := docs[idx]; first != nil {
					pl.errorf(p, "parameter %s is documented twice (first at line %d): keep one line", name, first.line)
					continue
				}
				docs[idx] = &paramDoc{line: p.Line}
				cur = &block{idx: idx, indent: m[3] - m[2], parts: []string{text}, last: line}
				continue
			}
		}
		trimmed := strings.TrimLeft(line.text, " \t")
		if cur != nil && trimmed != "" && len(line.text)-len(trimmed) > cur.indent {
			removed[i] = true
			cur.parts = append(cur.parts, strings.TrimSpace(trimmed))
			cur.last = line
			continue
		}
		flush()
		if paramHeadingRE.MatchString(line.text) {
			headings = append(headings, i)
		}
	}
	flush()

	// A heading goes with the parameter lines that follow it.
	for _, h := range headings {
		for j := h + 1; j < len(doc.List); j++ {
			if t := strings.TrimSpace(strings.TrimPrefix(doc.List[j].Text, "//")); t == "" {
				continue
			}
			removed[h] = removed[j]
			break
		}
	}
	var kept []*ast.Comment
	for i, c := range doc.List {
		if !removed[i] {
			kept = append(kept, c)
		}
	}
	return strings.TrimSpace((&ast.CommentGroup{List: kept}).Text()), docs
}
