//go:build e2e

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/rollout/health"
)

// TestE2EBuild builds the example's web, dns and db roles from scratch with the real tools, boots the
// web image under UEFI and BIOS, the dns and db images under UEFI, and then checks caching, rebuilds, the SBOM, hygiene and every failure
// path against that one state directory: each test image is built once.
func TestE2EBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	// db is booted bare below (no Vault, no volume): without its secret, drover-boot has nothing to
	// fetch and lets PostgreSQL start on the cluster the package made in the image. Deployed, it
	// waits for its volume (TestE2EDBHandoff).
	editFleet(t, fleetFile, `    secrets = ["kv/data/db/postgres"]`+"\n", "")
	state := filepath.Join(fleetDir, ".drover")
	drover := func(args ...string) result {
		t.Helper()
		return droverExec(t, nil, append([]string{"--fleet", fleetFile}, args...)...)
	}
	show := func(ref string) *images.Manifest {
		t.Helper()
		r := drover("--output", "json", "images", "show", ref)
		var m images.Manifest
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil {
			t.Fatalf("images show %s: exit %d\n%s", ref, r.code, r.stdout)
		}
		return &m
	}
	catalogIDs := func() []string {
		t.Helper()
		list, err := images.OpenCatalog(state).List()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range list {
			ids = append(ids, m.Identity)
		}
		sort.Strings(ids)
		return ids
	}
	assertClean := func(t *testing.T, before []string) {
		t.Helper()
		if after := catalogIDs(); strings.Join(after, " ") != strings.Join(before, " ") {
			t.Errorf("the catalog changed: before %v, after %v", before, after)
		}
		if m := mountsUnder(t, fleetDir); len(m) > 0 {
			t.Errorf("mounts left behind: %v", m)
		}
		entries, _ := os.ReadDir(filepath.Join(state, "images"))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("staging directory left behind: %s", e.Name())
			}
		}
	}

	cold := drover("build", "web", "dns", "db")
	if cold.code != 0 {
		t.Fatalf("cold build failed: exit %d", cold.code)
	}
	for _, want := range []string{"web: built sha256:", "dns: built sha256:", "db: built sha256:"} {
		if !strings.Contains(cold.stdout, want) {
			t.Errorf("cold build output lacks %q", want)
		}
	}
	web := show("web")
	raw := filepath.Join(state, "images", strings.TrimPrefix(web.Identity, "sha256:"), "disk.raw")

	t.Run("web boots under UEFI and BIOS and nginx answers through a host forward", func(t *testing.T) {
		for _, fw := range []string{"uefi", "bios"} {
			body, took := bootAndGet(t, raw, fw, 4*time.Minute)
			if !strings.Contains(body, "hello from the web role, version 1") {
				t.Errorf("%s: nginx served %q", fw, body)
			}
			t.Logf("%s: HTTP 200 after %s", fw, took.Round(time.Second))
		}
	})

	t.Run("dns boots and Knot answers for its zone", func(t *testing.T) {
		kdig, err := exec.LookPath("kdig")
		if err != nil {
			t.Fatal("kdig (knot-dnsutils) is needed to ask the dns role's Knot")
		}
		dns := show("dns")
		dnsRaw := filepath.Join(state, "images", strings.TrimPrefix(dns.Identity, "sha256:"), "disk.raw")
		port := freePort(t)
		var answer string
		took := bootAndProbe(t, dnsRaw, "uefi", 4*time.Minute, port, 53, func() bool {
			out, _ := exec.Command(kdig, "+tcp", "+short", "+time=2", "+retry=0", "-p", strconv.Itoa(port), "@127.0.0.1", "www.lab.example", "A").Output()
			answer = strings.TrimSpace(string(out))
			return answer == "127.0.0.100"
		})
		t.Logf("dns: Knot answered www.lab.example A %s after %s", answer, took.Round(time.Second))
	})

	t.Run("db boots and PostgreSQL answers the protocol handshake", func(t *testing.T) {
		db := show("db")
		dbRaw := filepath.Join(state, "images", strings.TrimPrefix(db.Identity, "sha256:"), "disk.raw")
		check, err := health.NewRegistry().Build(fleet.HealthCheck{Type: "postgres", Port: 5432, Timeout: 2 * time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		var last error
		defer func() {
			if t.Failed() {
				t.Logf("last postgres probe: %v", last)
			}
		}()
		took := bootAndProbe(t, dbRaw, "uefi", 4*time.Minute, port, 5432, func() bool {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			last = check.Prober.Probe(ctx, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)))
			return last == nil
		})
		t.Logf("db: PostgreSQL answered the SSLRequest handshake after %s", took.Round(time.Second))
	})

	t.Run("a second build is a no-op, with one JSON event per image", func(t *testing.T) {
		j := drover("--output", "json", "build", "web", "dns")
		cached := 0
		for _, line := range strings.Split(strings.TrimSpace(j.stdout), "\n") {
			var e struct {
				Event  string `json:"event"`
				Cached bool   `json:"cached"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not a JSON event: %q", line)
			}
			if e.Event == "image" && e.Cached {
				cached++
			}
		}
		if j.code != 0 || cached != 2 {
			t.Errorf("exit %d, %d cached image events, want 2", j.code, cached)
		}
		r := drover("build", "web", "dns")
		if r.code != 0 || !strings.Contains(r.stdout, "web: up to date (sha256:") || !strings.Contains(r.stdout, "dns: up to date (sha256:") {
			t.Fatalf("exit %d, output:\n%s", r.code, r.stdout)
		}
		if strings.Contains(r.stdout, "built") {
			t.Errorf("something was rebuilt:\n%s", r.stdout)
		}
	})

	t.Run("one changed file rebuilds only its role and reuses the base tree", func(t *testing.T) {
		page := filepath.Join(fleetDir, "web/index.html")
		if err := os.WriteFile(page, []byte("<h1>hello from the web role, version 2</h1>\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := drover("build", "web", "dns")
		if r.code != 0 || !strings.Contains(r.stdout, "web: built sha256:") || !strings.Contains(r.stdout, "dns: up to date") {
			t.Fatalf("exit %d, output:\n%s", r.code, r.stdout)
		}
		web2 := show("web")
		if web2.Identity == web.Identity {
			t.Fatal("the changed page did not change the identity")
		}
		log, err := os.ReadFile(filepath.Join(state, "images", strings.TrimPrefix(web2.Identity, "sha256:"), web2.BuildLog))
		if err != nil || !strings.Contains(string(log), ": cached") {
			t.Errorf("the rebuild did not reuse the cached base tree (build log: %v)\n%s", err, log)
		}
		d := drover("--output", "json", "images", "diff", "web@"+web.ShortID(), "web@"+web2.ShortID())
		var diff images.Diff
		if d.code != 0 || json.Unmarshal([]byte(d.stdout), &diff) != nil {
			t.Fatalf("images diff: exit %d", d.code)
		}
		changed := false
		for _, f := range diff.Files {
			changed = changed || (f.Path == "/var/www/html/index.html" && f.Change == "changed")
		}
		if !changed || len(diff.Added)+len(diff.Removed)+len(diff.Changed) != 0 {
			t.Errorf("diff should show only the page: %+v", diff)
		}
	})

	t.Run("the one-file rebuild boots and equals a build that makes the base filesystem image anew", func(t *testing.T) {
		web2 := show("web")
		raw2 := filepath.Join(state, "images", strings.TrimPrefix(web2.Identity, "sha256:"), "disk.raw")
		body, took := bootAndGet(t, raw2, "uefi", 4*time.Minute)
		if !strings.Contains(body, "hello from the web role, version 2") {
			t.Errorf("the rebuilt image's nginx served %q", body)
		}
		t.Logf("uefi: HTTP 200 after %s", took.Round(time.Second))
		cacheDir := filepath.Join(state, "cache")
		if dir := os.Getenv("DROVER_TEST_CACHE"); dir != "" {
			cacheDir = filepath.Join(dir, "drover")
		}
		kept, _ := filepath.Glob(filepath.Join(cacheDir, "rootfs", web2.BaseTreeEntry+"-*.ext4"))
		if len(kept) == 0 {
			t.Fatalf("no base filesystem image of %s kept in %s", web2.BaseTreeEntry, cacheDir)
		}
		for _, k := range kept {
			if err := os.Remove(k); err != nil {
				t.Fatal(err)
			}
		}
		if r := drover("build", "--force", "web"); r.code != 0 {
			t.Fatalf("forced rebuild: exit %d\n%s", r.code, r.stderr)
		}
		if anew := show("web"); anew.Identity != web2.Identity || anew.ArtifactSHA256 != web2.ArtifactSHA256 {
			t.Errorf("a build with a new base filesystem image gave %s (%s), the one-file rebuild %s (%s)",
				anew.ArtifactSHA256, anew.Identity, web2.ArtifactSHA256, web2.Identity)
		}
	})

	t.Run("the manifest's packages match dpkg-query in the image, and hygiene holds", func(t *testing.T) {
		root := extractRoot(t, raw)
		admin := t.TempDir()
		debugfs(t, root, "dump /var/lib/dpkg/status "+filepath.Join(admin, "status"))
		out, err := exec.Command("dpkg-query", "--admindir="+admin, "-W", "-f", "${db:Status-Abbrev}|${Package}|${Version}|${Architecture}\n").Output()
		if err != nil {
			t.Fatalf("dpkg-query: %v", err)
		}
		var inImage []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Split(line, "|")
			if len(f) == 4 && strings.HasPrefix(f[0], "ii") {
				inImage = append(inImage, f[1]+" "+f[2]+" "+f[3])
			}
		}
		var inManifest []string
		for _, p := range web.Packages {
			inManifest = append(inManifest, p.Name+" "+p.Version+" "+p.Arch)
		}
		sort.Strings(inImage)
		sort.Strings(inManifest)
		if len(inImage) < 100 || strings.Join(inImage, "\n") != strings.Join(inManifest, "\n") {
			t.Errorf("manifest (%d packages) and dpkg-query (%d) differ", len(inManifest), len(inImage))
		}
		if st := debugfs(t, root, "stat /etc/machine-id"); !strings.Contains(st, "Size: 0") {
			t.Errorf("/etc/machine-id is not empty:\n%s", st)
		}
		if ls := debugfs(t, root, "ls -l /etc/ssh"); strings.Contains(ls, "ssh_host_") {
			t.Errorf("SSH host keys are baked:\n%s", ls)
		}
		if ls := debugfs(t, root, "ls /var/lib/apt/lists"); strings.Contains(ls, "_Packages") || strings.Contains(ls, "InRelease") {
			t.Errorf("apt lists are baked:\n%s", ls)
		}
		if img := debugfs(t, root, "cat /etc/drover/image.json"); !strings.Contains(img, web.Identity) {
			t.Errorf("image.json does not carry the identity:\n%s", img)
		}
	})

	t.Run("the example's clean web image has no secret finding", func(t *testing.T) {
		js := drover("--output", "json", "images", "scan", "web")
		var res scanOutput
		if err := json.Unmarshal([]byte(js.stdout), &res); err != nil || js.code != exitOK {
			t.Fatalf("images scan web --output json: exit %d, %v", js.code, err)
		}
		if !res.OK || len(res.Findings) != 0 || res.Tree.Files < 1000 {
			t.Errorf("images scan web: ok %v, %d finding(s), %d files scanned: %+v", res.OK, len(res.Findings), res.Tree.Files, res.Findings)
		}
		t.Logf("web: %d files, %d bytes scanned in %.1fs, %d allowlisted, 0 findings", res.Tree.Files, res.Tree.Bytes, res.Tree.Seconds, res.Tree.Allowlisted)
	})

	t.Run("a role whose made_by file is not made fails at once naming what makes it", func(t *testing.T) {
		before := catalogIDs()
		r := drover("build", "vault")
		if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "is not made yet (go tool task vault makes it)") ||
			!strings.Contains(r.stderr, "(hint: make it first: go tool task vault)") || r.elapsed > 10*time.Second {
			t.Errorf("exit %d in %s:\n%s%s", r.code, r.elapsed, r.stdout, r.stderr)
		}
		if after := catalogIDs(); len(after) != len(before) {
			t.Errorf("the catalog changed: %v -> %v", before, after)
		}
	})

	addRole := func(t *testing.T, hcl string) {
		t.Helper()
		f, err := os.OpenFile(fleetFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("\n" + hcl + "\n"); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a failing command names the role, the step, its exit code and output; nothing changes", func(t *testing.T) {
		before := catalogIDs()
		addRole(t, `role "broken" {
  image {
    base     = "debian-bookworm"
    packages = ["nginx"]
    run      = ["echo preparing; echo boom-from-the-command >&2; exit 3"]
  }
}`)
		r := drover("build", "broken")
		if r.code != 1 {
			t.Fatalf("exit %d, want 1", r.code)
		}
		for _, want := range []string{"broken", "run", "3", "boom-from-the-command"} {
			if !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("the failure does not mention %q:\n%s%s", want, r.stdout, r.stderr)
			}
		}
		if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "(hint: ") {
			t.Errorf("the failure is not one line with a hint:\n%s", r.stderr)
		}
		assertClean(t, before)
	})

	t.Run("an unknown package fails the base tree step; nothing changes", func(t *testing.T) {
		before := catalogIDs()
		addRole(t, `role "nopkg" {
  image {
    base     = "debian-bookworm"
    packages = ["drover-no-such-package"]
  }
}`)
		r := drover("build", "nopkg")
		if out := r.stdout + r.stderr; r.code != 1 || !strings.Contains(out, "nopkg") || !strings.Contains(out, "base tree") || !strings.Contains(out, "drover-no-such-package") {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
		assertClean(t, before)
	})

	t.Run("an unreachable mirror fails fast; nothing changes", func(t *testing.T) {
		before := catalogIDs()
		addRole(t, `base "nowhere" {
  mirror = "http://127.0.0.1:9/debian"
}
role "offline" {
  image {
    base = "nowhere"
  }
}`)
		r := drover("build", "offline")
		if out := r.stdout + r.stderr; r.code != 1 || !strings.Contains(out, "offline") || !strings.Contains(out, "base tree") {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
		if r.elapsed > 2*time.Minute {
			t.Errorf("took %s to notice the mirror is unreachable", r.elapsed)
		}
		assertClean(t, before)
	})

	t.Run("an interrupted build leaves no mounts, trees or half images", func(t *testing.T) {
		before := catalogIDs()
		cmd := exec.Command(filepath.Join(binDir, "drover"), "--fleet", fleetFile, "build", "--force", "web")
		cmd.Env = append(append(os.Environ(), "DROVER_BOOT_DIR="+binDir, "CI=true"), sharedCache()...)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		sc := bufio.NewScanner(stdout)
		interrupted := false
		for sc.Scan() {
			t.Log(sc.Text())
			if strings.HasPrefix(sc.Text(), "web: files") && !interrupted {
				// Inside the agent or run step, a chroot with mounts: the agent step takes 0.1-0.3 s
				// here, and the whole rebuild about 3 s, the disk step most of it.
				time.Sleep(100 * time.Millisecond)
				_ = cmd.Process.Signal(syscall.SIGINT)
				interrupted = true
			}
		}
		err := cmd.Wait()
		if !interrupted || err == nil {
			t.Fatalf("interrupted=%v, exit error %v", interrupted, err)
		}
		assertClean(t, before)
	})

	t.Run("a full disk fails with the role and step named; nothing changes", func(t *testing.T) {
		small := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", small).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a small tmpfs here: %v %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
		cache := []string{"DROVER_CACHE_DIR=" + filepath.Join(state, "cache")}
		if shared := sharedCache(); shared != nil {
			cache = shared
		}
		r := droverExec(t, cache, "--fleet", fleetFile, "--state", small, "build", "web")
		if out := r.stdout + r.stderr; r.code != 1 || !strings.Contains(out, "web") || !strings.Contains(strings.ToLower(out), "no space left") {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
		entries, _ := os.ReadDir(filepath.Join(small, "images"))
		for _, e := range entries {
			t.Errorf("left in the catalog of the full disk: %s", e.Name())
		}
	})
}

// extractRoot copies the root partition (the second) out of a raw disk.
func extractRoot(t *testing.T, raw string) string {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", raw).Output()
	if err != nil {
		t.Fatalf("sfdisk: %v", err)
	}
	var pt struct {
		PartitionTable struct {
			Partitions []struct{ Start, Size int64 } `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil || len(pt.PartitionTable.Partitions) < 2 {
		t.Fatalf("partition table: %v %s", err, out)
	}
	p := pt.PartitionTable.Partitions[1]
	root := filepath.Join(t.TempDir(), "root.ext4")
	dd := exec.Command("dd", "if="+raw, "of="+root, "bs=512", "skip="+strconv.FormatInt(p.Start, 10), "count="+strconv.FormatInt(p.Size, 10), "status=none")
	if b, err := dd.CombinedOutput(); err != nil {
		t.Fatalf("dd: %v %s", err, b)
	}
	return root
}

func debugfs(t *testing.T, fs, request string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", request, fs).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %q: %v\n%s", request, err, out)
	}
	return string(out)
}
