package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestHoistGlobalFlags(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"drover validate --fleet x.hcl", "drover --fleet x.hcl validate"},
		{"drover --fleet x.hcl validate", "drover --fleet x.hcl validate"},
		{"drover rollout start web -o json --state=/s", "drover -o json --state=/s rollout start web"},
		{"drover build --jobs 3 web --var a=b", "drover --var a=b build --jobs 3 web"},
		{"drover images prune --keep 3", "drover images prune --keep 3"},
		{"drover build web -- --fleet x", "drover build web -- --fleet x"},
		{"drover", "drover"},
	} {
		got := strings.Join(hoistGlobalFlags(strings.Fields(tc.in), valueFlags(newApp(nil, nil, nil).Flags)), " ")
		if got != tc.want {
			t.Errorf("hoist(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The global flags work after the command, the way people type them.
func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"drover", "validate", "--fleet", "../../examples/homelab/drover.hcl", "--output", "json"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), `"valid"`) && !strings.Contains(out.String(), `"ok"`) {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !slices.Contains([]byte{'{'}, bytes.TrimSpace(out.Bytes())[0]) {
		t.Errorf("--output json after the command printed %q", out.String())
	}
}
