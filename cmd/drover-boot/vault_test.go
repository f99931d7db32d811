package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

// The values in Vault: no output may ever hold one.
const (
	tlsKey  = "-----BEGIN PRIVATE KEY-----\nMIItls-key-value-0123\n-----END PRIVATE KEY-----\n"
	tlsCert = "tls-cert-value-4567"
	dbPass  = "db-password-value-89ab"
)

// lab is a real Vault dev server with a KV version 2 engine at kv/, the web secrets in it, and the
// controller's broker.
type lab struct {
	t      *testing.T
	srv    *vaulttest.Server
	broker *vault.Broker
	refs   map[string]secrets.RoleRef
	// forbidden is every token and value the tests handed out: no output may hold one.
	forbidden []string
}

func newLab(t *testing.T) *lab {
	srv := vaulttest.Start(t)
	l := &lab{t: t, srv: srv, refs: map[string]secrets.RoleRef{}}
	l.forbidden = append(l.forbidden, srv.RootToken, tlsKey, "MIItls-key-value-0123", tlsCert, dbPass)
	l.root(http.MethodPost, "sys/mounts/kv", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}, nil)
	l.root(http.MethodPost, "kv/data/web/tls", map[string]any{"data": map[string]any{"key": tlsKey, "cert": tlsCert}}, nil)
	l.root(http.MethodPost, "kv/data/web/db", map[string]any{"data": map[string]any{"password": dbPass, "port": 5432}}, nil)
	l.root(http.MethodPost, "kv/data/db/password", map[string]any{"data": map[string]any{"password": dbPass}}, nil)
	b, err := vault.New(&vault.Config{Address: srv.Addr, Token: secrets.Secret(srv.RootToken)})
	if err != nil {
		t.Fatal(err)
	}
	l.broker = b
	for role, paths := range map[string][]string{
		"web":   {"kv/data/web/tls", "kv/data/web/db"},
		"db":    {"kv/data/db/password"},
		"api":   {"kv/data/api/key"}, // never written
		"cache": {"kv/data/web/db"},
		"short": {"kv/data/web/db"},
	} {
		spec := secrets.RoleSpec{Role: role, Paths: paths}
		switch role {
		case "cache":
			spec.TokenTTL = 6 * time.Second
		case "short":
			spec.TokenTTL = 3 * time.Second
		}
		ref, err := b.EnsureRole(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		l.refs[role] = ref
	}
	// cache's tokens live 6s and renew up to an hour; short's cannot outlive their 3s.
	l.root(http.MethodPost, "auth/approle/role/drover-cache", map[string]any{"token_max_ttl": "1h"}, nil)
	return l
}

// root calls Vault with the root token; out gets the JSON answer. It fails the test on an error.
func (l *lab) root(method, path string, body, out any) {
	l.t.Helper()
	if code, msg := l.rootStatus(method, path, "", body, out); code/100 != 2 {
		l.t.Fatalf("vault %s %s: %d %s", method, path, code, msg)
	}
}

