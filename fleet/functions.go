package fleet

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions are the functions a fleet file may call. env and file read the outside world, so they are
// built per load: env through the injected lookup (tests pass their own), file relative to the fleet
// file's directory.
func functions(dir string, lookupEnv func(string) (string, bool)) map[string]function.Function {
	return map[string]function.Function{
		"env":        envFunc(lookupEnv),
		"file":       fileFunc(dir),
		"upper":      stdlib.UpperFunc,
		"lower":      stdlib.LowerFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"format":     boundedFormat,
		"join":       stdlib.JoinFunc,
		"split":      stdlib.SplitFunc,
		"concat":     stdlib.ConcatFunc,
		"length":     stdlib.LengthFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"replace":    stdlib.ReplaceFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
	}
}

// envFunc is env(NAME) or env(NAME, DEFAULT). Without a default an unset variable is an error, so a
// forgotten export fails at validate time instead of baking an empty value.
func envFunc(lookupEnv func(string) (string, bool)) function.Function {
	return function.New(&function.Spec{
		Params:   []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam: &function.Parameter{Name: "default", Type: cty.String},
		Type:     function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, fmt.Errorf("env takes a name and at most one default, got %d arguments", len(args))
			}
			name := args[0].AsString()
			if v, ok := lookupEnv(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 1 {
				return cty.NilVal, fmt.Errorf("environment variable %s is not set; export it or give a default: env(%q, \"...\")", name, name)
			}
			return args[1], nil
		},
	})
}

// fileFunc is file(PATH): the content of a file, relative to the fleet file's directory.
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := readRegularFile(p, MaxReadFileSize)
			if errors.Is(err, errNotRegular) {
				return cty.NilVal, fmt.Errorf("cannot read %s: file() reads regular files only: %w", args[0].AsString(), err)
			}
			if err != nil {
				return cty.NilVal, fmt.Errorf("cannot read %s (paths are relative to the fleet file's directory): %w", p, err)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

// widePattern finds a format verb's width or precision of five digits or more.
var widePattern = regexp.MustCompile(`%[-+# 0]*(\d{5,}|\d*\.\d{5,})`)

// boundedFormat is stdlib's format without widths or precisions of 10000 and more, which would make
// one call allocate gigabytes.
var boundedFormat = function.New(&function.Spec{
	Params:   stdlib.FormatFunc.Params(),
	VarParam: stdlib.FormatFunc.VarParam(),
	Type:     function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if f := args[0]; f.IsKnown() && !f.IsNull() && widePattern.MatchString(f.AsString()) {
			return cty.NilVal, function.NewArgErrorf(0, "widths and precisions in a format are below 10000")
		}
		return stdlib.FormatFunc.Call(args)
	},
})
