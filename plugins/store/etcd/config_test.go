package etcd_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store/etcd"
)

func TestDefaultConfigFromEnvironment(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := etcd.NewDefaultConfig(lookup(map[string]string{
		"DROVER_ETCD_ENDPOINTS": " https://a.example:2379, https://b.example:2379,",
		"ETCD_USERNAME":         "drover",
		"ETCD_PASSWORD_FILE":    pwFile,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Endpoints, " ") != "https://a.example:2379 https://b.example:2379" {
		t.Errorf("endpoints %q", c.Endpoints)
	}
	if c.Username != "drover" || c.Password.Reveal() != "s3cret" || c.Prefix != etcd.DefaultPrefix {
		t.Errorf("config %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	c, err = etcd.NewDefaultConfig(lookup(nil))
	if err != nil || len(c.Endpoints) != 0 || c.Password != "" {
		t.Fatalf("empty environment: %+v, %v", c, err)
	}
	if _, err := etcd.NewDefaultConfig(lookup(map[string]string{"ETCD_PASSWORD_FILE": "/nonexistent/pw"})); err == nil || !strings.Contains(err.Error(), "ETCD_PASSWORD_FILE") {
		t.Errorf("unreadable password file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := func() *etcd.Config {
		return &etcd.Config{Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "drover/", DialTimeout: "5s", RequestTimeout: "30s"}
	}
	for _, tc := range []struct {
		name, attr, want string
		change           func(c *etcd.Config)
	}{
		{"NoEndpoints", "endpoints", "at least one", func(c *etcd.Config) { c.Endpoints = nil }},
		{"NoScheme", "endpoints", `got "etcd:2379"`, func(c *etcd.Config) { c.Endpoints = []string{"etcd:2379"} }},
		{"OtherScheme", "endpoints", `got "unix:///run/etcd.sock"`, func(c *etcd.Config) { c.Endpoints = []string{"unix:///run/etcd.sock"} }},
		{"Path", "endpoints", `got "http://etcd:2379/v3"`, func(c *etcd.Config) { c.Endpoints = []string{"http://etcd:2379/v3"} }},
		{"HTTPWithTLS", "endpoints", "plain http", func(c *etcd.Config) { c.TLS = &etcd.TLSConfig{CACert: "ca.pem"} }},
		{"PrefixNewline", "prefix", "one line", func(c *etcd.Config) { c.Prefix = "a\nb" }},
		{"DialTimeout", "dial_timeout", `got "5"`, func(c *etcd.Config) { c.DialTimeout = "5" }},
		{"RequestTimeout", "request_timeout", `got "2h"`, func(c *etcd.Config) { c.RequestTimeout = "2h" }},
		{"PasswordWithoutUser", "username", "ETCD_PASSWORD", func(c *etcd.Config) { c.Password = "pw" }},
		{"CertWithoutKey", "tls", "cert and key go together", func(c *etcd.Config) {
			c.Endpoints = []string{"https://etcd:2379"}
			c.TLS = &etcd.TLSConfig{Cert: "drover.pem"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(c)
			err := c.Validate()
			var attrErr *config.AttrError
			if !errors.As(err, &attrErr) || attrErr.Attr != tc.attr || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error about %s containing %q", err, tc.attr, tc.want)
			}
		})
	}
	if err := good().Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
}

// TestTLSFiles: the tls block's relative paths are relative to the fleet file, and a missing file
// is an error naming it when the block is opened.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	f := etcd.Factory()
	cfg, err := f.NewConfig(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.(*etcd.Config)
	c.Endpoints = []string{"https://127.0.0.1:2379"}
	c.TLS = &etcd.TLSConfig{CACert: "certs/ca.pem"}
	_, err = f.Open(t.Context(), cfg, config.Env{FleetDir: dir})
	if want := filepath.Join(dir, "certs", "ca.pem"); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open with a missing CA = %v, want an error naming %s", err, want)
	}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "certs", "ca.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = f.Open(t.Context(), cfg, config.Env{FleetDir: dir}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("Open with a CA that is no certificate = %v", err)
	}
}
