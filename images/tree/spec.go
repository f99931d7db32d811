package tree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

const (
	// DefaultSuite is the Debian release a base tree is made of unless
	// the spec names another.
	DefaultSuite = "bookworm"
	// DefaultMirror is the archive used without a snapshot date.
	DefaultMirror = "http://deb.debian.org/debian"
	// DefaultSnapshotMirror is the snapshot.debian.org-style service used
	// with a snapshot date: the date is appended as a path element. Plain
	// http, because apt inside the finished image has no CA certificates
	// unless the role installs them, and apt checks signatures anyway.
	DefaultSnapshotMirror = "http://snapshot.debian.org/archive/debian"
	// DefaultSecurityMirror is the archive of security updates (SUITE-security) used without a
	// snapshot date; with one, the security archive is the snapshot mirror's debian-security
	// sibling (snapshot.debian.org keeps both).
	DefaultSecurityMirror = "http://deb.debian.org/debian-security"
	// snapshotLayout is the snapshot.debian.org timestamp format.
	snapshotLayout = "20060102T150405Z"
	// keyVersion changes whenever the way a base tree is built changes,
	// so that trees cached by an older recipe are not reused.
	keyVersion = "drover-tree/4"
)

// BaseSpec describes a base tree. Zero fields take defaults: Suite
// DefaultSuite, Arch the build host's architecture, Components ["main"],
// Mirror DefaultMirror (or DefaultSnapshotMirror with a Snapshot),
// SecurityMirror DefaultSecurityMirror (or the snapshot mirror's
// debian-security sibling). Packages come from the suite, SUITE-updates
// and SUITE-security unless NoUpdates is set.
type BaseSpec struct {
	Suite string
	// Mirror is the Debian archive URL (http, https or file). With a
	// Snapshot it is instead the base of a snapshot.debian.org-style
	// service, and the archive used is Mirror/Snapshot/.
	Mirror string
	// Snapshot is a snapshot.debian.org timestamp such as
	// 20261101T000000Z; it pins the archive's content for reproducible
	// builds and becomes mmdebstrap's SOURCE_DATE_EPOCH.
	Snapshot string
	// Arch is a Debian architecture: amd64 or arm64. A foreign one runs
	// through qemu-user binfmt_misc emulation.
	Arch       string
	Components []string
	// Packages are installed on top of mmdebstrap's apt variant
	// (Essential: yes packages and apt), e.g. linux-image-amd64,
	// systemd-sysv, udev, initramfs-tools, openssh-server for a tree that
	// boots. A name may carry :arch, =version or /release.
	Packages []string
	// SecurityMirror is the security archive's URL (it is not on the
	// ordinary mirrors); with a Snapshot, the base of a snapshot service
	// for it, like Mirror.
	SecurityMirror string
	// NoUpdates leaves out SUITE-updates and SUITE-security: the tree gets
	// the point release's packages only. The zero value is the safe one.
	NoUpdates bool
	// Keyring is an OpenPGP public key file's content (binary or armored)
	// that signs every source of the spec, in place of Debian's archive
	// keys; nil for those. Its bytes are part of the Key; the tree's apt
	// trusts it for these sources only (signed-by).
	Keyring []byte
}

// Source is one apt source of a tree: an archive URL and a suite (with the spec's components).
type Source struct {
	URL   string `json:"url"`
	Suite string `json:"suite"`
}

// Sources are the apt sources the tree is built from, in sources.list order: the suite, then
// SUITE-updates from the same mirror and the security suite from the security archive unless
// NoUpdates. apt takes the newest version any of them offers (they share the default priority).
func (s BaseSpec) Sources() []Source {
	n := s.normalized()
	out := []Source{{URL: n.MirrorURL(), Suite: n.Suite}}
	if n.NoUpdates {
		return out
	}
	return append(out, Source{URL: n.MirrorURL(), Suite: n.Suite + "-updates"},
		Source{URL: n.securityURL(), Suite: securitySuite(n.Suite)})
}

// securitySuite is the security archive's suite for a release: SUITE-security since bullseye,
// SUITE/updates before.
func securitySuite(suite string) string {
	switch suite {
	case "jessie", "stretch", "buster":
		return suite + "/updates"
	}
	return suite + "-security"
}

// securityURL is the security archive apt uses, like MirrorURL for the main one.
func (s BaseSpec) securityURL() string {
	n := s.normalized()
	if n.Snapshot == "" {
		return n.SecurityMirror
	}
	return n.SecurityMirror + "/" + n.Snapshot + "/"
}

// sourceLines are the sources as sources.list lines, which is how mmdebstrap takes them.
func (s BaseSpec) sourceLines() []string {
	n := s.normalized()
	var out []string
	for _, src := range n.Sources() {
		out = append(out, "deb "+src.URL+" "+src.Suite+" "+strings.Join(n.Components, " "))
	}
	return out
}

// qemuName maps the Debian architectures a base may have to the name of
// their qemu-user binfmt_misc entry (qemu-<name>).
func qemuName(arch string) (string, bool) {
	switch arch {
	case "amd64":
		return "x86_64", true
	case "arm64":
		return "aarch64", true
	}
	return "", false
}

// hostArch is the Debian name of the architecture this program runs on.
func hostArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	}
	return runtime.GOARCH
}

