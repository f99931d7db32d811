package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
)

// bin is drover-boot built once for the tests that run the real binary.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drover-boot-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "drover-boot")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building drover-boot: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe to read while a run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// machine is a system tree for one run: image.json, the status file and the secrets dir under root.
type machine struct {
	t              *testing.T
	root           string
	cfg            config
	stdout, stderr *syncBuffer
	mu             sync.Mutex
	notified       []string
}

func newMachine(t *testing.T, role string, declared ...string) *machine {
	t.Helper()
	root := t.TempDir()
	if declared == nil {
		declared = []string{}
	}
	img, _ := json.Marshal(image{Role: role, Identity: "sha256:abc", Secrets: declared})
	if err := os.MkdirAll(filepath.Join(root, "etc/drover"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/drover/image.json"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	m := &machine{t: t, root: root, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	m.cfg = config{
		Root:        root,
		NoMount:     true,
		FwCfgPath:   none,
		MetadataURL: none,
		Oneshot:     true,
		Wait:        2 * time.Second,
		Stdout:      m.stdout,
		Stderr:      m.stderr,
		Now:         time.Now,
		Notify: func(s string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.notified = append(m.notified, s)
		},
	}
	return m
}

func (m *machine) secretsDir() string { return filepath.Join(m.root, "run/drover/secrets") }
func (m *machine) statusPath() string { return filepath.Join(m.root, "run/drover/status") }

// renewInBackground runs drover-boot as the unit does (not oneshot: it keeps the token renewed)
// until cancel; done gets its exit code.
func (m *machine) renewInBackground() (cancel context.CancelFunc, done <-chan int) {
	m.cfg.Oneshot = false
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, m.cfg) }()
	return cancel, exit
}

// writeFile puts a file into the machine's root, as the image would hold it.
func (m *machine) writeFile(rel, content string) {
	m.t.Helper()
	p := filepath.Join(m.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		m.t.Fatal(err)
	}
}

// withUserData writes ud to a file and points the run at it.
func (m *machine) withUserData(ud []byte) *machine {
	p := filepath.Join(m.t.TempDir(), "user-data")
	if err := os.WriteFile(p, ud, 0o600); err != nil {
		m.t.Fatal(err)
	}
	m.cfg.UserDataPath = p
	return m
}

func (m *machine) run() int {
	m.t.Helper()
	return run(context.Background(), m.cfg)
}

func (m *machine) status() (status, string) {
	m.t.Helper()
	b, err := os.ReadFile(m.statusPath())
	if err != nil {
		m.t.Fatalf("status file: %v", err)
	}
	var st status
	if err := json.Unmarshal(b, &st); err != nil {
		m.t.Fatalf("status file %s: %v", b, err)
	}
	return st, string(b)
}

// outputs is everything a run printed or recorded, for the leak checks.
func (m *machine) outputs() []string {
	b, _ := os.ReadFile(m.statusPath())
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string{m.stdout.String(), m.stderr.String(), string(b)}, m.notified...)
}

var (
	uuidRE  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	tokenRE = regexp.MustCompile(`\b(hvs|hvb|hvr|s|b|r)\.[A-Za-z0-9_-]{20,}`)
)

// noLeak fails the test when any output holds one of the forbidden strings, a Vault token ("hvs."), or
// anything shaped like a SecretID or RoleID (a UUID).
func noLeak(t *testing.T, outputs []string, forbidden ...string) {
	t.Helper()
	for _, o := range outputs {
		// What the failure shows is redacted too: test logs are output as well.
		shown := o
		for _, f := range forbidden {
			if f != "" {
				shown = strings.ReplaceAll(shown, f, "<SECRET>")
			}
		}
		shown = tokenRE.ReplaceAllString(uuidRE.ReplaceAllString(shown, "<UUID>"), "<TOKEN>")
		if shown != o {
			t.Errorf("output holds a secret, a vault token or a UUID (a SecretID or RoleID?): %s", shown)
		}
	}
}

