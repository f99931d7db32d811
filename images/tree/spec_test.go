package tree

import (
	"strings"
	"testing"
)

func TestKeyNormalizes(t *testing.T) {
	a := BaseSpec{Suite: "bookworm", Arch: "amd64", Packages: []string{"udev", "systemd-sysv", "udev", " linux-image-amd64 "}}
	b := BaseSpec{Arch: "amd64", Mirror: "http://deb.debian.org/debian/", Components: []string{"main", "main"},
		Packages: []string{"linux-image-amd64", "systemd-sysv", "udev", ""}}
	if a.Key() != b.Key() {
		t.Fatalf("equivalent specs have different keys:\n%s\n%s", a.Key(), b.Key())
	}
	if len(a.Key()) != 64 || strings.Trim(a.Key(), "0123456789abcdef") != "" {
		t.Fatalf("key %q is not sha256 hex", a.Key())
	}
	for name, other := range map[string]BaseSpec{
		"suite":      {Suite: "trixie", Arch: "amd64", Packages: a.Packages},
		"arch":       {Arch: "arm64", Packages: a.Packages},
		"mirror":     {Arch: "amd64", Mirror: "http://mirror.example/debian", Packages: a.Packages},
		"snapshot":   {Arch: "amd64", Snapshot: "20261101T000000Z", Packages: a.Packages},
		"components": {Arch: "amd64", Components: []string{"main", "contrib"}, Packages: a.Packages},
		"packages":   {Arch: "amd64", Packages: []string{"udev"}},
		"no updates": {Arch: "amd64", Packages: a.Packages, NoUpdates: true},
		"security":   {Arch: "amd64", Packages: a.Packages, SecurityMirror: "http://security.example/debian-security"},
	} {
		if other.Key() == a.Key() {
			t.Errorf("changing %s does not change the key", name)
		}
	}
}

