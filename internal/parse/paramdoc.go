package parse

import (
	"go/ast"
	"regexp"
	"strings"
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
// indexes). See the package documentation for the convention.
func (pl *pkgLoader) paramDocs(doc *ast.CommentGroup, byName map[string]int) (string, map[int]*paramDoc) {
	docs := make(map[int]*paramDoc)
	if doc == nil {
		return "", docs
	}
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
		if m := paramLineRE.FindStringSubmatch(line.text); m != nil {
			if idx, isParam := byName[m[2]]; isParam {
				flush()
				removed[i] = true
				p := pl.fset.Position(c.Slash)
				if first := docs[idx]; first != nil {
					pl.errorf(p, "parameter %s is documented twice (first at line %d): keep one line", m[2], first.line)
					continue
				}
				docs[idx] = &paramDoc{line: p.Line}
				cur = &block{idx: idx, indent: len(m[1]), parts: []string{m[3]}, last: line}
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
