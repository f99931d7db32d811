package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
)

// ciFleet has a role promoted at once (web), one a person promotes (api), and one without a deploy
// block (tools): what a pipeline meets.
const ciFleet = `
compute "sky" "cloud" {
  network = "127.0.89.0"
}

role "web" {
  image {
    base  = "debian-bookworm"
    files = { "/var/www/html/index.html" = "web/index.html" }
  }
  deploy {
    compute      = "cloud"
    count        = 1
    ports        = [18081]
    keep_old     = "0s"
    watch        = "0s"
    auto_promote = true
    health "http" {
      port              = 18081
      interval          = "100ms"
      healthy_threshold = 1
    }
  }
}

role "api" {
  image {
    base  = "debian-bookworm"
    files = { "/etc/api.conf" = "api/api.conf" }
  }
  deploy {
    compute  = "cloud"
    count    = 1
    ports    = [18082]
    keep_old = "0s"
    watch    = "0s"
    health "http" {
      port              = 18082
      interval          = "100ms"
      healthy_threshold = 1
    }
  }
}

role "tools" {
  image {
    base = "debian-bookworm"
  }
}
`

// ciEnv is a fleet directory for drover ci with the sky cloud, a state dir, and a fake drover-boot
// agent (the image identity hashes it; nothing here runs it).
type ciEnv struct {
	t                       testing.TB
	dir, fleet, state, boot string
	cloud                   *skyCloud
	summary                 string
}

func newCIEnv(t testing.TB) *ciEnv {
	return newCIEnvWith(t, ciFleet, map[string]string{"web/index.html": "<h1>one</h1>\n", "api/api.conf": "workers = 2\n"})
}

func newCIEnvWith(t testing.TB, fleetText string, files map[string]string) *ciEnv {
	dir := t.TempDir()
	e := &ciEnv{t: t, dir: dir, fleet: filepath.Join(dir, "drover.hcl"), state: filepath.Join(dir, ".drover"),
		boot: filepath.Join(dir, "agent"), cloud: newSkyCloud(t), summary: filepath.Join(dir, "summary.md")}
	e.write("drover.hcl", fleetText)
	e.write("agent/drover-boot-linux-amd64", "not a real agent\n")
	for path, body := range files {
		e.write(path, body)
	}
	return e
}

func (e *ciEnv) write(rel, body string) {
	e.t.Helper()
	p := filepath.Join(e.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// drover runs the CLI with the sky cloud registered and DROVER_BOOT_DIR set.
func (e *ciEnv) drover(args ...string) (int, string, string) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr, func(k string) (string, bool) {
		if k == "DROVER_BOOT_DIR" {
			return e.boot, true
		}
		return "", false
	})
	a.extraProviders = all.Providers{Compute: []compute.Factory{e.cloud.factory()}}
	code := runApp(a, append([]string{"drover", "--fleet", e.fleet, "--state", e.state}, args...))
	return code, stdout.String(), stderr.String()
}

