package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A lab VM told its segment address in fw_cfg gets a networkd file for the NIC of that MAC, applied;
// a VM without the entry, or a machine that is not a lab VM, gets nothing; a bad entry fails.
func TestLabSegment(t *testing.T) {
	setup := func(t *testing.T, lab bool, entry string) (*boot, *fakeNet, string) {
		root := t.TempDir()
		fw := filepath.Join(root, "fw/by_name/opt/drover/user-data/raw")
		drover := filepath.Dir(filepath.Dir(fw))
		if lab {
			if err := os.MkdirAll(filepath.Join(drover, labMarker), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if entry != "" {
			if err := os.MkdirAll(filepath.Join(drover, labSegmentEntry), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(drover, labSegmentEntry, "raw"), []byte(entry), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		nw := &fakeNet{links: []netLink{{Name: "enp0s2", MAC: "52:54:00:12:34:56", IPv4: true}, {Name: "enp0s3", MAC: "52:54:00:4d:00:05"}}}
		var out bytes.Buffer
		return &boot{c: config{Root: root, FwCfgPath: fw, MetadataURL: none, Net: nw, Wait: time.Second, Stdout: &out, Stderr: &out}}, nw, root
	}

	b, nw, root := setup(t, true, "10.77.0.5/24 52:54:00:4D:00:05")
	addr, err := b.labSegment(t.Context())
	if err != nil || addr.String() != "10.77.0.5" {
		t.Fatalf("labSegment: %s, %v; want 10.77.0.5", addr, err)
	}
	file, err := os.ReadFile(filepath.Join(root, labSegmentFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MACAddress=52:54:00:4d:00:05\n", "Address=10.77.0.5/24\n", "DHCP=no\n"} {
		if !strings.Contains(string(file), want) {
			t.Errorf("networkd file lacks %q:\n%s", want, file)
		}
	}
	if strings.Join(nw.calls, ";") != "apply enp0s3" {
		t.Errorf("network calls %q, want the segment link applied", nw.calls)
	}

	for name, tc := range map[string]struct {
		lab   bool
		entry string
	}{"not a lab VM": {false, "10.77.0.5/24 52:54:00:4d:00:05"}, "a lab without a segment": {true, ""}} {
		b, nw, root := setup(t, tc.lab, tc.entry)
		if addr, err := b.labSegment(t.Context()); err != nil || addr.IsValid() || len(nw.calls) > 0 {
			t.Errorf("%s: %s, %v, calls %q", name, addr, err, nw.calls)
		}
		if _, err := os.Stat(filepath.Join(root, labSegmentFile)); !os.IsNotExist(err) {
			t.Errorf("%s: a networkd file: %v", name, err)
		}
	}

	for _, bad := range []string{"10.77.0.5/24", "8.8.8.8/24 52:54:00:4d:00:05", "10.77.0.5/24 zz", "10.77.0.5/24 52:54:00:ff:00:09"} {
		b, _, _ := setup(t, true, bad)
		if _, err := b.labSegment(t.Context()); err == nil || !strings.HasPrefix(err.Error(), "lab segment: ") {
			t.Errorf("entry %q: %v, want a lab segment error", bad, err)
		}
	}
}