// normalized fills in defaults and sorts and deduplicates the lists, so
// that specs meaning the same tree compare and hash equal. It does not
// validate; Normalize does.
func (s BaseSpec) normalized() BaseSpec {
	n := BaseSpec{
		Suite:          strings.TrimSpace(s.Suite),
		Mirror:         strings.TrimRight(strings.TrimSpace(s.Mirror), "/"),
		Snapshot:       strings.TrimSpace(s.Snapshot),
		Arch:           strings.TrimSpace(s.Arch),
		SecurityMirror: strings.TrimRight(strings.TrimSpace(s.SecurityMirror), "/"),
		NoUpdates:      s.NoUpdates,
		Keyring:        s.Keyring,
	}
	if n.Suite == "" {
		n.Suite = DefaultSuite
	}
	if n.Arch == "" {
		n.Arch = hostArch()
	}
	if n.Mirror == "" {
		n.Mirror = DefaultMirror
		if n.Snapshot != "" {
			n.Mirror = DefaultSnapshotMirror
		}
	}
	if n.SecurityMirror == "" {
		n.SecurityMirror = DefaultSecurityMirror
		if n.Snapshot != "" {
			// snapshot.debian.org/archive/debian has snapshot.debian.org/archive/debian-security
			// beside it; Normalize rejects a snapshot mirror without that shape.
			n.SecurityMirror = strings.TrimSuffix(n.Mirror, "/debian") + "/debian-security"
		}
	}
	n.Components = sortedSet(s.Components)
	if len(n.Components) == 0 {
		n.Components = []string{"main"}
	}
	n.Packages = sortedSet(s.Packages)
	return n
}

func sortedSet(in []string) []string {
	var out []string
	for _, v := range in {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Normalize returns the spec with defaults filled in and lists sorted and
// deduplicated, or an error naming the first invalid field.
func (s BaseSpec) Normalize() (BaseSpec, error) {
	n := s.normalized()
	suiteRe := regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	componentRe := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// A Debian package name with an optional architecture qualifier and an
	// optional =version or /release. mmdebstrap's apt patterns and .deb
	// paths are kept out on purpose: a base is keyed by names, and a
	// file's content would not be in the key.
	packageRe := regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+|/[a-z0-9.-]+)?$`)
	if !suiteRe.MatchString(n.Suite) {
		return n, fmt.Errorf("invalid suite %q", n.Suite)
	}
	if _, ok := qemuName(n.Arch); !ok {
		return n, fmt.Errorf("unsupported architecture %q (want amd64 or arm64)", n.Arch)
	}
	if _, err := n.snapshotTime(); err != nil {
		return n, err
	}
	u, err := url.Parse(n.Mirror)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return n, fmt.Errorf("invalid mirror %q (want an http, https or file URL)", n.Mirror)
	}
	if !n.NoUpdates {
		if n.Snapshot != "" && strings.TrimSpace(s.SecurityMirror) == "" && !strings.HasSuffix(n.Mirror, "/debian") {
			return n, fmt.Errorf("snapshot mirror %q does not end in /debian, so its debian-security sibling is unknown: name the security archive's snapshot service", n.Mirror)
		}
		if u, err := url.Parse(n.SecurityMirror); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
			return n, fmt.Errorf("invalid security mirror %q (want an http, https or file URL)", n.SecurityMirror)
		}
	}
	for _, c := range n.Components {
		if !componentRe.MatchString(c) {
			return n, fmt.Errorf("invalid component %q", c)
		}
	}
	for _, p := range n.Packages {
		if !packageRe.MatchString(p) {
			return n, fmt.Errorf("invalid package name %q", p)
		}
	}
	return n, nil
}

// snapshotTime parses the snapshot timestamp; zero without a snapshot.
func (s BaseSpec) snapshotTime() (time.Time, error) {
	if s.Snapshot == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(snapshotLayout, s.Snapshot)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid snapshot %q (want a timestamp like 20261101T000000Z): %w", s.Snapshot, err)
	}
	return t, nil
}

// MirrorURL is the archive URL apt uses: the mirror itself, or with a
// snapshot, e.g. http://snapshot.debian.org/archive/debian/20261101T000000Z/.
func (s BaseSpec) MirrorURL() string {
	n := s.normalized()
	if n.Snapshot == "" {
		return n.Mirror
	}
	return n.Mirror + "/" + n.Snapshot + "/"
}

// Key identifies the tree the spec makes: the sha256 (hex) of the
// normalized spec, the effective mirror URL and the build recipe version.
func (s BaseSpec) Key() string {
	n := s.normalized()
	text := strings.Join([]string{
		keyVersion,
		"suite=" + n.Suite,
		"arch=" + n.Arch,
		"mirror=" + n.MirrorURL(),
		"sources=" + strings.Join(n.sourceLines(), "|"),
		"snapshot=" + n.Snapshot,
		"components=" + strings.Join(n.Components, ","),
		"packages=" + strings.Join(n.Packages, ","),
		"variant=apt",
	}, "\n") + "\n"
	if len(n.Keyring) > 0 {
		text += "keyring=" + n.keyringSHA256() + "\n"
	}
	text += "initramfs=" + strings.Join(initramfsModules(n.Arch), ",") + "\n"
	text += "dpkg=" + strings.Join(dpkgOpts(), "|") + "\n"
	if n.isRaspi() {
		text += raspiKey()
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// keyringSHA256 is the sha256 (hex) of the keyring's bytes.
func (s BaseSpec) keyringSHA256() string {
	sum := sha256.Sum256(s.Keyring)
	return hex.EncodeToString(sum[:])
}

// String describes the spec for logs.
func (s BaseSpec) String() string {
	n := s.normalized()
	desc := fmt.Sprintf("%s/%s from %s", n.Suite, n.Arch, n.MirrorURL())
	if n.NoUpdates {
		desc += " without updates"
	} else {
		desc += " with " + n.Suite + "-updates and " + securitySuite(n.Suite) + " from " + n.securityURL()
	}
	if len(n.Keyring) > 0 {
		desc += " signed by keyring sha256:" + n.keyringSHA256()[:12]
	}
	if len(n.Packages) > 0 {
		desc += " with " + strings.Join(n.Packages, ",")
	}
	return desc
}
