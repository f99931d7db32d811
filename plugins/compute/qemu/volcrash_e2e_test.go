//go:build e2e

package qemu

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// TestE2EVolumeAttachAfterCrash: an AttachVolume killed after it recorded
// the holder, before or after its QMP calls, is finished by the retry; and
// a VM stopped and started again has no volume (it re-attaches nothing).
// The VM boots no OS: hot-plug needs none.
func TestE2EVolumeAttachAfterCrash(t *testing.T) {
	start := time.Now()
	p, in := blankVM(t, "127.0.15.0/24", "crash")
	ctx := t.Context()
	r, err := p.record(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	has := func(id string) bool {
		t.Helper()
		m, err := p.Monitor(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ids, err := m.VolumeBlocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ids, id)
	}
	v, err := p.CreateVolume(ctx, compute.VolumeSpec{Token: "crash-vol", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Killed after writing the holder, before any QMP call.
	rec, _ := p.volumeRecord(v.ID)
	rec.Holder, rec.HolderPID = in.ID, r.PID
	if err := p.writeVolume(rec); err != nil {
		t.Fatal(err)
	}
	if has(v.ID) {
		t.Fatal("the VM has the volume before any QMP call")
	}
	if got, err := p.AttachVolume(ctx, v.ID, in.ID); err != nil || got.AttachedTo != in.ID {
		t.Fatalf("retried AttachVolume: %+v, %v", got, err)
	}
	if !has(v.ID) {
		t.Fatal("the retried AttachVolume did not plug the volume in")
	}
	// Killed after the QMP calls, before the answer: the retry finds them done.
	if got, err := p.AttachVolume(ctx, v.ID, in.ID); err != nil || got.AttachedTo != in.ID || !has(v.ID) {
		t.Fatalf("AttachVolume of a plugged volume: %+v, %v", got, err)
	}
	if err := p.Stop(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if vs, err := p.Volumes(ctx, nil); err != nil || len(vs) != 1 || vs[0].AttachedTo != "" {
		t.Fatalf("after Stop and Start: %+v, %v; want the volume attached nowhere", vs, err)
	}
	if has(v.ID) {
		t.Fatal("the restarted VM has the volume")
	}
	if err := p.Terminate(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("test took %s", time.Since(start).Round(time.Millisecond))
}

// TestE2EVolumeDetachAsksAgain: a guest that does not release the device (here one with no OS,
// so no ACPI handler) is asked again every unplugRepeat, and qemu takes the repeated device_del;
// DetachVolume ends only with ctx, saying the guest has not released it, and the record keeps
// the holder.
func TestE2EVolumeDetachAsksAgain(t *testing.T) {
	p, in := blankVM(t, "127.0.16.0/24", "asks-again")
	ctx := t.Context()
	v, err := p.CreateVolume(ctx, compute.VolumeSpec{Token: "asks-again-vol", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AttachVolume(ctx, v.ID, in.ID); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 2*unplugRepeat+2*time.Second)
	defer cancel()
	start := time.Now()
	err = p.DetachVolume(dctx, v.ID)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "has not released the device") || took < 2*unplugRepeat {
		t.Fatalf("DetachVolume from a guest that never releases: %v after %s; want it to ask %d times and end with its context", err, took.Round(time.Millisecond), 3)
	}
	if vs, err := p.Volumes(ctx, nil); err != nil || len(vs) != 1 || vs[0].AttachedTo != in.ID {
		t.Fatalf("after the failed detach: %+v, %v; want the volume still held by %s", vs, err, in.ID)
	}
	t.Logf("DetachVolume gave up after %s: %v", took.Round(time.Millisecond), err)
}

// blankVM launches a VM that boots no OS (a blank disk under SeaBIOS) on a
// lab of its own on network, killed by its PID when the test ends: QMP
// hot-plug needs no guest, a hot-unplug never completes in it.
func blankVM(t *testing.T, network, token string) (*Provider, compute.Instance) {
	t.Helper()
	blank := filepath.Join(t.TempDir(), "blank.raw")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newTest(t, func(c *Config) { c.Firmware, c.Memory, c.Accel, c.Network = "bios", 128, "tcg", network })
	in, err := p.Launch(t.Context(), compute.Spec{Token: token, Image: compute.Image{Identity: "blank", Path: blank}, Ports: []int{80}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r, err := p.record(in.ID); err == nil && r.PID > 0 && running(r.PID, p.instanceDir(in.ID)) {
			syscall.Kill(r.PID, syscall.SIGKILL)
		}
	})
	return p, in
}
