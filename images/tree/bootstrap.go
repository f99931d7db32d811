package tree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mirrorCheckTimeout bounds the check that the mirror answers: apt would
// retry an unreachable mirror for much longer before giving up.
const mirrorCheckTimeout = 15 * time.Second

// build is one mmdebstrap run.
type build struct {
	spec    BaseSpec // normalized and valid
	root    string   // the tree to create; must not exist
	debs    string   // shared .deb cache, synced in
	debsOut string   // where this build's .debs are synced out to
	log     io.Writer
	keyring string // the spec's Keyring as a file, written by run; "" without one
}

func (b build) run(ctx context.Context) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("mmdebstrap not found (apt-get install mmdebstrap): %w", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("mmdebstrap --mode=root needs root")
	}
	if err := ensureEmulation(ctx, b.spec.Arch, b.log); err != nil {
		return err
	}
	if err := checkSources(ctx, b.spec); err != nil {
		return err
	}
	if err := os.MkdirAll(b.debsOut, 0o755); err != nil {
		return err
	}
	removeKeyring, err := b.writeKeyring()
	if err != nil {
		return err
	}
	defer removeKeyring()
	args, err := b.args()
	if err != nil {
		return err
	}
	if err := b.bootstrap(ctx, args); err != nil {
		return err
	}
	// mmdebstrap copies the host's resolv.conf and hostname into the tree;
	// the cached tree must not depend on the host it was built on. Run
	// lends the host's resolver to commands while they run. A symlink is
	// the tree's own (systemd-resolved's stub) and stays.
	for _, p := range []string{"etc/resolv.conf", "etc/hostname"} {
		if fi, err := os.Lstat(filepath.Join(b.root, p)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			continue
		}
		if err := removeIfMissingOK(filepath.Join(b.root, p)); err != nil {
			return err
		}
	}
	harvestDebs(b.debsOut, b.debs, b.log)
	return nil
}

// bootstrap runs mmdebstrap with args. mmdebstrap installs the extra packages only after the
// essential ones, a minute or more in; a simulated run resolves the whole set in tens of seconds,
// so an unknown or uninstallable package fails fast. The simulation runs beside the build rather
// than before it (it cost 32 s of a cold build under load, most of it apt fetching and parsing the
// indexes): when it fails, the build is stopped and the simulation's error returned; when it
// passes, the build goes on. Its output goes to the log once it ends, not mixed into the build's.
func (b build) bootstrap(ctx context.Context, args []string) error {
	if len(b.spec.Packages) == 0 {
		return b.mmdebstrap(ctx, args, "mmdebstrap")
	}
	buildCtx, stop := context.WithCancel(ctx)
	defer stop()
	type simulation struct {
		err     error
		stopped bool // it failed on its own, before anything stopped it, and stopped the build
		out     bytes.Buffer
	}
	done := make(chan *simulation, 1)
	go func() {
		sim, res := b, &simulation{}
		sim.log = &res.out
		fmt.Fprintf(&res.out, "tree: checking the package set with mmdebstrap --simulate\n")
		res.err = sim.mmdebstrap(buildCtx, b.simulateArgs(), "mmdebstrap --simulate")
		if res.err != nil && buildCtx.Err() == nil {
			res.stopped = true
			stop()
		}
		done <- res
	}()
	built := b.mmdebstrap(buildCtx, args, "mmdebstrap")
	stop() // the simulation has nothing left to tell once the build has ended, either way
	res := <-done
	_, _ = b.log.Write(res.out.Bytes())
	if res.stopped && ctx.Err() == nil {
		return res.err
	}
	return built
}

// mmdebstrap runs mmdebstrap with args. In a private mount namespace,
// its mounts of /proc, /sys and /dev in the tree vanish even if it is
// killed before it unmounts them; in a private UTS namespace named
// localhost, package scripts do not record the build host's name.
func (b build) mmdebstrap(ctx context.Context, args []string, what string) error {
	fmt.Fprintf(b.log, "+ %s\n", strings.Join(args, " "))
	env, err := b.env()
	if err != nil {
		return err
	}
	f := run(ctx, command{
		args:    append([]string{"/bin/sh", "-c", "echo localhost >/proc/sys/kernel/hostname && exec \"$@\"", "drover-mmdebstrap"}, args...),
		env:     env,
		log:     b.log,
		isolate: true,
	})
	if f == nil {
		return nil
	}
	se := f.asStepError("bootstrap", what+" "+b.spec.String())
	if pkgs := unknownPackages(f.tail); len(pkgs) > 0 {
		se.Err = fmt.Errorf("unknown package %s in %s: %w", strings.Join(pkgs, ", "), b.spec.MirrorURL(), se.Err)
	}
	return se
}

