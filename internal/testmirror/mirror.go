// Package testmirror makes signed local Debian archives for tests: a real file:// mirror, with
// pool/, Packages indexes and InRelease files clearsigned by a key made for it, that apt and
// mmdebstrap accept with that key and no other configuration. Tests of any package use it to build
// images without the network, reproducibly, and to simulate a security update of one package.
//
// It needs dpkg-deb and gpg (with gpg-agent) on PATH. Nothing here is safe for concurrent use of
// one Mirror; separate Mirrors are independent.
package testmirror

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Options say what archive New makes.
type Options struct {
	// Dir is where the archive is made; it must not exist or be empty. On the same filesystem as
	// Debs, the .debs are hard links (cheap); otherwise they are copied.
	Dir string
	// Debs is a directory of .deb files (such as an mmdebstrap archive cache). Of each package the
	// newest version goes into SUITE; older ones are left out, so the archive is consistent.
	Debs string
	// Suite is the distribution's codename, e.g. bookworm. The archive also has SUITE-updates and
	// SUITE-security, empty until AddNewerVersion puts something there.
	Suite string
	// Arch is the Debian architecture of the index, e.g. amd64 (Architecture: all packages are
	// listed in it too).
	Arch string
	// Date is the Release files' Date; zero means now.
	Date time.Time
}

// Mirror is a signed archive on disk.
type Mirror struct {
	// Dir is the archive's root (it has dists/ and pool/).
	Dir   string
	Suite string
	Arch  string
	// Keyring is the archive key's public part, as gpg --export writes it (a binary OpenPGP
	// keyring): what apt's signed-by and mmdebstrap's --keyring take.
	Keyring string
	date    time.Time
	gnupg   string
	// suites holds each suite's packages, by name (one version each).
	suites map[string]map[string]stanza
}

// stanza is one package's paragraph in a Packages index.
type stanza struct {
	name, version, control string // control: the .deb's control fields, without a trailing newline
	file                   string // path relative to Dir
	size                   int64
	md5, sha256            string
}

// URL is the archive as apt's sources.list names it.
func (m *Mirror) URL() string { return "file://" + m.Dir }

// Suites are the archive's suites: SUITE, SUITE-updates, SUITE-security.
func (m *Mirror) Suites() []string {
	return []string{m.Suite, m.Suite + "-updates", m.Suite + "-security"}
}

