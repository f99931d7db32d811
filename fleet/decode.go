package fleet

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder evaluates attributes into Go values and collects every diagnostic instead of stopping at the
// first, so a user sees all problems of a fleet file in one run.
type decoder struct {
	ctx    *hcl.EvalContext
	diags  hcl.Diagnostics
	deploy DeployCatalog // Options.Deploy
	// declaredBroken holds "kind/name" of provider blocks that are declared but failed to decode:
	// a reference to one is not "undeclared", and its own diagnostic says what is wrong.
	declaredBroken map[string]bool
	// files are the sources diagnostics quote, by the name they are shown under: the fleet file
	// (the parser's), and other files the fleet names whose content is checked (Compose files).
	files map[string]*hcl.File
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagError, rng, summary, fmt.Sprintf(format, args...))
}

// warnf records a problem that does not make the fleet invalid.
func (d *decoder) warnf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagWarning, rng, summary, fmt.Sprintf(format, args...))
}

func (d *decoder) add(sev hcl.DiagnosticSeverity, rng hcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: &rng})
}

// content decodes a body against a schema; unknown attributes and blocks become diagnostics.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	for _, a := range schema.Attributes {
		attr := c.Attributes[a.Name]
		if !a.Required || attr == nil {
			continue
		}
		// null reads as "not set" everywhere else; for a required attribute it would silently drop
		// what the attribute belongs to. Evaluation problems are reported where the value is read.
		if v, diags := attr.Expr.Value(d.ctx); !diags.HasErrors() && v.IsNull() {
			d.errorf(attr.Expr.Range(), "Null value", "%q is required and must not be null.", a.Name)
		}
	}
	return c
}

// value evaluates an attribute and converts it to a type. ok is false when the attribute is absent or
// broken (broken ones have been reported).
func (d *decoder) value(attr *hcl.Attribute, ty cty.Type, what string) (cty.Value, bool) {
	if attr == nil {
		return cty.NilVal, false
	}
	v, diags := attr.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s required (%s), got %s.", attr.Name, ty.FriendlyName(), what, v.Type().FriendlyName())
		return cty.NilVal, false
	}
	if !cv.IsWhollyKnown() {
		d.errorf(attr.Expr.Range(), "Unknown value", "The value of %q must be known when the fleet file is read.", attr.Name)
		return cty.NilVal, false
	}
	if nullInside(cv) {
		d.errorf(attr.Expr.Range(), "Null in a value", "%q must be %s, with no null in it.", attr.Name, what)
		return cty.NilVal, false
	}
	return cv, true
}

func (d *decoder) str(attrs hcl.Attributes, name string, dst *string) bool {
	v, ok := d.value(attrs[name], cty.String, "a string")
	if ok {
		*dst = v.AsString()
	}
	return ok
}

func (d *decoder) boolean(attrs hcl.Attributes, name string, dst *bool) bool {
	v, ok := d.value(attrs[name], cty.Bool, "true or false")
	if ok {
		*dst = v.True()
	}
	return ok
}

// integer decodes a whole number within [lo, hi].
func (d *decoder) integer(attrs hcl.Attributes, name string, lo, hi int, dst *int) bool {
	attr := attrs[name]
	v, ok := d.value(attr, cty.Number, "a whole number")
	if !ok {
		return false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		d.errorf(attr.Expr.Range(), "Invalid number", "%q must be a whole number, got %s.", name, describeNumber(bf))
		return false
	}
	i, acc := bf.Int64()
	if acc != big.Exact || i < int64(lo) || i > int64(hi) {
		d.errorf(attr.Expr.Range(), "Value out of range", "%q must be between %d and %d, got %s.", name, lo, hi, describeNumber(bf))
		return false
	}
	*dst = int(i)
	return true
}

func (d *decoder) strings(attrs hcl.Attributes, name string, dst *[]string) bool {
	v, ok := d.value(attrs[name], cty.List(cty.String), "a list of strings")
	if !ok {
		return false
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	*dst = out
	return true
}

func (d *decoder) stringMap(attrs hcl.Attributes, name string, dst *map[string]string) bool {
	v, ok := d.value(attrs[name], cty.Map(cty.String), "a map of strings")
	if !ok {
		return false
	}
	out := map[string]string{}
	for k, e := range v.AsValueMap() {
		out[k] = e.AsString()
	}
	*dst = out
	return true
}

// duration decodes a Go duration string such as "90s" or "15m".
func (d *decoder) duration(attrs hcl.Attributes, name string, dst *time.Duration) bool {
	var s string
	if !d.str(attrs, name, &s) {
		return false
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		d.errorf(attrs[name].Expr.Range(), "Invalid duration",
			"%q must be a duration such as \"30s\", \"5m\" or \"1h30m\", got %q.", name, s)
		return false
	}
	*dst = v
	return true
}

// oneOf checks that a decoded string is one of the accepted values.
func (d *decoder) oneOf(attrs hcl.Attributes, name, got string, accepted ...string) bool {
	for _, a := range accepted {
		if got == a {
			return true
		}
	}
	d.errorf(attrs[name].Expr.Range(), "Invalid value",
		"%q must be one of %s, got %q.%s", name, quoteList(accepted), got, didYouMean(got, accepted))
	return false
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// didYouMean suggests the closest candidate, the way HCL does for attribute names.
func didYouMean(got string, candidates []string) string {
	if len(got) > maxSuggest {
		return "" // nothing that long is a typo of a name, and comparing it costs quadratic time
	}
	best, bestDist := "", 3
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if dist := levenshtein.Distance(got, c, nil); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// nullInside reports whether a value is null or holds a null at any depth. A null element would
// panic where a string or number is read out of the collection.
func nullInside(v cty.Value) bool {
	if v.IsNull() {
		return true
	}
	if !v.IsKnown() {
		return false
	}
	ty := v.Type()
	if ty.IsListType() || ty.IsSetType() || ty.IsMapType() || ty.IsTupleType() || ty.IsObjectType() {
		for it := v.ElementIterator(); it.Next(); {
			if _, e := it.Element(); nullInside(e) {
				return true
			}
		}
	}
	return false
}