// simulateArgs is the command line of a simulated build of the same
// package set: no tree, no hooks.
func (b build) simulateArgs() []string {
	args := []string{"mmdebstrap", "--simulate", "--mode=root", "--variant=apt",
		"--architectures=" + b.spec.Arch,
		"--components=" + strings.Join(b.spec.Components, ",")}
	args = append(args, b.aptOpts()...)
	if b.keyring != "" {
		args = append(args, "--keyring="+b.keyring)
	}
	args = append(args, "--include="+strings.Join(b.spec.Packages, ","), b.spec.Suite, "/dev/null")
	return append(args, b.bootstrapSourceLines()...)
}

// args is mmdebstrap's command line. The apt variant is Essential: yes
// plus apt, the smallest set that still has a package manager; the caller
// adds what makes the tree boot. Downloaded .debs are kept the way
// mmdebstrap documents: the shared cache is synced into the tree's
// /var/cache/apt/archives before the download step and synced out after
// installation, with essential/unlink skipped so the essential packages
// are still there to sync out (download/empty is skipped for mmdebstrap
// 1.4 and later, which otherwise insist on an empty archive cache).
// mmdebstrap's own cleanup removes apt lists and the archive cache from the
// tree afterwards, so nothing later needs them.
func (b build) args() ([]string, error) {
	args := []string{
		"mmdebstrap", "--mode=root", "--variant=apt", "--format=directory",
		"--architectures=" + b.spec.Arch,
		"--components=" + strings.Join(b.spec.Components, ","),
		"--skip=essential/unlink,download/empty",
		`--setup-hook=mkdir -p "$1/var/cache/apt/archives/"`,
		"--setup-hook=sync-in " + b.debs + " /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives " + b.debsOut,
	}
	args = append(args, dpkgOpts()...)
	for _, p := range []string{b.debs, b.debsOut, b.keyring} {
		if strings.ContainsAny(p, " \t\n\"'\\$`") {
			return nil, fmt.Errorf("cache path %q has characters mmdebstrap's hooks cannot take", p)
		}
	}
	args = append(args, b.aptOpts()...)
	args = append(args, b.keyringOpts()...)
	args = append(args, b.fileMirrorOpts()...)
	args = append(args, mergedUsrOpts(b.spec.Suite)...)
	args = append(args, initramfsOnceHooks()...)
	args = append(args, initramfsModuleHooks(b.spec.normalized().Arch)...)
	if b.spec.isRaspi() {
		args = append(args, raspiHooks()...)
	}
	if len(b.spec.Packages) > 0 {
		args = append(args, "--include="+strings.Join(b.spec.Packages, ","))
	}
	args = append(args, b.spec.Suite, b.root)
	return append(args, b.bootstrapSourceLines()...), nil
}

// bootstrapSourceLines are the spec's sources as mmdebstrap takes them: a file:// archive is named
// copy:// instead, so that apt copies its .debs into the tree where dpkg, chrooted, can read them
// (mmdebstrap refuses a file:// archive the chroot cannot see, and bind-mounting it would leave its
// mount point in the tree). fileMirrorOpts turns them back into file:// in the tree's sources.list.
func (b build) bootstrapSourceLines() []string {
	lines := b.spec.sourceLines()
	for i, l := range lines {
		lines[i] = strings.Replace(l, " file://", " copy://", 1)
	}
	return lines
}

// fileMirrorOpts restore the file:// URLs of the tree's sources.list that bootstrapSourceLines
// made copy://, so the image's apt reads the archive where the base says it is.
func (b build) fileMirrorOpts() []string {
	if !slices.ContainsFunc(b.spec.sourceLines(), func(l string) bool { return strings.Contains(l, " file://") }) {
		return nil
	}
	return []string{`--customize-hook=sed -i 's# copy://# file://#' "$1/etc/apt/sources.list"`}
}

// aptOpts are apt options for mmdebstrap: a snapshot's Release files are
// past their Valid-Until by design.
func (b build) aptOpts() []string {
	if b.spec.Snapshot == "" {
		return nil
	}
	return []string{`--aptopt=Acquire::Check-Valid-Until "false"`}
}

// imageKeyringDir is where a tree keeps the keyring of its spec, in the place Debian documents for
// keys that sources.list names with signed-by.
const imageKeyringDir = "/etc/apt/keyrings"