func TestNormalizeDefaults(t *testing.T) {
	n, err := BaseSpec{Arch: "arm64", Packages: []string{"bb", "aa", "bb"}, Components: []string{"non-free-firmware", "main"}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if n.Suite != "bookworm" || n.Mirror != DefaultMirror || n.Arch != "arm64" {
		t.Errorf("defaults: %+v", n)
	}
	if strings.Join(n.Packages, ",") != "aa,bb" || strings.Join(n.Components, ",") != "main,non-free-firmware" {
		t.Errorf("lists not sorted and deduplicated: %+v", n)
	}
	if n.Key() != (BaseSpec{Arch: "arm64", Packages: []string{"aa", "bb"}, Components: []string{"main", "non-free-firmware"}}).Key() {
		t.Error("normalizing changed the key")
	}
	if d, _ := (BaseSpec{}).Normalize(); d.Arch != hostArch() || len(d.Components) != 1 || d.Components[0] != "main" {
		t.Errorf("empty spec: %+v", d)
	}
}

func TestMirrorURLSnapshot(t *testing.T) {
	for _, tc := range []struct {
		spec BaseSpec
		want string
	}{
		{BaseSpec{}, "http://deb.debian.org/debian"},
		{BaseSpec{Mirror: "http://m.example/debian/"}, "http://m.example/debian"},
		{BaseSpec{Snapshot: "20261101T000000Z"}, "http://snapshot.debian.org/archive/debian/20261101T000000Z/"},
		{BaseSpec{Snapshot: "20261101T000000Z", Mirror: "https://snap.example/archive/debian/"}, "https://snap.example/archive/debian/20261101T000000Z/"},
	} {
		if got := tc.spec.MirrorURL(); got != tc.want {
			t.Errorf("%+v: MirrorURL() = %q, want %q", tc.spec, got, tc.want)
		}
	}
	n, err := BaseSpec{Snapshot: "20261101T000000Z"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if ts, _ := n.snapshotTime(); ts.Unix() != 1793491200 {
		t.Errorf("snapshot time %v (%d)", ts, ts.Unix())
	}
}

func TestNormalizeRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		spec BaseSpec
		want string
	}{
		"arch":      {BaseSpec{Arch: "sparc"}, `unsupported architecture "sparc"`},
		"snapshot":  {BaseSpec{Snapshot: "2026-11-01"}, `invalid snapshot "2026-11-01"`},
		"package":   {BaseSpec{Packages: []string{"ok", "not a package"}}, `invalid package name "not a package"`},
		"pattern":   {BaseSpec{Packages: []string{"?priority(required)"}}, "invalid package name"},
		"deb path":  {BaseSpec{Packages: []string{"./foo.deb"}}, "invalid package name"},
		"mirror":    {BaseSpec{Mirror: "ftp://x/debian"}, `invalid mirror "ftp://x/debian"`},
		"no host":   {BaseSpec{Mirror: "http:///debian"}, "invalid mirror"},
		"suite":     {BaseSpec{Suite: "Bookworm"}, `invalid suite "Bookworm"`},
		"component": {BaseSpec{Components: []string{"main contrib"}}, `invalid component "main contrib"`},
	} {
		_, err := tc.spec.Normalize()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
	for _, ok := range []string{"linux-image-amd64", "libc6:arm64", "apt=2.6.1", "nginx/bookworm-backports", "g++", "libstdc++6"} {
		if _, err := (BaseSpec{Packages: []string{ok}}).Normalize(); err != nil {
			t.Errorf("%s rejected: %v", ok, err)
		}
	}
}

func TestSources(t *testing.T) {
	for name, tc := range map[string]struct {
		spec BaseSpec
		want []Source
	}{
		"default": {BaseSpec{}, []Source{{DefaultMirror, "bookworm"}, {DefaultMirror, "bookworm-updates"}, {DefaultSecurityMirror, "bookworm-security"}}},
		"mirrors": {BaseSpec{Suite: "trixie", Mirror: "http://m.example/debian/", SecurityMirror: "https://s.example/sec/"},
			[]Source{{"http://m.example/debian", "trixie"}, {"http://m.example/debian", "trixie-updates"}, {"https://s.example/sec", "trixie-security"}}},
		"buster": {BaseSpec{Suite: "buster"}, []Source{{DefaultMirror, "buster"}, {DefaultMirror, "buster-updates"}, {DefaultSecurityMirror, "buster/updates"}}},
		"snapshot": {BaseSpec{Snapshot: "20261101T000000Z"}, []Source{
			{"http://snapshot.debian.org/archive/debian/20261101T000000Z/", "bookworm"},
			{"http://snapshot.debian.org/archive/debian/20261101T000000Z/", "bookworm-updates"},
			{"http://snapshot.debian.org/archive/debian-security/20261101T000000Z/", "bookworm-security"}}},
		"no updates": {BaseSpec{NoUpdates: true, SecurityMirror: "http://ignored.example/"}, []Source{{DefaultMirror, "bookworm"}}},
	} {
		got := tc.spec.Sources()
		if len(got) != len(tc.want) {
			t.Errorf("%s: sources %v, want %v", name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: sources %v, want %v", name, got, tc.want)
				break
			}
		}
	}
	if (BaseSpec{NoUpdates: true, SecurityMirror: "http://a.example/"}).Key() != (BaseSpec{NoUpdates: true}).Key() {
		t.Error("an unused security mirror changes the key")
	}
}

func TestNormalizeSecurityMirror(t *testing.T) {
	if _, err := (BaseSpec{Snapshot: "20261101T000000Z", Mirror: "http://snap.example/archive/main"}).Normalize(); err == nil ||
		!strings.Contains(err.Error(), `snapshot mirror "http://snap.example/archive/main" does not end in /debian`) {
		t.Errorf("snapshot mirror of unknown shape: %v", err)
	}
	if _, err := (BaseSpec{Snapshot: "20261101T000000Z", Mirror: "http://snap.example/archive/main", NoUpdates: true}).Normalize(); err != nil {
		t.Errorf("updates off needs no security archive: %v", err)
	}
	if _, err := (BaseSpec{SecurityMirror: "ftp://x/"}).Normalize(); err == nil || !strings.Contains(err.Error(), `invalid security mirror "ftp://x"`) {
		t.Errorf("ftp security mirror: %v", err)
	}
}
