package esfake

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// matches evaluates a query (nil is match_all) against a document.
func matches(q map[string]any, d *doc, ix *index) (bool, *esError) {
	if len(q) == 0 {
		return true, nil
	}
	if len(q) != 1 {
		return false, errorf(400, "parsing_exception", "[query] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
	}
	for kind, body := range q {
		switch kind {
		case "match_all":
			return true, nil
		case "match_none":
			return false, nil
		case "term", "match", "match_phrase":
			field, want, e := fieldValue(kind, body, "value", "query")
			if e != nil {
				return false, e
			}
			for _, v := range lookup(d, field) {
				if compareValues(v, want, ix.fieldType(field)) == 0 {
					return true, nil
				}
			}
			return false, nil
		case "terms":
			m, ok := body.(map[string]any)
			if !ok || len(m) != 1 {
				return false, errorf(400, "parsing_exception", "[terms] query malformed")
			}
			for field, list := range m {
				wants, ok := list.([]any)
				if !ok {
					return false, errorf(400, "parsing_exception", "[terms] query does not support [%s]", field)
				}
				for _, v := range lookup(d, field) {
					for _, w := range wants {
						if compareValues(v, w, ix.fieldType(field)) == 0 {
							return true, nil
						}
					}
				}
			}
			return false, nil
		case "ids":
			m, _ := body.(map[string]any)
			vals, _ := m["values"].([]any)
			for _, v := range vals {
				if fmt.Sprint(v) == d.id {
					return true, nil
				}
			}
			return false, nil
		case "exists":
			m, _ := body.(map[string]any)
			f, _ := m["field"].(string)
			return len(lookup(d, f)) > 0, nil
		case "range":
			return matchRange(body, d, ix)
		case "bool":
			return matchBool(body, d, ix)
		default:
			return false, errorf(400, "parsing_exception", "unknown query [%s]", kind)
		}
	}
	return false, nil
}

// fieldValue reads {"field": v} or {"field": {"value": v}}.
func fieldValue(kind string, body any, keys ...string) (string, any, *esError) {
	m, ok := body.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, errorf(400, "parsing_exception", "[%s] query malformed, no start_object after query name", kind)
	}
	for field, v := range m {
		if inner, ok := v.(map[string]any); ok {
			for _, k := range keys {
				if x, ok := inner[k]; ok {
					return field, x, nil
				}
			}
			return "", nil, errorf(400, "parsing_exception", "[%s] query does not support [%s]", kind, field)
		}
		return field, v, nil
	}
	return "", nil, nil
}

func matchRange(body any, d *doc, ix *index) (bool, *esError) {
	m, ok := body.(map[string]any)
	if !ok || len(m) != 1 {
		return false, errorf(400, "parsing_exception", "[range] query malformed")
	}
	for field, spec := range m {
		p, ok := spec.(map[string]any)
		if !ok {
			return false, errorf(400, "parsing_exception", "[range] query malformed, no start_object after field name")
		}
		type bound struct {
			v    any
			incl bool
		}
		var lo, hi *bound
		inclLower, inclUpper := true, true
		if v, ok := p["include_lower"].(bool); ok {
			inclLower = v
		}
		if v, ok := p["include_upper"].(bool); ok {
			inclUpper = v
		}
		for k, v := range p {
			if v == nil {
				continue
			}
			switch k {
			case "gte":
				lo = &bound{v, true}
			case "gt":
				lo = &bound{v, false}
			case "lte":
				hi = &bound{v, true}
			case "lt":
				hi = &bound{v, false}
			case "include_lower", "include_upper", "format", "time_zone", "boost", "relation":
			default:
				if k != "from" && k != "to" {
					return false, errorf(400, "parsing_exception", "[range] query does not support [%s]", k)
				}
			}
		}
		// The from/to form, as olivere's RangeQuery sends it.
		if v, ok := p["from"]; ok && v != nil && lo == nil {
			lo = &bound{v, inclLower}
		}
		if v, ok := p["to"]; ok && v != nil && hi == nil {
			hi = &bound{v, inclUpper}
		}
		typ := ix.fieldType(field)
		for _, v := range lookup(d, field) {
			if lo != nil {
				c := compareValues(v, lo.v, typ)
				if c < 0 || (c == 0 && !lo.incl) {
					continue
				}
			}
			if hi != nil {
				c := compareValues(v, hi.v, typ)
				if c > 0 || (c == 0 && !hi.incl) {
					continue
				}
			}
			return true, nil
		}
		return false, nil
	}
	return false, nil
}

