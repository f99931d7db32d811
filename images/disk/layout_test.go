package disk

import (
	"testing"
)

func TestRootSize(t *testing.T) {
	tree := usage{bytes: 600 * mib, inodes: 25000}
	cases := []struct {
		name string
		min  int64
		h    Headroom
		want int64
	}{
		// (600 + 150 + 128) MiB / 0.92 = 954.3 MiB, + 16 MiB journal
		{"default headroom", 0, Headroom{}, 971 * mib},
		// 600 MiB / 0.92 = 652.2 MiB, + 16 MiB journal
		{"bytes only", 0, Headroom{Bytes: 1}, 669 * mib},
		{"min wins", 4096 * mib, Headroom{}, 4096 * mib},
		// 1200 MiB / 0.92 = 1304.3 MiB, + 32 MiB journal
		{"fraction", 0, Headroom{Fraction: 1}, 1337 * mib},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := rootSize(tree, c.min, c.h); got != c.want {
				t.Errorf("rootSize = %d MiB, want %d MiB", got/mib, c.want/mib)
			}
		})
	}
}

func TestRootSizeCoversInodes(t *testing.T) {
	// Many tiny files: the inode table, not the data, sets the size.
	u := usage{bytes: 10 * mib, inodes: 100000}
	got := rootSize(u, 0, Headroom{Bytes: 1})
	if need := (u.inodes + minFreeInodes) * inodeRatio; got < need {
		t.Errorf("rootSize = %d, but %d inodes need %d", got, u.inodes, need)
	}
	if got%mib != 0 {
		t.Errorf("rootSize %d is not whole MiB", got)
	}
}

func TestESPSize(t *testing.T) {
	if got := espSize(1000); got != minESPSize {
		t.Errorf("espSize(small) = %d, want the minimum %d", got, minESPSize)
	}
	// 80 MiB of files: + 10 MiB + 8 MiB.
	if got := espSize(80 * mib); got != 98*mib {
		t.Errorf("espSize(80 MiB) = %d MiB, want 98", got/mib)
	}
}

func TestLayoutLeavesRoomForBackupGPT(t *testing.T) {
	l := newLayout(amd64, mustUUID(t, testRootUUID), 64*mib, 1000*mib)
	const backupGPT = 33 * sectorSize
	if end := l.rootStart + l.rootSize; end+backupGPT > l.total {
		t.Errorf("root ends at %d, backup GPT needs %d bytes before %d", end, backupGPT, l.total)
	}
	for _, v := range []int64{l.espStart, l.espSize, l.rootStart, l.rootSize, l.total} {
		if v%mib != 0 {
			t.Errorf("%d is not MiB-aligned", v)
		}
	}
	if l.espStart < 34*sectorSize {
		t.Errorf("ESP at %d overlaps the primary GPT", l.espStart)
	}
}

func TestDerivedIDsAreStableAndDistinct(t *testing.T) {
	root := mustUUID(t, testRootUUID)
	a, b := root.derive("gpt-esp"), root.derive("gpt-root")
	if a == b || a == root {
		t.Fatal("derived UUIDs collide")
	}
	if a != root.derive("gpt-esp") {
		t.Fatal("derive is not deterministic")
	}
	if s := a.String(); s[14] != '5' {
		t.Errorf("%s is not a version 5 UUID", s)
	}
	if _, err := parseUUID("not-a-uuid"); err == nil {
		t.Error("parseUUID accepted garbage")
	}
	if got, _ := espSerial("1a2b-3c4d", root); got != "1A2B3C4D" {
		t.Errorf("espSerial = %q", got)
	}
	if _, err := espSerial("xyz", root); err == nil {
		t.Error("espSerial accepted garbage")
	}
	if got, _ := espSerial("", root); len(got) != 8 {
		t.Errorf("derived serial %q is not 8 hex digits", got)
	}
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"5.10.0-9-amd64", "5.10.0-10-amd64", "6.1.0-9-amd64", "6.1.0-28-amd64", "6.1.0-28-cloud-amd64"}
	for i := 0; i+1 < len(ordered); i++ {
		if compareVersions(ordered[i], ordered[i+1]) >= 0 {
			t.Errorf("%s should sort before %s", ordered[i], ordered[i+1])
		}
		if compareVersions(ordered[i+1], ordered[i]) <= 0 {
			t.Errorf("%s should sort after %s", ordered[i+1], ordered[i])
		}
	}
	if compareVersions("6.1.0", "6.1.0") != 0 {
		t.Error("equal versions compare unequal")
	}
}
