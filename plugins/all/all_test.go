package all

import (
	"os"
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestEveryConfigDecodes makes sure each registered provider hands the fleet decoder a pointer to a
// struct that gohcl can decode a block into, and that Types lists it.
func TestEveryConfigDecodes(t *testing.T) {
	r := New(func(string) (string, bool) { return "", false })
	seen := map[string]bool{}
	for _, e := range r.Entries() {
		key := e.Kind + "/" + e.Type
		if seen[key] {
			t.Errorf("%s registered twice", key)
		}
		seen[key] = true
		cfg, known, err := r.NewConfig(e.Kind, e.Type)
		if !known || err != nil {
			t.Fatalf("%s: known=%v err=%v", key, known, err)
		}
		if v := reflect.ValueOf(cfg); v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			t.Errorf("%s: config is %T, want a pointer to a struct", key, cfg)
			continue
		}
		// An empty body must decode without a panic; missing required attributes are diagnostics.
		body := &hclsyntax.Body{SrcRange: hcl.Range{Filename: "x.hcl"}}
		_ = gohcl.DecodeBody(body, nil, cfg)
		found := false
		for _, typ := range r.Types(e.Kind) {
			found = found || typ == e.Type
		}
		if !found {
			t.Errorf("%s missing from Types(%q)", key, e.Kind)
		}
	}
	if _, known, _ := r.NewConfig("compute", "nope"); known {
		t.Error("unknown type reported as known")
	}
}

func TestSecretFromFile(t *testing.T) {
	path := t.TempDir() + "/token"
	if err := writeFile(path, "s3cr3t\n"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VULTR_API_KEY_FILE": path}
	r := New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	cfg, _, err := r.NewConfig("compute", "vultr")
	if err != nil {
		t.Fatal(err)
	}
	if got := reflect.ValueOf(cfg).Elem().FieldByName("APIKey").String(); got != "s3cr3t" {
		t.Errorf("APIKey from VULTR_API_KEY_FILE = %q", got)
	}
	env["VULTR_API_KEY_FILE"] = path + ".missing"
	if _, _, err := r.NewConfig("compute", "vultr"); err == nil {
		t.Error("an unreadable VULTR_API_KEY_FILE gave no error")
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