func clauses(v any) []map[string]any {
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}
	case []any:
		var out []map[string]any
		for _, c := range x {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func matchBool(body any, d *doc, ix *index) (bool, *esError) {
	m, ok := body.(map[string]any)
	if !ok {
		return false, errorf(400, "parsing_exception", "[bool] query malformed")
	}
	for k := range m {
		switch k {
		case "must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name", "adjust_pure_negative":
		default:
			return false, errorf(400, "parsing_exception", "[bool] query does not support [%s]", k)
		}
	}
	for _, key := range []string{"must", "filter"} {
		for _, c := range clauses(m[key]) {
			ok, e := matches(c, d, ix)
			if e != nil || !ok {
				return false, e
			}
		}
	}
	for _, c := range clauses(m["must_not"]) {
		ok, e := matches(c, d, ix)
		if e != nil || ok {
			return false, e
		}
	}
	should := clauses(m["should"])
	if len(should) == 0 {
		return true, nil
	}
	min := 0
	if len(clauses(m["must"]))+len(clauses(m["filter"])) == 0 {
		min = 1
	}
	if v, ok := m["minimum_should_match"]; ok {
		min, _ = strconv.Atoi(strings.TrimSpace(fmt.Sprint(v)))
	}
	n := 0
	for _, c := range should {
		ok, e := matches(c, d, ix)
		if e != nil {
			return false, e
		}
		if ok {
			n++
		}
	}
	return n >= min, nil
}

// lookup returns a field's values by dotted path; arrays give several.
func lookup(d *doc, field string) []any {
	switch field {
	case "_id":
		return []any{d.id}
	case "_seq_no":
		return []any{json.Number(strconv.FormatInt(d.seqNo, 10))}
	}
	var cur []any = []any{any(d.parsed)}
	for _, part := range strings.Split(field, ".") {
		var next []any
		for _, c := range cur {
			m, ok := c.(map[string]any)
			if !ok {
				continue
			}
			v, ok := m[part]
			if !ok || v == nil {
				continue
			}
			if arr, ok := v.([]any); ok {
				next = append(next, arr...)
			} else {
				next = append(next, v)
			}
		}
		cur = next
	}
	return cur
}

// fieldType is the mapped type of a dotted field ("" when unmapped).
func (ix *index) fieldType(field string) string {
	props, _ := ix.mappings["properties"].(map[string]any)
	parts := strings.Split(field, ".")
	for i, p := range parts {
		f, ok := props[p].(map[string]any)
		if !ok {
			return ""
		}
		if i == len(parts)-1 {
			t, _ := f["type"].(string)
			return t
		}
		props, _ = f["properties"].(map[string]any)
	}
	return ""
}

// compareValues orders two JSON values: numbers numerically, dates (by
// mapping, or strings that both parse as RFC 3339) by time, other strings
// bytewise; it returns 2 when they are incomparable.
func compareValues(a, b any, typ string) int {
	if typ == "date" {
		ta, oka := toTime(a)
		tb, okb := toTime(b)
		if oka && okb {
			return ta.Compare(tb)
		}
	}
	fa, oka := toFloat(a)
	fb, okb := toFloat(b)
	if oka && okb {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	sa, oka := a.(string)
	sb, okb := b.(string)
	if oka && okb {
		if ta, err := time.Parse(time.RFC3339Nano, sa); err == nil {
			if tb, err := time.Parse(time.RFC3339Nano, sb); err == nil {
				return ta.Compare(tb)
			}
		}
		return strings.Compare(sa, sb)
	}
	ba, oka := a.(bool)
	bb, okb := b.(bool)
	if oka && okb {
		switch {
		case ba == bb:
			return 0
		case !ba:
			return -1
		}
		return 1
	}
	return 2
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func toTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err == nil {
			return t, true
		}
		if ms, err := strconv.ParseInt(x, 10, 64); err == nil {
			return time.UnixMilli(ms), true
		}
	default:
		if f, ok := toFloat(v); ok {
			return time.UnixMilli(int64(f)), true
		}
	}
	return time.Time{}, false
}

type sortKey struct {
	field string
	desc  bool
}

// parseSort reads "field", {"field":"desc"} and {"field":{"order":"desc"}}.
func parseSort(spec []any) ([]sortKey, *esError) {
	var keys []sortKey
	for _, s := range spec {
		switch x := s.(type) {
		case string:
			keys = append(keys, sortKey{field: x, desc: x == "_score"})
		case map[string]any:
			for field, o := range x {
				k := sortKey{field: field}
				switch ov := o.(type) {
				case string:
					k.desc = ov == "desc"
				case map[string]any:
					order, _ := ov["order"].(string)
					k.desc = order == "desc"
				}
				keys = append(keys, k)
			}
		default:
			return nil, errorf(400, "parsing_exception", "malformed sort")
		}
	}
	return keys, nil
}

// sortValue is a hit's value for a sort key, as Elasticsearch returns it
// in "sort": dates as epoch milliseconds, missing values as nil.
func sortValue(h hit, k sortKey) any {
	switch k.field {
	case "_doc":
		return json.Number(strconv.FormatInt(h.doc.ord, 10))
	case "_score":
		return json.Number("1")
	case "_index":
		return h.index.name
	}
	vals := lookup(h.doc, k.field)
	if len(vals) == 0 {
		return nil
	}
	v := vals[0]
	if len(vals) > 1 { // Elasticsearch sorts by the min (asc) or max (desc)
		sort.SliceStable(vals, func(i, j int) bool { return compareValues(vals[i], vals[j], "") < 0 })
		v = vals[0]
		if k.desc {
			v = vals[len(vals)-1]
		}
	}
	if h.index.fieldType(k.field) == "date" {
		if t, ok := toTime(v); ok {
			return json.Number(strconv.FormatInt(t.UnixMilli(), 10))
		}
	}
	return v
}

// compareHits orders two hits by their sort values; missing values come
// last in either order, as in Elasticsearch.
func compareHits(a, b hit, keys []sortKey) int {
	for i, k := range keys {
		va, vb := a.sort[i], b.sort[i]
		switch {
		case va == nil && vb == nil:
			continue
		case va == nil:
			return 1
		case vb == nil:
			return -1
		}
		c := compareValues(va, vb, "")
		if c == 2 {
			c = strings.Compare(fmt.Sprint(va), fmt.Sprint(vb))
		}
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}
