package tree

import (
	"os/exec"
	"testing"
)

// versionPairs cover each rule of deb-version(7): epochs, tildes, letters against other characters,
// numeric runs of different lengths, revisions, and Debian's security and point-release suffixes.
var versionPairs = [][2]string{
	{"1.0", "1.0"}, {"1.0", "1.1"}, {"1.0~rc1", "1.0"}, {"1.0~~", "1.0~"}, {"1:0.1", "2.0"},
	{"1.22.1-9", "1.22.1-9+deb12u1"}, {"1.22.1-9+deb12u9", "1.22.1-9+deb12u12"}, {"6.1.176-1", "6.1.192-3"},
	{"2.36-9+deb12u4", "2.36-9+deb12u10"}, {"1.0a", "1.0+"}, {"1.0", "1.0-0"}, {"010", "9"},
	{"1.2.3", "1.2.3.0"}, {"0:1.0", "1.0"}, {"1.0-1", "1.0-1.1"}, {"1.0+b1", "1.0.1"}, {"3.0.11-1~deb12u2", "3.0.11-1"},
	{"252.30-1~deb12u2", "252.33-1~deb12u1"}, {"1.0.0+drover1", "1.0.0"}, {"a", "A"}, {"1.0-1", "1.0-1~bpo1"},
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestCompareVersionsAgreesWithDpkg asks dpkg itself, the authority on the order, for every pair.
func TestCompareVersionsAgreesWithDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatal("dpkg is needed to check the order against: it is on every Debian machine")
	}
	for _, p := range versionPairs {
		for _, pair := range [][2]string{p, {p[1], p[0]}} {
			a, b := pair[0], pair[1]
			want := 0
			switch {
			case exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil:
				want = -1
			case exec.Command("dpkg", "--compare-versions", a, "gt", b).Run() == nil:
				want = 1
			}
			if got := sign(CompareVersions(a, b)); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, dpkg says %d", a, b, got, want)
			}
		}
	}
}
