package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A vault check speaks HTTPS with scheme = "https", verified against a ca_file relative to the fleet
// file; the attributes are refused where they mean nothing, each at its own attribute.
func TestHealthTLSAttributes(t *testing.T) {
	for _, tc := range []struct {
		name, health string
		want         string // "" when valid; else line:col summary
	}{
		{"vault over https", "health \"vault\" {\n      port = 8200\n      scheme = \"https\"\n      ca_file = \"site.conf\"\n      tls_skip_verify = false\n    }", ""},
		{"https with a CA", "health \"https\" {\n      port = 443\n      ca_file = \"site.conf\"\n    }", ""},
		{"bad scheme", "health \"vault\" {\n      port = 8200\n      scheme = \"ftp\"\n    }", "10:16 Invalid value"},
		{"scheme on http", "health \"http\" {\n      port = 80\n      scheme = \"https\"\n    }", "10:16 Unsupported argument"},
		{"ca_file over http", "health \"vault\" {\n      port = 8200\n      ca_file = \"site.conf\"\n    }", "10:17 Unsupported argument"},
		{"missing ca_file", "health \"https\" {\n      port = 443\n      ca_file = \"ca.pem\"\n    }", "10:17 Missing file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := load(t, fmt.Sprintf(deployFleet, "    "+tc.health), Options{})
			if tc.want == "" {
				if diags.HasErrors() {
					t.Fatalf("want valid, got %v", diags)
				}
				hc := f.Role("web").Deploy.Health[0]
				if !hc.TLS() || !filepath.IsAbs(hc.CAFile) || filepath.Base(hc.CAFile) != "site.conf" {
					t.Errorf("decoded %+v", hc)
				}
				if _, err := os.Stat(hc.CAFile); err != nil {
					t.Errorf("ca_file not resolved next to the fleet file: %v", err)
				}
				return
			}
			if diags.Errors() != 1 {
				t.Fatalf("want 1 error, got %v", diags)
			}
			d := diags.Diags[0]
			if got := fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary); got != tc.want {
				t.Errorf("got %s (%s), want %s", got, d.Detail, tc.want)
			}
			if strings.Contains(tc.name, "missing") && !strings.Contains(d.Detail, "ca.pem") {
				t.Errorf("detail %q does not name the file", d.Detail)
			}
		})
	}
}
