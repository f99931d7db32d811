package fleet

import (
	"fmt"
	"os"
	"path/filepath"

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
		"format":     stdlib.FormatFunc,
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
			name := args[0].AsString()
			if v, ok := lookupEnv(name); ok {
				return cty.StringVal(v), nil
			}
			switch len(args) {
			case 1:
				return cty.NilVal, fmt.Errorf("environment variable %s is not set; export it or give a default: env(%q, \"...\")", name, name)
			case 2:
				return args[1], nil
			default:
				return cty.NilVal, fmt.Errorf("env takes a name and at most one default, got %d arguments", len(args))
			}
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
			b, err := os.ReadFile(p)
			if err != nil {
				return cty.NilVal, fmt.Errorf("cannot read %s (paths are relative to the fleet file's directory): %w", p, err)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}