// rootStatus calls Vault with token (the root token when empty) and returns the status.
func (l *lab) rootStatus(method, path, token string, body, out any) (int, string) {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, l.srv.Addr+"/v1/"+path, rd)
	if token == "" {
		token = l.srv.RootToken
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			l.t.Fatalf("vault %s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, string(data)
}

// issue is what the controller does per instance: a wrapped SecretID for role, in user-data that
// declares files.
func (l *lab) issue(role string, wrapTTL time.Duration, files ...bootdata.SecretFile) (bootdata.UserData, secrets.Wrapped) {
	l.t.Helper()
	w, err := l.broker.IssueSecretID(context.Background(), role, map[string]string{"instance": role + "-1"}, nil, wrapTTL)
	if err != nil {
		l.t.Fatal(err)
	}
	l.forbidden = append(l.forbidden, w.Token.Reveal())
	return bootdata.UserData{
		Version: bootdata.Version,
		Role:    role,
		Vault:   bootdata.NewVault(l.srv.Addr, l.refs[role], w, ""),
		Secrets: files,
	}, w
}

func (l *lab) userData(ud bootdata.UserData) []byte {
	l.t.Helper()
	b, err := bootdata.Marshal(ud)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// tokenAlive reports whether the token with accessor is still valid.
func (l *lab) tokenAlive(accessor string) bool {
	l.t.Helper()
	code, _ := l.rootStatus(http.MethodPost, "auth/token/lookup-accessor", "", map[string]string{"accessor": accessor}, nil)
	return code == http.StatusOK
}

var webFiles = []bootdata.SecretFile{
	{Path: "kv/data/web/tls", Field: "key", Name: "tls.key"},
	{Path: "kv/data/web/tls", Field: "cert", Name: "tls.crt", Owner: "0:0", Mode: 0o440},
	{Path: "kv/data/web/db", Name: "db.json"},
}

// checkWebFiles checks the files webFiles declares: contents, modes, owners, and nothing else in dir.
func checkWebFiles(t *testing.T, dir string) {
	t.Helper()
	want := map[string]struct {
		content string
		mode    os.FileMode
	}{
		"tls.key": {tlsKey, 0o400},
		"tls.crt": {tlsCert, 0o440},
		"db.json": {`{"password":"` + dbPass + `","port":5432}` + "\n", 0o400},
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Errorf("%d files in %s, want %d: %v", len(ents), dir, len(want), ents)
	}
	for name, w := range want {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if string(b) != w.content {
			t.Errorf("%s: wrong content (%d bytes, want %d)", name, len(b), len(w.content))
		}
		fi, _ := os.Stat(p)
		if fi.Mode() != w.mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), w.mode)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() && st.Uid != 0) {
			t.Errorf("%s: owner %d", name, st.Uid)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("secrets dir: %v %v", fi.Mode(), err)
	}
}

