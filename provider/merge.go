package provider

import "strconv"

// mergeAllOf folds o's allOf branches into o. It reports false, leaving o
// unchanged, when the branches conflict or one is recursive.
func (c *converter) mergeAllOf(o *object) (bool, error) {
	merged := clone(o).(*object)
	branches := merged.vals["allOf"].([]any)
	merged.del("allOf")
	if b, ok := branches[0].(*object); ok && len(branches) == 1 {
		// allOf with one branch is that branch: its keywords, a $ref
		// included (recursive or not), join o's.
		for _, k := range b.keys {
			if !mergeKeyword(merged, k, b.vals[k]) {
				return false, nil
			}
		}
		o.keys, o.vals = merged.keys, merged.vals
		return true, nil
	}
	ok, err := c.mergeInto(merged, branches, o.src)
	if err != nil || !ok {
		return false, err
	}
	o.keys, o.vals = merged.keys, merged.vals
	return true, nil
}

func (c *converter) mergeInto(m *object, branches []any, ptr string) (bool, error) {
	for i, b := range branches {
		bptr := ptr + "/allOf/" + strconv.Itoa(i)
		switch t := b.(type) {
		case bool:
			if !t {
				return false, nil
			}
			continue
		case *object:
			bo := clone(t).(*object)
			if r, ok := bo.vals["$ref"].(string); ok {
				tptr, target, err := c.resolve(r)
				if err != nil {
					return false, schemaError(bptr, "$ref: %v", err)
				}
				if c.cyclic[tptr] || c.inlining[tptr] > 0 {
					return false, nil
				}
				tobj, ok := target.(*object)
				if !ok {
					return false, nil
				}
				nb, err := c.cloneTarget(tobj, bptr)
				if err != nil {
					return false, err
				}
				for _, k := range bo.keys {
					if k != "$ref" {
						nb.set(k, bo.vals[k])
					}
				}
				bo = nb
			}
			if inner, ok := bo.vals["allOf"].([]any); ok {
				bo.del("allOf")
				if ok, err := c.mergeInto(bo, inner, bptr); err != nil || !ok {
					return ok, err
				}
			}
			for _, k := range bo.keys {
				if !mergeKeyword(m, k, bo.vals[k]) {
					return false, nil
				}
			}
		default:
			return false, schemaError(bptr, "expected a schema (an object or a boolean), got %s", kindOf(b))
		}
	}
	return true, nil
}

func mergeKeyword(m *object, k string, v any) bool {
	cur, ok := m.vals[k]
	if !ok {
		m.set(k, clone(v))
		return true
	}
	switch k {
	case "properties":
		cp, ok1 := cur.(*object)
		vp, ok2 := v.(*object)
		if !ok1 || !ok2 {
			return false
		}
		for _, name := range vp.keys {
			if x, ok := cp.vals[name]; ok {
				if !equalJSON(x, vp.vals[name]) {
					return false
				}
				continue
			}
			cp.set(name, clone(vp.vals[name]))
		}
		return true
	case "required":
		cr, ok1 := stringList(cur)
		vr, ok2 := stringList(v)
		if !ok1 || !ok2 {
			return false
		}
		for _, r := range vr {
			if !contains(cr, r) {
				cr = append(cr, r)
			}
		}
		m.vals[k] = anyList(cr)
		return true
	case "description", "title", "$comment", "examples", "default", "deprecated":
		return true // annotations: the outer (first) one wins
	case "type":
		if equalJSON(cur, v) {
			return true
		}
		if (cur == "integer" && v == "number") || (cur == "number" && v == "integer") {
			m.vals[k] = "integer"
			return true
		}
		return false
	}
	return equalJSON(cur, v)
}