// New makes the archive described by opts, with a fresh signing key in a temporary GNUPGHOME.
// Call Close when done (it stops the key's gpg-agent). On error, whatever was made in opts.Dir is
// left for the caller to remove, and no gpg-agent is left running.
func New(ctx context.Context, opts Options) (m *Mirror, err error) {
	if opts.Dir == "" || opts.Debs == "" || opts.Suite == "" || opts.Arch == "" {
		return nil, errors.New("testmirror: Dir, Debs, Suite and Arch are required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("testmirror: %w", err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("testmirror: %s is not empty", dir)
	}
	pool := filepath.Join(dir, "pool", "main")
	if err := os.MkdirAll(pool, 0o755); err != nil {
		return nil, fmt.Errorf("testmirror: %w", err)
	}
	m = &Mirror{Dir: dir, Suite: opts.Suite, Arch: opts.Arch, date: opts.Date, suites: map[string]map[string]stanza{}}
	for _, s := range m.Suites() {
		m.suites[s] = map[string]stanza{}
	}
	if m.gnupg, err = os.MkdirTemp("", "testmirror-gnupg-"); err != nil {
		return nil, fmt.Errorf("testmirror: %w", err)
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := m.makeKey(ctx); err != nil {
		return nil, err
	}
	debs, err := filepath.Glob(filepath.Join(opts.Debs, "*.deb"))
	if err != nil || len(debs) == 0 {
		return nil, fmt.Errorf("testmirror: no .deb files in %s", opts.Debs)
	}
	newest := map[string]stanza{}
	for _, deb := range debs {
		st, err := readControl(ctx, deb)
		if err != nil {
			return nil, err
		}
		if arch := field(st.control, "Architecture"); arch != opts.Arch && arch != "all" {
			continue
		}
		st.file = deb // the source, until placed in the pool
		if old, ok := newest[st.name]; ok {
			if newer, err := versionGreater(ctx, old.version, st.version); err != nil || newer {
				continue
			}
		}
		newest[st.name] = st
	}
	for name, st := range newest {
		placed, err := m.place(ctx, st.file, st)
		if err != nil {
			return nil, err
		}
		m.suites[m.Suite][name] = placed
	}
	if err := m.writeAll(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Close stops the gpg-agent of the archive's key and removes its GNUPGHOME. The archive and the
// keyring stay; after Close the archive can no longer be re-signed. Calling it twice is harmless.
func (m *Mirror) Close() error {
	if m.gnupg == "" {
		return nil
	}
	_ = exec.Command("gpgconf", "--homedir", m.gnupg, "--kill", "gpg-agent").Run()
	err := os.RemoveAll(m.gnupg)
	m.gnupg = ""
	return err
}

// Version is the version of pkg that suite offers ("" when it has none).
func (m *Mirror) Version(suite, pkg string) string { return m.suites[suite][pkg].version }

// place puts the .deb src into the pool under its Debian file name and fills in the index fields.
func (m *Mirror) place(ctx context.Context, src string, st stanza) (stanza, error) {
	arch := field(st.control, "Architecture")
	name := st.name + "_" + strings.ReplaceAll(st.version, ":", "%3a") + "_" + arch + ".deb"
	rel := filepath.Join("pool", "main", name)
	dst := filepath.Join(m.Dir, rel)
	if err := os.Link(src, dst); err != nil && !os.IsExist(err) {
		if err := copyFile(src, dst); err != nil {
			return st, fmt.Errorf("testmirror: %w", err)
		}
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		return st, fmt.Errorf("testmirror: %w", err)
	}
	md := md5.Sum(b)
	sh := sha256.Sum256(b)
	st.file, st.size, st.md5, st.sha256 = rel, int64(len(b)), hex.EncodeToString(md[:]), hex.EncodeToString(sh[:])
	return st, ctx.Err()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// readControl reads a .deb's control paragraph with dpkg-deb.
func readControl(ctx context.Context, deb string) (stanza, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb).Output()
	if err != nil {
		return stanza{}, fmt.Errorf("testmirror: dpkg-deb -f %s: %w", deb, err)
	}
	control := strings.TrimRight(string(out), "\n")
	st := stanza{name: field(control, "Package"), version: field(control, "Version"), control: control}
	if st.name == "" || st.version == "" {
		return stanza{}, fmt.Errorf("testmirror: %s has no Package or Version field", deb)
	}
	return st, nil
}

// field is the value of a single-line field of a control paragraph.
func field(control, name string) string {
	for _, line := range strings.Split(control, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// versionGreater says whether Debian version a is newer than b (dpkg --compare-versions).
func versionGreater(ctx context.Context, a, b string) (bool, error) {
	err := exec.CommandContext(ctx, "dpkg", "--compare-versions", a, "gt", b).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false, nil
	}
	return false, fmt.Errorf("testmirror: dpkg --compare-versions %s gt %s: %w", a, b, err)
}

// writeAll writes every suite's indexes and signed Release files.
func (m *Mirror) writeAll(ctx context.Context) error {
	for _, s := range m.Suites() {
		if err := m.writeSuite(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// writeSuite writes dists/SUITE/main/binary-ARCH/Packages(.gz), Release, Release.gpg and
// InRelease. Files are replaced in place; a reader in the middle may see a mix, so tests write
// before apt reads.
func (m *Mirror) writeSuite(ctx context.Context, suite string) error {
	dists := filepath.Join(m.Dir, "dists", suite)
	index := filepath.Join("main", "binary-"+m.Arch)
	if err := os.MkdirAll(filepath.Join(dists, index), 0o755); err != nil {
		return fmt.Errorf("testmirror: %w", err)
	}
	var names []string
	for n := range m.suites[suite] {
		names = append(names, n)
	}
	sort.Strings(names)
	var packages bytes.Buffer
	for _, n := range names {
		st := m.suites[suite][n]
		fmt.Fprintf(&packages, "%s\nFilename: %s\nSize: %d\nMD5sum: %s\nSHA256: %s\n\n", st.control, st.file, st.size, st.md5, st.sha256)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // no name, zero mtime: same bytes every time
	zw.Write(packages.Bytes())
	zw.Close()
	files := map[string][]byte{
		filepath.Join(index, "Packages"):    packages.Bytes(),
		filepath.Join(index, "Packages.gz"): gz.Bytes(),
	}
	var paths []string
	for p, b := range files {
		if err := os.WriteFile(filepath.Join(dists, p), b, 0o644); err != nil {
			return fmt.Errorf("testmirror: %w", err)
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	date := m.date
	if date.IsZero() {
		date = time.Now()
	}
	var rel strings.Builder
	fmt.Fprintf(&rel, "Origin: drover-testmirror\nLabel: drover-testmirror\nSuite: %s\nCodename: %s\n", suite, suite)
	fmt.Fprintf(&rel, "Date: %s\nArchitectures: %s\nComponents: main\nDescription: a local test archive made by drover's testmirror\n",
		date.UTC().Format("Mon, 02 Jan 2006 15:04:05 UTC"), m.Arch)
	for _, sum := range []struct {
		name string
		hash func([]byte) string
	}{
		{"MD5Sum", func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }},
		{"SHA256", func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }},
	} {
		rel.WriteString(sum.name + ":\n")
		for _, p := range paths {
			fmt.Fprintf(&rel, " %s %d %s\n", sum.hash(files[p]), len(files[p]), filepath.ToSlash(p))
		}
	}
	release := filepath.Join(dists, "Release")
	if err := os.WriteFile(release, []byte(rel.String()), 0o644); err != nil {
		return fmt.Errorf("testmirror: %w", err)
	}
	return m.sign(ctx, release)
}
