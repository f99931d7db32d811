package fleet

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var variableSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "default"}, {Name: "type"}, {Name: "description"},
}}

type variableDecl struct {
	name    string
	block   *hcl.Block
	ty      cty.Type
	deflt   hcl.Expression // nil without a default
	depends []string       // var.* names the default refers to
}

// decodeVariables evaluates every variable block into the var object. A variable's value comes from,
// in order: Options.Vars, the environment variable DROVER_VAR_<name>, its default. Defaults may refer to
// other variables; they are evaluated in dependency order and a cycle is an error at each member.
func (d *decoder) decodeVariables(blocks hcl.Blocks, opts Options) map[string]cty.Value {
	decls := map[string]*variableDecl{}
	var order []string
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := decls[name]; dup {
			d.errorf(b.LabelRanges[0], "Duplicate variable", "A variable named %q was already declared at %s.", name, pos(prev.block.DefRange))
			continue
		}
		if !validName(name) {
			d.errorf(b.LabelRanges[0], "Invalid variable name", "Variable name %q must start with a letter and contain only letters, digits, _ and -.", name)
		}
		c := d.content(b.Body, variableSchema)
		decl := &variableDecl{name: name, block: b, ty: cty.DynamicPseudoType}
		if attr, ok := c.Attributes["type"]; ok {
			ty, diags := typeexpr.TypeConstraint(attr.Expr)
			d.diags = append(d.diags, diags...)
			if !diags.HasErrors() {
				decl.ty = ty
			}
		}
		if attr, ok := c.Attributes["default"]; ok {
			decl.deflt = attr.Expr
			for _, tr := range attr.Expr.Variables() {
				if tr.RootName() == "var" && len(tr) > 1 {
					if step, ok := tr[1].(hcl.TraverseAttr); ok {
						decl.depends = append(decl.depends, step.Name)
					}
				}
			}
		}
		decls[name] = decl
		order = append(order, name)
	}

	values := map[string]cty.Value{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(name string, path []string)
	visit = func(name string, path []string) {
		decl := decls[name]
		if decl == nil || state[name] == 2 {
			return
		}
		if state[name] == 1 {
			cycle := append(path[indexOf(path, name):], name)
			d.errorf(decl.deflt.Range(), "Cycle in variables",
				"The default of var.%s depends on itself: %s.", name, "var."+strings.Join(cycle, " -> var."))
			values[name] = cty.DynamicVal // unknown, so the rest of the cycle is not reported twice
			return
		}
		state[name] = 1
		for _, dep := range decl.depends {
			visit(dep, append(path, name))
		}
		state[name] = 2
		values[name] = d.variableValue(decl, values, opts)
	}
	for _, name := range order {
		visit(name, nil)
	}
	for _, name := range sortedKeys(opts.Vars) {
		if decls[name] == nil {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
				Detail: fmt.Sprintf("--var %s sets a variable the fleet does not declare (declared: %s).%s Declare it with a variable %q block, or drop the --var.",
					name, declaredList(order), didYouMean(name, order), name)})
		}
	}
	return values
}

func declaredList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	return quoteList(sorted)
}

func (d *decoder) variableValue(decl *variableDecl, known map[string]cty.Value, opts Options) cty.Value {
	raw, fromOutside := opts.Vars[decl.name]
	src := "--var " + decl.name
	if !fromOutside {
		raw, fromOutside = opts.lookupEnv("DROVER_VAR_" + decl.name)
		src = "DROVER_VAR_" + decl.name
	}
	if fromOutside {
		v, err := convert.Convert(cty.StringVal(raw), decl.ty)
		if err == nil && hugeNumberInside(v) {
			err = errors.New("numbers lie between about -1e300 and 1e300")
		}
		if err != nil {
			d.errorf(decl.block.DefRange, "Invalid value for variable", "The value of %s (%.100q) is not a valid %s: %s.", src, raw, decl.ty.FriendlyName(), err)
			return cty.DynamicVal
		}
		return v
	}
	if decl.deflt == nil {
		d.errorf(decl.block.DefRange, "No value for required variable",
			"The variable %q has no default; set it with --var %s=VALUE or the environment variable DROVER_VAR_%s.", decl.name, decl.name, decl.name)
		return cty.DynamicVal
	}
	ctx := d.ctx.NewChild()
	ctx.Variables = map[string]cty.Value{"var": objectOf(known)}
	v, diags := decl.deflt.Value(ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.DynamicVal
	}
	if hugeNumberInside(v) {
		d.errorf(decl.deflt.Range(), "Number too large", "The default of %q holds a number beyond about 1e300.", decl.name)
		return cty.DynamicVal
	}
	cv, err := convert.Convert(v, decl.ty)
	if err != nil {
		d.errorf(decl.deflt.Range(), "Invalid default value for variable", "The default of %q is not a valid %s: %s.", decl.name, decl.ty.FriendlyName(), err)
		return cty.DynamicVal
	}
	return cv
}

func objectOf(values map[string]cty.Value) cty.Value {
	if len(values) == 0 {
		return cty.EmptyObjectVal
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	m := make(map[string]cty.Value, len(values))
	for _, n := range names {
		m[n] = values[n]
	}
	return cty.ObjectVal(m)
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return 0
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}