func TestMissingImageDescriptionFails(t *testing.T) {
	m := newMachine(t, "web")
	os.Remove(filepath.Join(m.root, "etc/drover/image.json"))
	if code := m.run(); code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	st, _ := m.status()
	if st.State != "failed" || !strings.Contains(st.Reason, "image description") || !strings.Contains(m.stderr.String(), "failed") {
		t.Errorf("status %+v, stderr %q", st, m.stderr.String())
	}
}

func TestNoUserDataBootsWithoutSecrets(t *testing.T) {
	m := newMachine(t, "web")
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	m.cfg.Now = func() time.Time { return at }
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	st, _ := m.status()
	if st.State != "ok" || st.Vault != "none" || st.Role != "web" || st.Identity != "sha256:abc" || !st.Time.Equal(at) || st.UserData != "none" {
		t.Errorf("status %+v", st)
	}
	if !strings.Contains(m.stdout.String(), "role web image sha256:abc booted: no secrets to fetch") {
		t.Errorf("console: %q", m.stdout.String())
	}
	if len(m.notified) != 1 || !strings.HasPrefix(m.notified[0], "READY=1") {
		t.Errorf("notified %q", m.notified)
	}
}

func TestUserDataWithoutVaultBootsWithoutSecrets(t *testing.T) {
	m := newMachine(t, "web").withUserData([]byte(`{"version":1,"role":"web"}`))
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	if st, _ := m.status(); st.State != "ok" || st.Vault != "none" || !strings.HasPrefix(st.UserData, "file ") {
		t.Errorf("status %+v", st)
	}
}

func TestImageWithCertificatesNeedsVault(t *testing.T) {
	m := newMachine(t, "web")
	img, _ := json.Marshal(image{Role: "web", Identity: "sha256:abc", Secrets: []string{}, Certificates: []string{"pki/issue/web"}})
	if err := os.WriteFile(filepath.Join(m.root, "etc/drover/image.json"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := m.run(); code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	st, _ := m.status()
	if !strings.Contains(st.Reason, "no user-data") || !strings.Contains(st.Reason, "declares certificates from pki/issue/web") {
		t.Errorf("reason %q", st.Reason)
	}
	if len(m.notified) != 0 {
		t.Errorf("a failed boot notified %q", m.notified)
	}
}

func TestImageWithSecretsNeedsThem(t *testing.T) {
	m := newMachine(t, "web", "kv/data/web/tls")
	if code := m.run(); code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	st, _ := m.status()
	if !strings.Contains(st.Reason, "no user-data") || !strings.Contains(st.Reason, "declares secrets kv/data/web/tls") {
		t.Errorf("reason %q", st.Reason)
	}
	if len(m.notified) != 0 {
		t.Errorf("a failed boot notified %q", m.notified)
	}
}

func TestBadUserDataFails(t *testing.T) {
	cases := map[string]struct{ ud, want string }{
		"version":      {`{"version":2,"role":"web"}`, "version 2 is not supported"},
		"unknown":      {`{"version":1,"role":"web","vault_token":"hvs.x"}`, `unknown field "vault_token"`},
		"role":         {`{"version":1,"role":"db"}`, `is for role "db", this image is role "web"`},
		"creationpath": {`{"version":1,"role":"web","vault":{"addr":"http://127.0.0.1:1","role_id":"r","wrapped_secret_id":"hvs.secretwrappingtoken","creation_path":"sys/wrapping/wrap"},"secrets":[{"path":"kv/data/web/tls","name":"tls"}]}`, "creation_path"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m := newMachine(t, "web").withUserData([]byte(c.ud))
			if code := m.run(); code != exitFailed {
				t.Fatalf("exit %d", code)
			}
			st, _ := m.status()
			if st.State != "failed" || !strings.Contains(st.Reason, c.want) || !strings.Contains(m.stderr.String(), c.want) {
				t.Errorf("status %+v, stderr %q, want %q", st, m.stderr.String(), c.want)
			}
			noLeak(t, m.outputs(), "hvs.secretwrappingtoken")
		})
	}
	t.Run("not json, with secrets declared", func(t *testing.T) {
		m := newMachine(t, "web", "kv/data/web/tls").withUserData([]byte("#cloud-config\n"))
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, "not a JSON object") {
			t.Errorf("reason %q", st.Reason)
		}
	})
	t.Run("not json, no secrets declared", func(t *testing.T) {
		m := newMachine(t, "web").withUserData([]byte("#cloud-config\n"))
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		if st, _ := m.status(); st.Vault != "none" || !strings.Contains(m.stdout.String(), "is not drover's") {
			t.Errorf("status %+v, stdout %q", st, m.stdout.String())
		}
	})
	t.Run("missing file", func(t *testing.T) {
		m := newMachine(t, "web")
		m.cfg.UserDataPath = filepath.Join(t.TempDir(), "nope")
		if code := m.run(); code != exitFailed {
			t.Fatalf("exit %d", code)
		}
		if st, _ := m.status(); !strings.Contains(st.Reason, "user-data file") {
			t.Errorf("reason %q", st.Reason)
		}
	})
}

