package testmirror

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// AddNewerVersion simulates an update of one package: it repacks the newest .deb of pkg the
// archive has with the version VERSION+drover1 (or +droverN+1 when it is already a repack), puts it
// in suite (SUITE-security or SUITE-updates, say), re-indexes and re-signs that suite with a Date
// one second later than before, and returns the new version. Only the control file's Version
// changes; the contents and dependencies are the original's, so pick a package that no other one
// depends on with an exact "= VERSION". On error the suite's index files may be
// half rewritten and a stray .deb may be left in the pool: throw the archive away.
func (m *Mirror) AddNewerVersion(ctx context.Context, pkg, suite string) (string, error) {
	if _, ok := m.suites[suite]; !ok {
		return "", fmt.Errorf("testmirror: unknown suite %q (want one of %s)", suite, strings.Join(m.Suites(), ", "))
	}
	var cur stanza
	for _, s := range m.Suites() {
		st, ok := m.suites[s][pkg]
		if !ok {
			continue
		}
		if cur.name == "" {
			cur = st
			continue
		}
		if newer, err := versionGreater(ctx, st.version, cur.version); err != nil {
			return "", err
		} else if newer {
			cur = st
		}
	}
	if cur.name == "" {
		return "", fmt.Errorf("testmirror: the archive has no package %q", pkg)
	}
	version := bumpVersion(cur.version)
	work, err := os.MkdirTemp("", "testmirror-repack-")
	if err != nil {
		return "", fmt.Errorf("testmirror: %w", err)
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-R", filepath.Join(m.Dir, cur.file), root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("testmirror: dpkg-deb -R %s: %w: %s", cur.file, err, out)
	}
	controlPath := filepath.Join(root, "DEBIAN", "control")
	control, err := os.ReadFile(controlPath)
	if err != nil {
		return "", fmt.Errorf("testmirror: %w", err)
	}
	lines := strings.Split(string(control), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "Version:") })
	if i < 0 {
		return "", fmt.Errorf("testmirror: %s has no Version field", cur.file)
	}
	lines[i] = "Version: " + version
	if err := os.WriteFile(controlPath, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return "", fmt.Errorf("testmirror: %w", err)
	}
	deb := filepath.Join(work, "new.deb")
	args := []string{"-b", root, deb}
	if os.Geteuid() != 0 { // dpkg-deb -R kept the owners only as root
		args = append([]string{"--root-owner-group"}, args...)
	}
	build := exec.CommandContext(ctx, "dpkg-deb", args...)
	// The repack's own times are fixed, so repacking the same package twice gives the same bytes.
	build.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1767225600")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testmirror: dpkg-deb -b: %w: %s", err, out)
	}
	st, err := readControl(ctx, deb)
	if err != nil {
		return "", err
	}
	if st, err = m.place(ctx, deb, st); err != nil {
		return "", err
	}
	old, had := m.suites[suite][pkg]
	m.suites[suite][pkg] = st
	if m.date.IsZero() {
		m.date = time.Now()
	}
	m.date = m.date.Add(time.Second)
	if err := m.writeSuite(ctx, suite); err != nil {
		if delete(m.suites[suite], pkg); had {
			m.suites[suite][pkg] = old
		}
		return "", err
	}
	return version, nil
}

var droverSuffix = regexp.MustCompile(`\+drover(\d+)$`)

// bumpVersion is a version newer than v by dpkg's rules: v+drover1, or v's +droverN made N+1.
func bumpVersion(v string) string {
	if m := droverSuffix.FindStringSubmatch(v); m != nil {
		var n int
		fmt.Sscan(m[1], &n)
		return strings.TrimSuffix(v, m[0]) + fmt.Sprintf("+drover%d", n+1)
	}
	return v + "+drover1"
}
