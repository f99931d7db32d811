package qemu

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

// TestVolumeOfDeadInstance: a volume whose holder died is attached nowhere,
// and detaching it, or terminating the holder, clears the record without a
// QMP call (there is no monitor socket: any would fail).
func TestVolumeOfDeadInstance(t *testing.T) {
	p := newTest(t)
	ctx := t.Context()
	id := instanceID("tok")
	r := &record{ID: id, Token: "tok", PID: os.Getpid(), Address: netip.MustParseAddr("127.0.19.2"), Created: time.Now()}
	if err := writeRecord(filepath.Join(p.instanceDir(id), recordFile), r); err != nil {
		t.Fatal(err)
	}
	var vols []*volumeRecord
	for _, token := range []string{"a", "b"} {
		v := &volumeRecord{ID: derivedID("vol-", "volume", token), Token: token, SizeGiB: 1,
			Labels: map[string]string{"role": "db"}, Holder: id, HolderPID: os.Getpid(), Created: time.Now()}
		if err := p.writeVolume(v); err != nil {
			t.Fatal(err)
		}
		vols = append(vols, v)
	}
	got, err := p.Volumes(ctx, compute.Selector{"role": "db"})
	if err != nil || len(got) != 2 || got[0].AttachedTo != "" || got[1].AttachedTo != "" || got[0].GuestPath != guestPath(got[0].ID) {
		t.Fatalf("Volumes = %+v, %v; want two, attached nowhere (their holder's pid is not a qemu), with their guest paths", got, err)
	}
	if _, err := p.AttachVolume(ctx, vols[0].ID, id); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("AttachVolume to a dead instance: %v, want ErrNotFound", err)
	}
	if err := p.DetachVolume(ctx, vols[0].ID); err != nil {
		t.Fatalf("DetachVolume of a dead holder's volume: %v", err)
	}
	if v, err := p.volumeRecord(vols[0].ID); err != nil || v.Holder != "" {
		t.Fatalf("after DetachVolume the record is %+v, %v; want no holder", v, err)
	}
	if err := p.Terminate(ctx, id); err != nil {
		t.Fatal(err)
	}
	if v, err := p.volumeRecord(vols[1].ID); err != nil || v.Holder != "" {
		t.Fatalf("after Terminate of its holder the record is %+v, %v; want no holder", v, err)
	}
	if err := p.DeleteVolume(ctx, vols[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateVolume(ctx, compute.VolumeSpec{Token: "b", SizeGiB: 1}); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("CreateVolume with a deleted volume's token: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "vol-../../../x", "vm-0123456789ab"} {
		if _, err := p.AttachVolume(ctx, bad, id); !errors.Is(err, compute.ErrNotFound) {
			t.Errorf("AttachVolume(%q): %v, want ErrNotFound", bad, err)
		}
		if err := p.DeleteVolumeSnapshot(ctx, bad); err != nil {
			t.Errorf("DeleteVolumeSnapshot(%q): %v, want nil", bad, err)
		}
	}
}