func TestSecretsDirMustBeTmpfs(t *testing.T) {
	// /dev/shm is a tmpfs on Linux machines with systemd and in containers.
	if tmp, err := isTmpfs("/dev/shm"); err != nil || !tmp {
		t.Skip("/dev/shm is not a tmpfs here")
	}
	dir, err := os.MkdirTemp("/dev/shm", "drover-boot-test-")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(dir)
	sub := filepath.Join(dir, "drover", "secrets")
	if err := prepareDir(sub, true, false); err != nil {
		t.Fatalf("a dir on a tmpfs: %v", err)
	}
	// The owner or group of a secret passes through the parent (/run/drover) to the directory.
	if fi, _ := os.Stat(filepath.Dir(sub)); fi.Mode().Perm() != 0o755 {
		t.Errorf("parent mode %v, want 0755", fi.Mode())
	}
	fi, _ := os.Stat(sub)
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %v", fi.Mode())
	}
	if err := prepareDir(sub, true, true); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(sub); fi.Mode().Perm() != 0o751 {
		t.Errorf("mode with a non-root owner %v", fi.Mode())
	}
	if tmp, err := isTmpfs(t.TempDir()); err == nil && !tmp && os.Geteuid() != 0 {
		if err := prepareDir(filepath.Join(t.TempDir(), "s"), true, false); err == nil || !strings.Contains(err.Error(), "not on a tmpfs") {
			t.Errorf("a dir on a disk, not root: %v", err)
		}
	}
}

func TestSecretsDirGetsATmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if tmp, err := isTmpfs(dir); err != nil || tmp {
		t.Skipf("the temp dir is on a tmpfs already (%v)", err)
	}
	err := prepareDir(dir, true, false)
	if err != nil && strings.Contains(err.Error(), "mount:") {
		t.Skipf("no mounting here: %v", err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if tmp, err := isTmpfs(dir); err != nil || !tmp {
		t.Errorf("not a tmpfs after prepareDir: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	for line := range strings.Lines(string(mounts)) {
		if f := strings.Fields(line); len(f) > 3 && f[1] == dir {
			for _, opt := range []string{"nosuid", "nodev", "noexec", "size=16384k", "mode=750"} {
				if !strings.Contains(f[3], opt) {
					t.Errorf("mount options %s lack %s", f[3], opt)
				}
			}
		}
	}
	// A second run finds the tmpfs and mounts nothing more.
	if err := prepareDir(dir, true, false); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(mustRead(t, "/proc/self/mounts")), " "+dir+" "); n != 1 {
		t.Errorf("%d mounts at %s", n, dir)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRender(t *testing.T) {
	fields := map[string]secrets.Secret{
		"key":  `"-----BEGIN KEY-----\nabc\n-----END KEY-----\n"`,
		"port": `5432`,
		"tags": `[ "a", "b" ]`,
	}
	got, vals, err := render(fields, "kv/data/x", "key")
	if err != nil || got.Reveal() != "-----BEGIN KEY-----\nabc\n-----END KEY-----\n" || len(vals) == 0 {
		t.Errorf("field key: %q %v", got.Reveal(), err)
	}
	if got, _, _ := render(fields, "kv/data/x", "port"); got.Reveal() != "5432" {
		t.Errorf("field port: %q", got.Reveal())
	}
	got, _, err = render(fields, "kv/data/x", "")
	want := `{"key":"-----BEGIN KEY-----\nabc\n-----END KEY-----\n","port":5432,"tags":["a","b"]}` + "\n"
	if err != nil || got.Reveal() != want {
		t.Errorf("all fields: %q, want %q", got.Reveal(), want)
	}
	if _, _, err := render(fields, "kv/data/x", "cert"); err == nil || !strings.Contains(err.Error(), `no field "cert" (its fields: key, port, tags)`) || strings.Contains(err.Error(), "BEGIN") {
		t.Errorf("missing field: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"DROVER_BOOT_ONESHOT": "1", "DROVER_BOOT_METADATA_URL": "http://127.0.0.1:9", "DROVER_BOOT_WAIT": "5s"}
	c, err := parseFlags([]string{"-secrets-dir", "/x", "-status=/s"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !c.Oneshot || c.MetadataURL != "http://127.0.0.1:9" || c.Wait != 5*time.Second || c.SecretsDir != "/x" || c.StatusPath != "/s" || c.FwCfgPath != defaultFwCfg || c.Root != "/" || c.NoMount {
		t.Errorf("%+v", c)
	}
	c, err = parseFlags([]string{"-wait=1m", "-metadata-url=none"}, func(k string) string { return env[k] })
	if err != nil || c.Wait != time.Minute || c.MetadataURL != none {
		t.Errorf("%+v %v", c, err)
	}
	for _, bad := range [][]string{{"-wait=soon"}, {"-metadata-url=169.254.169.254"}, {"extra"}, {"-nope"}} {
		if _, err := parseFlags(bad, func(string) string { return "" }); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	sdNotify("READY=1\nSTATUS=x")
	buf := make([]byte, 100)
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := l.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1\nSTATUS=x" {
		t.Errorf("%q %v", buf[:n], err)
	}
}

// imdsServer is an EC2 IMDSv2 look-alike: PUT /latest/api/token gives a session token, and
// /latest/user-data answers 401 without it (or with another). Vultr mode knows no PUT.
type imdsServer struct {
	*httptest.Server
	issued   string // the session token PUT gives
	accepted string // the one GET takes
	userData []byte // nil: 404
	vultr    bool
	mu       sync.Mutex
	puts     int
}

const imdsToken = "imds-session-token-123456"

func newIMDS(t *testing.T, userData []byte, vultr bool) *imdsServer {
	return newIMDSIssuing(t, userData, vultr, imdsToken)
}

func newIMDSIssuing(t *testing.T, userData []byte, vultr bool, issued string) *imdsServer {
	s := &imdsServer{issued: issued, accepted: imdsToken, userData: userData, vultr: vultr}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/latest/api/token" && !s.vultr:
			if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			s.mu.Lock()
			s.puts++
			s.mu.Unlock()
			fmt.Fprint(w, s.issued)
		case r.URL.Path == "/latest/user-data" && r.Method == http.MethodGet:
			if !s.vultr && r.Header.Get("X-aws-ec2-metadata-token") != s.accepted {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			if s.userData == nil {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write(s.userData)
		case r.URL.Path == "/latest/api/token":
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestIMDSRequiresItsToken(t *testing.T) {
	s := newIMDS(t, []byte(`{"version":1,"role":"web"}`), false)
	// The fake itself: no token, or another, is 401.
	for _, tok := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/latest/user-data", nil)
		if tok != "" {
			req.Header.Set("X-aws-ec2-metadata-token", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %s", tok, resp.Status)
		}
	}

	m := newMachine(t, "web")
	m.cfg.MetadataURL = s.URL
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	s.mu.Lock()
	puts := s.puts
	s.mu.Unlock()
	if st, _ := m.status(); st.UserData != "ec2-imdsv2" || st.Vault != "none" || puts != 1 {
		t.Errorf("status %+v, %d token PUTs", st, puts)
	}

	// A session token the service then refuses fails the boot, clearly.
	s = newIMDSIssuing(t, []byte(`{"version":1,"role":"web"}`), false, "another-session-token")
	m = newMachine(t, "web")
	m.cfg.MetadataURL = s.URL
	if code := m.run(); code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	st, _ := m.status()
	if !strings.Contains(st.Reason, "GET /latest/user-data: 401 Unauthorized") {
		t.Errorf("reason %q", st.Reason)
	}
	noLeak(t, m.outputs(), "another-session-token", imdsToken)
}

func TestMetadataWithoutUserData(t *testing.T) {
	for _, vultr := range []bool{false, true} {
		m := newMachine(t, "web")
		m.cfg.MetadataURL = newIMDS(t, nil, vultr).URL
		if code := m.run(); code != exitOK {
			t.Fatalf("vultr %v: exit %d: %s", vultr, code, m.stderr.String())
		}
		if st, _ := m.status(); st.Vault != "none" {
			t.Errorf("vultr %v: status %+v", vultr, st)
		}
	}
}

func TestVultrMetadata(t *testing.T) {
	m := newMachine(t, "web")
	m.cfg.MetadataURL = newIMDS(t, []byte(`{"version":1,"role":"web"}`), true).URL
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	if st, _ := m.status(); st.UserData != "vultr" {
		t.Errorf("status %+v", st)
	}
}

func TestUnreachableMetadataIsNoUserData(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens there now

	m := newMachine(t, "web")
	m.cfg.MetadataURL = url
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	// An image with secrets waits (Wait) and then fails, naming the source.
	m = newMachine(t, "web", "kv/data/web/tls")
	m.cfg.MetadataURL, m.cfg.Wait = url, 1500*time.Millisecond
	start := time.Now()
	if code := m.run(); code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	if st, _ := m.status(); !strings.Contains(st.Reason, "unreachable") || time.Since(start) < time.Second {
		t.Errorf("reason %q after %s", st.Reason, time.Since(start))
	}
}

// In the lab (the qemu provider's fw_cfg mark) without user-data, drover-boot boots without secrets
// and never asks a metadata service: user-mode networking would send that off the host.
func TestLabVMNeverAsksTheMetadataService(t *testing.T) {
	fw := filepath.Join(t.TempDir(), "by_name/opt/drover/user-data/raw")
	mark := filepath.Join(filepath.Dir(filepath.Dir(fw)), labMarker)
	if err := os.MkdirAll(mark, 0o755); err != nil {
		t.Fatal(err)
	}
	imds := newIMDS(t, []byte(`{"version":1,"role":"web"}`), false)
	m := newMachine(t, "web")
	m.cfg.FwCfgPath = fw
	m.cfg.MetadataURL = imds.URL
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	imds.mu.Lock()
	defer imds.mu.Unlock()
	if imds.puts != 0 {
		t.Errorf("the metadata service was asked %d time(s) from a lab VM", imds.puts)
	}
	if st, _ := m.status(); st.State != "ok" {
		t.Errorf("status %+v", st)
	}
}

// On an EC2 instance (its SMBIOS vendor) the metadata service is waited for while the network comes
// up, even by an image without secrets: the user-data is there, only not reachable yet.
func TestEC2WaitsForTheMetadataService(t *testing.T) {
	imds := newIMDS(t, []byte(`{"version":1,"role":"web"}`), false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // unreachable until the "network" comes up below
	up := make(chan *http.Server, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			up <- nil
			return
		}
		srv := &http.Server{Handler: imds.Config.Handler}
		up <- srv
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		if srv := <-up; srv != nil {
			srv.Close()
		}
	})

	m := newMachine(t, "web")
	vendor := filepath.Join(m.cfg.Root, "sys/class/dmi/id/sys_vendor")
	if err := os.MkdirAll(filepath.Dir(vendor), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vendor, []byte("Amazon EC2\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	m.cfg.MetadataURL, m.cfg.Wait = "http://"+addr, 10*time.Second
	if code := m.run(); code != exitOK {
		t.Fatalf("exit %d: %s", code, m.stderr.String())
	}
	if st, _ := m.status(); st.UserData != "ec2-imdsv2" {
		t.Errorf("status %+v: the user-data should come from the metadata service once it answers", st)
	}
}