// built puts the image drover build would make of role for the fleet as it is now in the catalog,
// as if a build (here, or a runner that shares the state) had made it; it returns its identity.
func (e *ciEnv) built(role string) string {
	e.t.Helper()
	// The dry run's JSON names the identity, whatever it decides (exit 1 for a blocked role).
	_, out, _ := e.drover("--output", "json", "ci", "--dry-run", role)
	var res struct{ Roles []ciRole }
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Roles) != 1 || res.Roles[0].Image == "" {
		e.t.Fatalf("ci --dry-run %s: %v\n%s", role, err, out)
	}
	id := res.Roles[0].Image
	cat := images.OpenCatalog(e.state)
	if cat.Has(id) {
		return id
	}
	s, err := cat.Stage(id)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Commit(&images.Manifest{Identity: id, Role: role, Arch: "amd64", Created: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestCIOnEveryCommit runs drover ci as a pipeline would over a series of commits: the first deploy
// (one role promoted at once, one stopped at ready with the commands to promote or roll it back, a
// role without a deploy block left alone), a commit that changes nothing (a fast no-op), a commit
// that changes one role (only that role rolls out), a role blocked by a rollout in flight, the
// dry run, the Markdown summary and the JSON result.
func TestCIOnEveryCommit(t *testing.T) {
	e := newCIEnv(t)
	web1, api1 := e.built("web"), e.built("api")
	e.built("tools")

	// Commit 1: the first deploy.
	code, out, stderr := e.drover("ci", "--summary", e.summary)
	if code != exitWaiting {
		t.Fatalf("first ci: exit %d, want %d (api waits for a promote)\n%s%s", code, exitWaiting, out, stderr)
	}
	for role, want := range map[string]string{
		"web":   images.ShortID(web1) + " rolled-out web-1-", // retired at once: a first deploy keeps no blue
		"api":   images.ShortID(api1) + " waiting api-1-",
		"tools": "up-to-date - -",
	} {
		if got := ciRow(out, role); !strings.Contains(got, want) {
			t.Errorf("first ci: %s's row %q, want %q:\n%s", role, got, want, out)
		}
	}
	for _, want := range []string{
		"next:\n  drover rollout promote api\n  drover rollout rollback api\n",
		"3 role(s): 1 waiting for a promote, 1 rolled out, 1 up to date",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first ci's output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "drover: ci: 3 role(s)") || !strings.Contains(stderr, "promote or roll back by hand") {
		t.Errorf("first ci's stderr: %s", stderr)
	}
	if got := e.cloud.served(t); !slices.Equal(got, sorted(web1, api1)) {
		t.Errorf("the cloud serves %v, want web's and api's first images", got)
	}
	md, err := os.ReadFile(e.summary)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## drover ci: " + e.fleet, "| role | image | result | rollout | detail |",
		"| web | `" + images.ShortID(web1) + "` | rolled-out | ", "| api | `" + images.ShortID(api1) + "` | waiting | ",
		"```sh\ndrover rollout promote api\ndrover rollout rollback api\n```"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the summary lacks %q:\n%s", want, md)
		}
	}

	// Running again before the promote changes nothing and still waits.
	if code, out, _ := e.drover("ci"); code != exitWaiting || !strings.Contains(ciRow(out, "api"), images.ShortID(api1)+" waiting") {
		t.Errorf("ci again before the promote: exit %d\n%s", code, out)
	}
	if code, out, stderr := e.drover("rollout", "promote", "api"); code != exitOK {
		t.Fatalf("promote api: exit %d\n%s%s", code, out, stderr)
	}

	// A commit that changes no image: nothing to do, exit 0, quickly.
	start := time.Now()
	code, out, stderr = e.drover("ci")
	if code != exitOK || !strings.Contains(out, "3 role(s): 3 up to date") {
		t.Fatalf("ci with nothing changed: exit %d\n%s%s", code, out, stderr)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("ci with nothing changed took %s", took)
	}

	// Commit 2 changes web's page: the dry run says so and does nothing; ci rolls out web only.
	e.write("web/index.html", "<h1>two</h1>\n")
	code, out, _ = e.drover("ci", "--dry-run")
	if code != exitOK || !strings.Contains(out, "would-roll-out") || !strings.Contains(out, "the image is built first") || !strings.Contains(out, "1 would be rolled out, 2 up to date") {
		t.Errorf("dry run after commit 2: exit %d\n%s", code, out)
	}
	if got := e.cloud.served(t); !slices.Equal(got, sorted(web1, api1)) {
		t.Errorf("the dry run changed what serves: %v", got)
	}
	web2 := e.built("web")
	code, out, stderr = e.drover("--output", "json", "ci")
	if code != exitOK {
		t.Fatalf("ci after commit 2: exit %d\n%s%s", code, out, stderr)
	}
	var res struct {
		OK       bool     `json:"ok"`
		ExitCode int      `json:"exit_code"`
		Roles    []ciRole `json:"roles"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("ci --output json: stdout is not one JSON object: %v\n%s", err, out)
	}
	results := map[string]string{}
	for _, r := range res.Roles {
		results[r.Role] = r.Result
	}
	if !res.OK || res.ExitCode != 0 || results["web"] != ciRolledOut || results["api"] != ciUpToDate || results["tools"] != ciUpToDate {
		t.Errorf("ci after commit 2: %+v", res)
	}
	if !strings.Contains(stderr, `"event":"rollout"`) {
		t.Errorf("no rollout events on stderr in JSON mode:\n%s", stderr)
	}
	if got := e.cloud.served(t); !slices.Equal(got, sorted(web2, api1)) {
		t.Errorf("after commit 2 the cloud serves %v, want web's second image and api's first", got)
	}

	// Commit 3 changes api while a person has started a rollout of another api image by hand:
	// ci leaves that rollout alone, says so, and fails.
	e.write("api/api.conf", "workers = 3\n")
	api2 := e.built("api")
	if code, out, stderr := e.drover("rollout", "start", "--image", api2, "api"); code != exitOK {
		t.Fatalf("rollout start api by hand: exit %d\n%s%s", code, out, stderr)
	}
	e.write("api/api.conf", "workers = 4\n")
	e.built("api")
	code, out, stderr = e.drover("ci")
	if code != exitFailure || !strings.HasPrefix(ciRow(out, "api"), "api "+images.ShortID(e.built("api"))+" blocked") || !strings.Contains(out, "promote, roll back or abort it first") ||
		!strings.Contains(out, "drover rollout status api") {
		t.Errorf("ci with api's rollout in flight: exit %d\n%s%s", code, out, stderr)
	}
}

// ciRow is role's row of drover ci's table, its columns joined by one space.
func ciRow(out, role string) string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == role {
			return strings.Join(f, " ")
		}
	}
	return ""
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// BenchmarkCINothingChanged is drover ci on a commit that changes no image, in-process, on a fleet
// of five deployed roles (the example's size): five identities, five rollout statuses, the summary.
// The goal is under 2 s for the whole command.
func BenchmarkCINothingChanged(b *testing.B) {
	var fleetText strings.Builder
	fleetText.WriteString("compute \"sky\" \"cloud\" {\n  network = \"127.0.90.0\"\n}\n")
	roles := []string{"web", "api", "db", "dns", "vault"}
	files := map[string]string{}
	for i, r := range roles {
		port := 18090 + i
		fmt.Fprintf(&fleetText, `
role %q {
  image {
    base  = "debian-bookworm"
    files = { "/etc/%s.conf" = "%s/%s.conf" }
  }
  deploy {
    compute      = "cloud"
    count        = 1
    ports        = [%d]
    keep_old     = "0s"
    watch        = "0s"
    auto_promote = true
    health "http" {
      port              = %d
      interval          = "100ms"
      healthy_threshold = 1
    }
  }
}
`, r, r, r, r, port, port)
		files[r+"/"+r+".conf"] = r + "\n"
	}
	e := newCIEnvWith(b, fleetText.String(), files)
	for _, r := range roles {
		e.built(r)
	}
	if code, out, stderr := e.drover("ci"); code != exitOK {
		b.Fatalf("first ci: exit %d\n%s%s", code, out, stderr)
	}
	for b.Loop() {
		if code, out, stderr := e.drover("ci"); code != exitOK || !strings.Contains(out, "5 role(s): 5 up to date") {
			b.Fatalf("ci: exit %d\n%s%s", code, out, stderr)
		}
	}
}
