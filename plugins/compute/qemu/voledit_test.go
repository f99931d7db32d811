package qemu

import (
	"errors"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// TestSetVolumeLabels: a volume's labels are replaced (so a selector of the old ones no longer
// finds it), again with the same labels changes nothing, and an unknown volume is ErrNotFound.
func TestSetVolumeLabels(t *testing.T) {
	p := newTest(t)
	ctx := t.Context()
	v, err := p.CreateVolume(ctx, compute.VolumeSpec{Token: "a", Name: "db-pgdata", SizeGiB: 1, Labels: map[string]string{"role": "db", "volume": "pgdata"}})
	if err != nil {
		t.Fatal(err)
	}
	aside := map[string]string{"role": "db", "replaced-volume": "pgdata"}
	for range 2 {
		got, err := p.SetVolumeLabels(ctx, v.ID, aside)
		if err != nil || !maps.Equal(got.Labels, aside) || got.GuestPath != v.GuestPath {
			t.Fatalf("SetVolumeLabels = %+v, %v; want the new labels, the same guest path", got, err)
		}
	}
	if got, _ := p.Volumes(ctx, compute.Selector{"volume": "pgdata"}); len(got) != 0 {
		t.Errorf("the old labels still find %+v", got)
	}
	if got, _ := p.Volumes(ctx, compute.Selector{"replaced-volume": "pgdata"}); len(got) != 1 || got[0].ID != v.ID {
		t.Errorf("the new labels find %+v, want %s", got, v.ID)
	}
	if _, err := p.SetVolumeLabels(ctx, "vol-000000000000", aside); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("SetVolumeLabels of an unknown volume: %v, want ErrNotFound", err)
	}
	if _, err := p.SetVolumeLabels(ctx, v.ID, map[string]string{"": "x"}); err == nil {
		t.Error("an empty label name was accepted")
	}
}

// TestEditUserData: a stopped VM's user-data file (what fw_cfg hands the guest at its next start)
// is replaced by what the edit returns given the old one; a running qemu is refused with
// ErrInstanceRunning and its file left; a terminated or unknown instance is ErrNotFound.
func TestEditUserData(t *testing.T) {
	p := newTest(t)
	ctx := t.Context()
	id := instanceID("tok")
	dir := p.instanceDir(id)
	r := &record{ID: id, Token: "tok", Address: netip.MustParseAddr("127.0.19.2"), Created: time.Now(), Stopped: true}
	if err := writeRecord(filepath.Join(dir, recordFile), r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, userFile), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen string
	if err := p.EditUserData(ctx, id, func(b []byte) ([]byte, error) { seen = string(b); return []byte("new"), nil }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, userFile)); seen != "old" || string(b) != "new" {
		t.Fatalf("edit saw %q and left %q; want old, then new", seen, b)
	}
	if err := p.EditUserData(ctx, id, func([]byte) ([]byte, error) { return nil, errors.New("no") }); err == nil {
		t.Error("an edit's error was not returned")
	}

	// A process that passes for this VM's qemu: its name and its -pidfile argument.
	fake := exec.Command("bash", "-c", `exec -a qemu-system-x86_64 tail -f "$0"`, filepath.Join(dir, pidFile))
	if err := os.WriteFile(filepath.Join(dir, pidFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Process.Kill(); fake.Wait() })
	r.Stopped, r.PID = false, fake.Process.Pid
	if err := writeRecord(filepath.Join(dir, recordFile), r); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !running(r.PID, dir) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // bash has not exec'd tail yet
	}
	err := p.EditUserData(ctx, id, func([]byte) ([]byte, error) { return []byte("while running"), nil })
	if !errors.Is(err, compute.ErrInstanceRunning) {
		t.Errorf("EditUserData of a running VM: %v, want ErrInstanceRunning", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, userFile)); string(b) != "new" {
		t.Errorf("a refused edit left %q", b)
	}

	if err := p.EditUserData(ctx, instanceID("other"), func(b []byte) ([]byte, error) { return b, nil }); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("EditUserData of an unknown instance: %v, want ErrNotFound", err)
	}
}