// writeKeyring writes the spec's keyring for mmdebstrap to read into a new directory of its own
// under the system's temporary directory: .asc when armored, .gpg when binary, the names apt needs.
// Not next to the tree: apt verifies signatures as its unprivileged _apt user, which must reach the
// file, and the cache may sit below a directory only root can enter. The returned cleanup removes
// it; on error nothing is left.
func (b *build) writeKeyring() (cleanup func(), err error) {
	if len(b.spec.Keyring) == 0 {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "drover-keyring-")
	if err != nil {
		return nil, fmt.Errorf("write the base's keyring: %w", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	b.keyring = filepath.Join(dir, "archive-key"+keyringExt(b.spec.Keyring))
	if err := os.Chmod(dir, 0o755); err != nil {
		cleanup()
		return nil, fmt.Errorf("write the base's keyring: %w", err)
	}
	if err := os.WriteFile(b.keyring, b.spec.Keyring, 0o644); err != nil {
		cleanup()
		return nil, fmt.Errorf("write the base's keyring: %w", err)
	}
	return cleanup, nil
}

func keyringExt(key []byte) string {
	if strings.HasPrefix(strings.TrimSpace(string(key)), "-----BEGIN PGP") {
		return ".asc"
	}
	return ".gpg"
}

// keyringOpts make mmdebstrap verify the sources with the spec's keyring instead of the host's
// keys (--keyring is only for mmdebstrap's own apt) and then put the keyring into the tree and
// name it on every sources.list line with signed-by, so the image's apt trusts that key for these
// archives and nothing else does.
func (b build) keyringOpts() []string {
	if b.keyring == "" {
		return nil
	}
	inTree := imageKeyringDir + "/drover-archive" + keyringExt(b.spec.Keyring)
	return []string{
		"--keyring=" + b.keyring,
		`--customize-hook=mkdir -p "$1` + imageKeyringDir + `" && cp ` + b.keyring + ` "$1` + inTree + `" && chmod 0644 "$1` + inTree + `"`,
		`--customize-hook=sed -i -E 's#^deb (\[[^]]*\] )?#deb [signed-by=` + inTree + `] #' "$1/etc/apt/sources.list"`,
	}
}

// liveEpoch is SOURCE_DATE_EPOCH for a tree from a live (not snapshot) archive. A fixed time,
// not the build's: the tree's cache key names the archive's package state and no time, so two cold
// builds of one key must make the same bytes (mkinitramfs, for one, writes every file time of the
// initramfs from it, and without it the build's clock). It is rootfs's default image epoch.
var liveEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// env is mmdebstrap's environment: the host's (it may need a proxy), with
// SOURCE_DATE_EPOCH set to the snapshot time, or liveEpoch without a snapshot,
// for reproducible output; the host's value is dropped, since the tree's
// cache key does not include it.
func (b build) env() ([]string, error) {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
			env = append(env, kv)
		}
	}
	t, err := b.spec.snapshotTime()
	if err != nil {
		return nil, err
	}
	if t.IsZero() {
		t = liveEpoch
	}
	env = append(env, "SOURCE_DATE_EPOCH="+strconv.FormatInt(t.Unix(), 10))
	return append(env, "LC_ALL=C.UTF-8"), nil
}

// unknownPackages picks apt's "Unable to locate package X" complaints
// out of mmdebstrap's output.
func unknownPackages(tail []string) []string {
	re := regexp.MustCompile(`Unable to locate package (\S+)`)
	var out []string
	for _, l := range tail {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// checkSources checks every source of the spec with checkMirror. A mirror without the updates or
// security suite (a local partial mirror, say) is an error rather than a silent omission: the fix
// is to point at an archive that has it or to turn updates off for the base, with a reason.
func checkSources(ctx context.Context, spec BaseSpec) error {
	for i, src := range spec.Sources() {
		if err := checkMirror(ctx, src.URL, src.Suite); err != nil {
			if i > 0 {
				return fmt.Errorf("%w; a base gets %s-updates and %s by default (security_mirror names the security archive; updates = false with updates_off_reason turns them off)",
					err, spec.normalized().Suite, securitySuite(spec.normalized().Suite))
			}
			return err
		}
	}
	return nil
}

// checkMirror makes sure the mirror serves the suite before mmdebstrap
// starts, so that an unreachable or wrong mirror fails in seconds with
// a message naming it.
func checkMirror(ctx context.Context, mirror, suite string) error {
	u, err := url.Parse(mirror)
	if err != nil {
		return fmt.Errorf("invalid mirror %q: %w", mirror, err)
	}
	base := strings.TrimRight(mirror, "/") + "/dists/" + suite + "/"
	if u.Scheme == "file" {
		for _, name := range []string{"InRelease", "Release"} {
			if _, err := os.Stat(filepath.Join(u.Path, "dists", suite, name)); err == nil {
				return nil
			}
		}
		return fmt.Errorf("mirror %s has no suite %q (no %sInRelease or Release)", mirror, suite, base)
	}
	ctx, cancel := context.WithTimeout(ctx, mirrorCheckTimeout)
	defer cancel()
	status := 0
	for _, name := range []string{"InRelease", "Release"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+name, nil)
		if err != nil {
			return fmt.Errorf("invalid mirror %q: %w", mirror, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("mirror %s is unreachable: %w", mirror, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		status = resp.StatusCode
	}
	return fmt.Errorf("mirror %s has no suite %q (%sInRelease: HTTP %d)", mirror, suite, base, status)
}