func TestWithVault(t *testing.T) {
	l := newLab(t)
	var outputs []string
	defer func() { noLeak(t, outputs, l.forbidden...) }()
	collect := func(m *machine) { outputs = append(outputs, m.outputs()...) }

	var used []byte // user-data whose token was unwrapped
	t.Run("writes the secrets and revokes at once with oneshot", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		used = l.userData(ud)
		m := newMachine(t, "web").withUserData(used)
		defer collect(m)
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		checkWebFiles(t, m.secretsDir())
		st, raw := m.status()
		if st.State != "ok" || st.Vault != "revoked" || strings.Join(st.Secrets, ",") != "tls.key,tls.crt,db.json" || st.SecretsDir != m.secretsDir() || st.Reason != "" {
			t.Errorf("status %s", raw)
		}
		if st.TokenAccessor == "" || l.tokenAlive(st.TokenAccessor) {
			t.Errorf("token %q not revoked", st.TokenAccessor)
		}
		if !strings.Contains(m.stdout.String(), "wrote 3 secrets") || m.stderr.String() != "" {
			t.Errorf("stdout %q stderr %q", m.stdout.String(), m.stderr.String())
		}
		if len(m.notified) != 1 || !strings.HasPrefix(m.notified[0], "READY=1\n") {
			t.Errorf("notified %q", m.notified)
		}
		// The role's services learn which Vault it was (a Vault server's transit seal needs it).
		env, err := os.ReadFile(filepath.Join(filepath.Dir(m.statusPath()), "vault.env"))
		if err != nil || string(env) != "VAULT_ADDR="+l.srv.Addr+"\n" {
			t.Errorf("vault.env %q, %v", env, err)
		}
	})

	t.Run("replaying the user-data fails", func(t *testing.T) {
		m := newMachine(t, "web").withUserData(used)
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		st, _ := m.status()
		if st.State != "failed" || !strings.Contains(st.Reason, "already unwrapped") || !strings.Contains(st.Reason, "wrapping token is not valid or does not exist") {
			t.Errorf("reason %q", st.Reason)
		}
		if !strings.Contains(m.stderr.String(), st.Reason) {
			t.Errorf("stderr %q", m.stderr.String())
		}
		if ents, _ := os.ReadDir(m.secretsDir()); len(ents) != 0 {
			t.Errorf("files written: %v", ents)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(m.statusPath()), "vault.env")); !os.IsNotExist(err) {
			t.Errorf("vault.env after a failed boot: %v", err)
		}
	})

	t.Run("another role's token is refused without unwrapping it", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		_, dbw := l.issue("db", time.Minute)
		ud.Vault.WrappedSecretID = dbw.Token
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		st, _ := m.status()
		if !strings.Contains(st.Reason, `refusing the wrapping token: it wraps a response of "auth/approle/role/drover-db/secret-id"`) || !strings.Contains(st.Reason, "not unwrapped") {
			t.Errorf("reason %q", st.Reason)
		}
		// Still unwrappable: drover-boot only looked.
		var out struct {
			Data map[string]any `json:"data"`
		}
		l.root(http.MethodPost, "sys/wrapping/unwrap", map[string]string{"token": dbw.Token.Reveal()}, &out)
		if out.Data["secret_id_accessor"] != dbw.SecretIDAccessor {
			t.Errorf("unwrapped %v", out.Data["secret_id_accessor"])
		}
	})

	t.Run("an expired wrapping token fails", func(t *testing.T) {
		ud, _ := l.issue("web", time.Second, webFiles...)
		time.Sleep(2500 * time.Millisecond)
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, "vault refused the wrapping token") {
			t.Errorf("reason %q", st.Reason)
		}
	})

	t.Run("a destroyed SecretID fails at login", func(t *testing.T) {
		ud, w := l.issue("web", time.Minute, webFiles...)
		if err := l.broker.DestroySecretID(context.Background(), "web", w.SecretIDAccessor); err != nil {
			t.Fatal(err)
		}
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, "logging in with the SecretID: vault refused it") {
			t.Errorf("reason %q", st.Reason)
		}
	})

	t.Run("a missing secret fails, writes nothing and revokes the token", func(t *testing.T) {
		ud, _ := l.issue("api", time.Minute, bootdata.SecretFile{Path: "kv/data/api/key", Name: "key"})
		m := newMachine(t, "api").withUserData(l.userData(ud))
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		st, _ := m.status()
		if !strings.Contains(st.Reason, "secret kv/data/api/key: not found in vault") {
			t.Errorf("reason %q", st.Reason)
		}
		if st.TokenAccessor == "" || l.tokenAlive(st.TokenAccessor) {
			t.Errorf("the failed boot's token %q is alive", st.TokenAccessor)
		}
	})

	t.Run("a file that cannot be written fails, and the files written before it are removed", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		// tls.crt, the second file, cannot replace a directory.
		if err := os.MkdirAll(filepath.Join(m.secretsDir(), "tls.crt", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		st, _ := m.status()
		if !strings.HasPrefix(st.Reason, "secret tls.crt: ") {
			t.Errorf("reason %q", st.Reason)
		}
		ents, _ := os.ReadDir(m.secretsDir())
		if len(ents) != 1 || ents[0].Name() != "tls.crt" || !ents[0].IsDir() {
			t.Errorf("left in the secrets dir: %v", ents)
		}
		if st.TokenAccessor == "" || l.tokenAlive(st.TokenAccessor) {
			t.Errorf("the failed boot's token %q is alive", st.TokenAccessor)
		}
	})

	t.Run("a path the policy does not grant fails before anything is written", func(t *testing.T) {
		files := append(append([]bootdata.SecretFile{}, webFiles...), bootdata.SecretFile{Path: "kv/data/db/password", Name: "db-pass"})
		ud, _ := l.issue("web", time.Minute, files...)
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, "secret kv/data/db/password: permission denied") {
			t.Errorf("reason %q", st.Reason)
		}
		if ents, _ := os.ReadDir(m.secretsDir()); len(ents) != 0 {
			t.Errorf("files left: %v", ents)
		}
	})

	t.Run("a missing field fails", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, bootdata.SecretFile{Path: "kv/data/web/tls", Field: "chain", Name: "chain.pem"})
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, `has no field "chain" (its fields: cert, key)`) {
			t.Errorf("reason %q", st.Reason)
		}
	})

	t.Run("a template is rendered with the path's fields", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute,
			bootdata.SecretFile{Path: "kv/data/web/db", Name: "htpasswd", Template: "/etc/drover/secret-templates/htpasswd.tmpl", Owner: "0:0", Mode: 0o440})
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		m.writeFile("etc/drover/secret-templates/htpasswd.tmpl", "admin:{PLAIN}{{ .password }}\nport {{ .port }}\n")
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		p := filepath.Join(m.secretsDir(), "htpasswd")
		b, err := os.ReadFile(p)
		if want := "admin:{PLAIN}" + dbPass + "\nport 5432\n"; err != nil || string(b) != want {
			t.Errorf("htpasswd: %d bytes (%v), want %d", len(b), err, len(want))
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode() != 0o440 {
			t.Errorf("htpasswd mode: %v %v", fi.Mode(), err)
		}
	})

	t.Run("a template naming a field the secret lacks fails, naming the fields", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, bootdata.SecretFile{Path: "kv/data/web/db", Name: "app.conf", Template: "/etc/drover/secret-templates/app.conf.tmpl"})
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		m.writeFile("etc/drover/secret-templates/app.conf.tmpl", "user={{ .user }}\npassword={{ .password }}\n")
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		st, _ := m.status()
		if !strings.Contains(st.Reason, `map has no entry for key "user"`) || !strings.Contains(st.Reason, "(its fields: password, port)") {
			t.Errorf("reason %q", st.Reason)
		}
		if ents, _ := os.ReadDir(m.secretsDir()); len(ents) != 0 {
			t.Errorf("files written: %v", ents)
		}
	})

	t.Run("a missing template fails before the token is unwrapped", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, bootdata.SecretFile{Path: "kv/data/web/db", Name: "app.conf", Template: "/etc/drover/secret-templates/app.conf.tmpl"})
		raw := l.userData(ud)
		m := newMachine(t, "web").withUserData(raw)
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, "secret app.conf: its template") || !strings.Contains(st.Reason, "no such file") {
			t.Errorf("reason %q", st.Reason)
		}
		// The token was not spent: the same user-data works once the template is there.
		m2 := newMachine(t, "web").withUserData(raw)
		defer collect(m2)
		m2.writeFile("etc/drover/secret-templates/app.conf.tmpl", "password={{ .password }}\n")
		if code := m2.run(); code != exitOK {
			t.Fatalf("second boot: exit %d: %s", code, m2.stderr.String())
		}
	})

	t.Run("a sealed vault is waited for, at lookup only", func(t *testing.T) {
		target, _ := url.Parse(l.srv.Addr)
		proxy := httputil.NewSingleHostReverseProxy(target)
		var mu sync.Mutex
		lookups := 0
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/sys/wrapping/lookup" {
				mu.Lock()
				lookups++
				n := lookups
				mu.Unlock()
				if n <= 2 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					fmt.Fprint(w, `{"errors":["Vault is sealed"]}`)
					return
				}
			}
			proxy.ServeHTTP(w, r)
		}))
		defer front.Close()
		ud, _ := l.issue("web", time.Minute, webFiles...)
		ud.Vault.Addr = front.URL
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		m.cfg.Wait = 10 * time.Second
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		checkWebFiles(t, m.secretsDir())
		mu.Lock()
		defer mu.Unlock()
		if lookups != 3 {
			t.Errorf("%d lookups", lookups)
		}
	})

	t.Run("an unreachable vault fails after the wait", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ud.Vault.Addr = "http://" + ln.Addr().String()
		ln.Close()
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		m.cfg.Wait = 1500 * time.Millisecond
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, "not answering for 1.5s") || !strings.Contains(st.Reason, "connection refused") {
			t.Errorf("reason %q", st.Reason)
		}
	})

	t.Run("user-data from an IMDSv2 service", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		m := newMachine(t, "web", "kv/data/web/tls", "kv/data/web/db")
		defer collect(m)
		m.cfg.MetadataURL = newIMDS(t, l.userData(ud), false).URL
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		checkWebFiles(t, m.secretsDir())
		if st, _ := m.status(); st.UserData != "ec2-imdsv2" {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("user-data from fw_cfg", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		fw := filepath.Join(t.TempDir(), "by_name/opt/drover/user-data/raw")
		if err := os.MkdirAll(filepath.Dir(fw), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fw, l.userData(ud), 0o400); err != nil {
			t.Fatal(err)
		}
		m := newMachine(t, "web")
		defer collect(m)
		m.cfg.FwCfgPath = fw
		m.cfg.MetadataURL = newIMDS(t, nil, false).URL // not asked: fw_cfg comes first
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		checkWebFiles(t, m.secretsDir())
		if st, _ := m.status(); st.UserData != "fw_cfg" {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("renews the token until stopped, then revokes it", func(t *testing.T) {
		ud, _ := l.issue("cache", time.Minute, bootdata.SecretFile{Path: "kv/data/web/db", Name: "db.json"})
		m := newMachine(t, "cache").withUserData(l.userData(ud))
		defer collect(m)
		cancel, done := m.renewInBackground()
		defer cancel()
		st := waitStatus(t, m, func(st status) bool { return st.State != "" })
		if st.State != "ok" || st.Vault != "renewing" || st.TokenExpires == nil {
			t.Fatalf("status %+v, stderr %q", st, m.stderr.String())
		}
		time.Sleep(8 * time.Second) // the 6s lease renewed at about 4s and 8s
		var look struct {
			Data struct {
				TTL int `json:"ttl"`
			} `json:"data"`
		}
		l.root(http.MethodPost, "auth/token/lookup-accessor", map[string]string{"accessor": st.TokenAccessor}, &look)
		if look.Data.TTL < 1 {
			t.Errorf("token ttl %d after 8s of a 6s lease: not renewed", look.Data.TTL)
		}
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		if st, _ := m.status(); st.Vault != "revoked" || l.tokenAlive(st.TokenAccessor) {
			t.Errorf("after stop: %+v", st)
		}
	})

	t.Run("a token at its max TTL is left to expire", func(t *testing.T) {
		ud, _ := l.issue("short", time.Minute, bootdata.SecretFile{Path: "kv/data/web/db", Name: "db.json"})
		m := newMachine(t, "short").withUserData(l.userData(ud))
		defer collect(m)
		cancel, done := m.renewInBackground()
		defer cancel()
		st := waitStatus(t, m, func(st status) bool { return st.Vault == "expired" || st.State == "failed" })
		if st.Vault != "expired" {
			t.Fatalf("status %+v", st)
		}
		if !strings.Contains(m.stdout.String(), "at its max TTL") {
			t.Errorf("stdout %q", m.stdout.String())
		}
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("exit %d", code)
		}
	})

	t.Run("volumes are mounted after the secrets, before READY", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		ud.Volumes = []bootdata.VolumeMount{{Name: "data", GuestPath: pgDevice, Mount: "/srv/data", FS: "ext4"}}
		devices := &fakeDevices{appearAfter: 3}
		m := newMachine(t, "web").withUserData(l.userData(ud))
		m.cfg.Devices, m.cfg.volumePoll, m.cfg.volumeSay = devices, time.Millisecond, time.Millisecond
		defer collect(m)
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		checkWebFiles(t, m.secretsDir())
		st, raw := m.status()
		if st.State != "ok" || len(st.Secrets) != 3 || strings.Join(st.Volumes, ",") != "data on /srv/data" {
			t.Errorf("status %s", raw)
		}
		if got := devices.recorded(); len(got) != 3 || !strings.HasPrefix(got[1], "mkfs ext4 ") {
			t.Errorf("calls %q", got)
		}
		if last := m.notified[len(m.notified)-1]; !strings.HasPrefix(last, "READY=1\n") || strings.Count(strings.Join(m.notified, "|"), "READY=1") != 1 {
			t.Errorf("notified %q: want READY once, last", m.notified)
		}
	})

	t.Run("a volume that never comes fails the boot: secrets removed, token revoked", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		ud.Volumes = []bootdata.VolumeMount{{Name: "data", GuestPath: pgDevice, Mount: "/srv/data", FS: "ext4"}}
		m := newMachine(t, "web").withUserData(l.userData(ud))
		m.cfg.Devices, m.cfg.VolumeWait, m.cfg.volumePoll, m.cfg.volumeSay = &fakeDevices{appearAfter: 1 << 30}, 20*time.Millisecond, time.Millisecond, 5*time.Millisecond
		defer collect(m)
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		st, raw := m.status()
		if st.State != "failed" || !strings.Contains(st.Reason, "volume data: "+pgDevice+" did not appear") || st.TokenAccessor == "" {
			t.Fatalf("status %s", raw)
		}
		if l.tokenAlive(st.TokenAccessor) {
			t.Error("token left alive after the failed boot")
		}
		if ents, _ := os.ReadDir(m.secretsDir()); len(ents) != 0 {
			t.Errorf("secret files left after the failed boot: %v", ents)
		}
		if m.readyNotified() {
			t.Error("READY sent: the services would start")
		}
	})

	t.Run("the binary, oneshot", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		code, stdout, stderr := runBinary(t, m, "-oneshot")
		outputs = append(outputs, stdout, stderr)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkWebFiles(t, m.secretsDir())
		if st, _ := m.status(); st.State != "ok" || st.Vault != "revoked" || !strings.Contains(stdout, "wrote 3 secrets") {
			t.Errorf("status %+v, stdout %q", st, stdout)
		}
		// The same user-data again: exit 1, and why on stderr and in the status file.
		code, stdout, stderr = runBinary(t, m, "-oneshot")
		outputs = append(outputs, stdout, stderr)
		st, _ := m.status()
		if code != exitFailed || !strings.Contains(stderr, "already unwrapped") || !strings.Contains(st.Reason, "already unwrapped") {
			t.Errorf("replay: exit %d, stderr %q, status %+v", code, stderr, st)
		}
	})

	t.Run("the binary, renewing until SIGTERM", func(t *testing.T) {
		ud, _ := l.issue("web", time.Minute, webFiles...)
		m := newMachine(t, "web").withUserData(l.userData(ud))
		defer collect(m)
		cmd, stdout, stderr := binaryCmd(m)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, m, func(st status) bool { return st.State != "" })
		if st.State != "ok" || st.Vault != "renewing" || !l.tokenAlive(st.TokenAccessor) {
			t.Fatalf("status %+v, stderr %q", st, stderr.String())
		}
		checkWebFiles(t, m.secretsDir())
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		outputs = append(outputs, stdout.String(), stderr.String())
		if err != nil {
			t.Fatalf("%v: %s", err, stderr.String())
		}
		if st, _ := m.status(); st.Vault != "revoked" || l.tokenAlive(st.TokenAccessor) || !strings.Contains(stdout.String(), "vault token revoked") {
			t.Errorf("after SIGTERM: %+v, stdout %q", st, stdout.String())
		}
	})
}

func waitStatus(t *testing.T, m *machine, done func(status) bool) status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(m.statusPath()); err == nil {
			var st status
			if json.Unmarshal(b, &st) == nil && done(st) {
				return st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, raw := m.status()
	t.Fatalf("status after 30s: %s", raw)
	return status{}
}

func binaryCmd(m *machine, extra ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	args := append([]string{"-root", m.root, "-no-mount", "-fw-cfg", "none", "-metadata-url", "none", "-user-data", m.cfg.UserDataPath, "-wait", "5s"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func runBinary(t *testing.T, m *machine, extra ...string) (int, string, string) {
	t.Helper()
	cmd, stdout, stderr := binaryCmd(m, extra...)
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatal(fmt.Errorf("running drover-boot: %w", err))
	return 0, "", ""
}
