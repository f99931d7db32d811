package computetest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

func testVolumeCreate(s *volSuite) {
	t := s.t
	spec := s.volSpec("role", "db", "volume", "data")
	before := time.Now().Add(-time.Minute)
	v := s.create(spec)
	if v.ID == "" || v.SizeGiB != spec.SizeGiB || v.Name != spec.Name || !maps.Equal(v.Labels, spec.Labels) {
		t.Fatalf("CreateVolume(%+v) = %+v", spec, v)
	}
	if v.AttachedTo != "" {
		t.Errorf("a new volume is AttachedTo %q, want none", v.AttachedTo)
	}
	if v.Created.Before(before) || v.Created.After(time.Now().Add(time.Minute)) {
		t.Errorf("Created = %v, want about now", v.Created)
	}
	changed := spec.Clone()
	changed.Name = "another-name"
	changed.SizeGiB++
	again, err := s.f.Volumes.CreateVolume(s.ctx, changed)
	if err != nil {
		t.Fatalf("second CreateVolume with token %q: %v", spec.Token, err)
	}
	if again.ID != v.ID || again.SizeGiB != v.SizeGiB {
		t.Fatalf("second CreateVolume with token %q gave %s (%d GiB), first gave %s (%d GiB)",
			spec.Token, again.ID, again.SizeGiB, v.ID, v.SizeGiB)
	}
	if got := s.volumes(); len(got) != 1 || got[0].ID != v.ID || !maps.Equal(got[0].Labels, spec.Labels) {
		t.Fatalf("after two CreateVolume calls with one token: %+v, want only %s", got, v.ID)
	}
	spec.Labels["role"] = "changed"
	if got := s.volumes("role", "db"); len(got) != 1 {
		t.Fatalf("changing the caller's labels changed the volume: %+v", got)
	}
}

func testVolumeInvalid(s *volSuite) {
	t := s.t
	for _, spec := range []compute.VolumeSpec{
		{Name: "no-token", SizeGiB: 1, Labels: map[string]string{"drover-test": s.run}},
		{Token: s.run + "-zero", Name: "zero", SizeGiB: 0, Labels: map[string]string{"drover-test": s.run}},
		{Token: s.run + "-neg", Name: "negative", SizeGiB: -1, Labels: map[string]string{"drover-test": s.run}},
	} {
		if v, err := s.f.Volumes.CreateVolume(s.ctx, spec); err == nil {
			s.cleanupVolume(v.ID)
			t.Errorf("CreateVolume(%+v) = %+v, want an error", spec, v)
		}
	}
	if got := s.volumes(); len(got) != 0 {
		t.Fatalf("refused specs left volumes behind: %+v", got)
	}
}

func testVolumeLabels(s *volSuite) {
	t := s.t
	a := s.create(s.volSpec("role", "db", "volume", "data"))
	b := s.create(s.volSpec("role", "db", "volume", "wal"))
	c := s.create(s.volSpec("role", "mail", "volume", "data"))
	for _, tc := range []struct {
		sel  []string
		want []string
	}{
		{nil, []string{a.ID, b.ID, c.ID}},
		{[]string{"role", "db"}, []string{a.ID, b.ID}},
		{[]string{"volume", "data"}, []string{a.ID, c.ID}},
		{[]string{"role", "db", "volume", "wal"}, []string{b.ID}},
		{[]string{"role", "nobody"}, nil},
	} {
		got := s.volumes(tc.sel...)
		ids := map[string]bool{}
		for _, v := range got {
			ids[v.ID] = true
		}
		if len(got) != len(tc.want) || len(ids) != len(tc.want) {
			t.Errorf("Volumes(%v) = %+v, want %v", tc.sel, got, tc.want)
			continue
		}
		for _, id := range tc.want {
			if !ids[id] {
				t.Errorf("Volumes(%v) = %+v, want %v", tc.sel, got, tc.want)
			}
		}
	}
}

func testVolumeAttach(s *volSuite) {
	t := s.t
	in := s.launch(s.spec("role", "db"))
	v := s.create(s.volSpec("role", "db"))
	got := s.attach(v.ID, in.ID)
	if got.ID != v.ID || got.AttachedTo != in.ID {
		t.Fatalf("AttachVolume(%s, %s) = %+v, want it attached there", v.ID, in.ID, got)
	}
	if got.GuestPath == "" {
		t.Errorf("AttachVolume(%s): empty GuestPath: the guest cannot find the volume", v.ID)
	}
	s.attached(v.ID, in.ID)
	again := s.attach(v.ID, in.ID)
	if again.AttachedTo != in.ID || again.GuestPath != got.GuestPath {
		t.Fatalf("re-attaching to the same instance: %+v, first %+v", again, got)
	}
	if listed := s.volume(v.ID); listed.GuestPath != got.GuestPath {
		t.Errorf("Volumes reports GuestPath %q, AttachVolume %q", listed.GuestPath, got.GuestPath)
	}
}

func testVolumeAttachElsewhere(s *volSuite) {
	t := s.t
	first := s.launch(s.spec("role", "db", "color", "blue"))
	second := s.launch(s.spec("role", "db", "color", "green"))
	v := s.create(s.volSpec("role", "db"))
	s.attach(v.ID, first.ID)
	_, err := s.f.Volumes.AttachVolume(s.ctx, v.ID, second.ID)
	if !errors.Is(err, compute.ErrVolumeInUse) {
		t.Fatalf("AttachVolume to a second instance: %v, want ErrVolumeInUse", err)
	}
	s.attached(v.ID, first.ID)
}

// testVolumeAttachConcurrent races attaches of one volume to two instances:
// exactly one wins, the other is refused with ErrVolumeInUse.
func testVolumeAttachConcurrent(s *volSuite) {
	t := s.t
	ins := []compute.Instance{s.launch(s.spec("color", "blue")), s.launch(s.spec("color", "green"))}
	v := s.create(s.volSpec("role", "db"))
	errs := make([]error, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() { _, errs[i] = s.f.Volumes.AttachVolume(s.ctx, v.ID, in.ID) })
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil && winner != "":
			t.Fatalf("both concurrent attaches succeeded (%s and %s)", winner, ins[i].ID)
		case err == nil:
			winner = ins[i].ID
		case !errors.Is(err, compute.ErrVolumeInUse):
			t.Errorf("concurrent AttachVolume(%s): %v, want nil or ErrVolumeInUse", ins[i].ID, err)
		}
	}
	if winner == "" {
		t.Fatalf("no concurrent attach won: %v", errs)
	}
	s.attached(v.ID, winner)
}

func testVolumeDetach(s *volSuite) {
	t := s.t
	first := s.launch(s.spec("color", "blue"))
	second := s.launch(s.spec("color", "green"))
	v := s.create(s.volSpec("role", "db"))
	if err := s.f.Volumes.DetachVolume(s.ctx, v.ID); err != nil {
		t.Fatalf("DetachVolume of a volume attached nowhere: %v, want nil", err)
	}
	s.attach(v.ID, first.ID)
	if err := s.f.Volumes.DetachVolume(s.ctx, v.ID); err != nil {
		t.Fatalf("DetachVolume: %v", err)
	}
	s.attached(v.ID, "") // it returned: the detach is done, not pending
	if err := s.f.Volumes.DetachVolume(s.ctx, v.ID); err != nil {
		t.Fatalf("second DetachVolume: %v, want nil", err)
	}
	if got := s.attach(v.ID, second.ID); got.AttachedTo != second.ID {
		t.Fatalf("attach to the second instance after the detach: %+v", got)
	}
	s.attached(v.ID, second.ID)
}

func testVolumeUnknown(s *volSuite) {
	t := s.t
	in := s.launch(s.spec("role", "db"))
	v := s.create(s.volSpec("role", "db"))
	const nobody = "computetest-no-such-thing"
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, compute.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}
	_, err := s.f.Volumes.AttachVolume(s.ctx, nobody, in.ID)
	check("AttachVolume of an unknown volume", err)
	_, err = s.f.Volumes.AttachVolume(s.ctx, v.ID, nobody)
	check("AttachVolume to an unknown instance", err)
	check("DetachVolume of an unknown volume", s.f.Volumes.DetachVolume(s.ctx, nobody))
	_, err = s.f.Volumes.SnapshotVolume(s.ctx, nobody, s.run+"-snap", nil)
	check("SnapshotVolume of an unknown volume", err)
	_, err = s.f.Volumes.RestoreVolume(s.ctx, nobody, s.volSpec())
	check("RestoreVolume of an unknown snapshot", err)
	s.attached(v.ID, "")
	if err := s.f.Provider.Terminate(s.ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.f.Volumes.AttachVolume(s.ctx, v.ID, in.ID)
	check("AttachVolume to a terminated instance", err)
	s.attached(v.ID, "")
}

// snapshot takes a snapshot of a detached volume and deletes it when the
// test ends.
func (s *volSuite) snapshot(id, token string) compute.VolumeSnapshot {
	s.t.Helper()
	snap, err := s.f.Volumes.SnapshotVolume(s.ctx, id, token, map[string]string{"drover-test": s.run})
	if err != nil {
		s.t.Fatalf("SnapshotVolume(%s, %q): %v", id, token, err)
	}
	s.cleanupSnapshot(snap.ID)
	return snap
}

func testVolumeSnapshot(s *volSuite) {
	t := s.t
	v := s.create(s.volSpec("role", "db"))
	token := s.run + "-snap"
	snap := s.snapshot(v.ID, token)
	if snap.ID == "" || snap.VolumeID != v.ID || snap.SizeGiB != v.SizeGiB || snap.Labels["drover-test"] != s.run {
		t.Fatalf("SnapshotVolume(%s) = %+v", v.ID, snap)
	}
	if snap.State != "completed" && snap.State != "pending" {
		t.Errorf("State = %q, want completed or pending", snap.State)
	}
	again := s.snapshot(v.ID, token)
	if again.ID != snap.ID {
		t.Fatalf("second SnapshotVolume with token %q gave %s, first %s", token, again.ID, snap.ID)
	}
	list, err := s.f.Volumes.VolumeSnapshots(s.ctx, compute.Selector{"drover-test": s.run})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != snap.ID {
		t.Fatalf("VolumeSnapshots = %+v, want only %s", list, snap.ID)
	}
	if err := s.f.Volumes.DeleteVolumeSnapshot(s.ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.f.Volumes.DeleteVolumeSnapshot(s.ctx, snap.ID); err != nil {
		t.Fatalf("deleting a deleted snapshot: %v, want nil", err)
	}
	list, _ = s.f.Volumes.VolumeSnapshots(s.ctx, compute.Selector{"drover-test": s.run})
	if len(list) != 0 {
		t.Fatalf("after DeleteVolumeSnapshot: %+v", list)
	}
}

func testVolumeRestore(s *volSuite) {
	t := s.t
	if s.f.WriteMarker == nil || s.f.ReadMarker == nil {
		t.Skip("VolumesFixture.WriteMarker or ReadMarker is nil: cannot check a restored volume's data")
	}
	v := s.create(s.volSpec("role", "db"))
	marker := []byte("computetest " + s.run + " before the snapshot")
	if err := s.f.WriteMarker(s.ctx, v.ID, marker); err != nil {
		t.Fatalf("WriteMarker: %v", err)
	}
	snap := s.snapshot(v.ID, s.run+"-snap")
	later := bytes.Repeat([]byte("x"), len(marker))
	if err := s.f.WriteMarker(s.ctx, v.ID, later); err != nil {
		t.Fatalf("WriteMarker after the snapshot: %v", err)
	}
	small := s.volSpec("role", "db")
	small.SizeGiB = snap.SizeGiB - 1
	if small.SizeGiB > 0 {
		if r, err := s.f.Volumes.RestoreVolume(s.ctx, snap.ID, small); err == nil {
			s.cleanupVolume(r.ID)
			t.Errorf("RestoreVolume to %d GiB from a %d GiB snapshot = %+v, want an error", small.SizeGiB, snap.SizeGiB, r)
		}
	}
	spec := s.volSpec("role", "db", "restored", "yes")
	spec.SizeGiB = 0
	r, err := s.f.Volumes.RestoreVolume(s.ctx, snap.ID, spec)
	if err != nil {
		t.Fatalf("RestoreVolume(%s): %v", snap.ID, err)
	}
	s.cleanupVolume(r.ID)
	if r.ID == v.ID || r.SizeGiB != snap.SizeGiB || r.AttachedTo != "" || r.Labels["restored"] != "yes" {
		t.Fatalf("RestoreVolume(%s) = %+v", snap.ID, r)
	}
	again, err := s.f.Volumes.RestoreVolume(s.ctx, snap.ID, spec)
	if err != nil || again.ID != r.ID {
		t.Fatalf("second RestoreVolume with token %q: %+v, %v; first gave %s", spec.Token, again, err, r.ID)
	}
	got, err := s.f.ReadMarker(s.ctx, r.ID, len(marker))
	if err != nil {
		t.Fatalf("ReadMarker of the restored volume: %v", err)
	}
	if !bytes.Equal(got, marker) {
		t.Fatalf("the restored volume holds %q, the snapshot was taken of %q", got, marker)
	}
	if got, _ := s.f.ReadMarker(s.ctx, v.ID, len(marker)); !bytes.Equal(got, later) {
		t.Errorf("the source volume holds %q after the restore, want %q", got, later)
	}
}

func testVolumeDelete(s *volSuite) {
	t := s.t
	in := s.launch(s.spec("role", "db"))
	v := s.create(s.volSpec("role", "db"))
	s.attach(v.ID, in.ID)
	if err := s.f.Volumes.DeleteVolume(s.ctx, v.ID); !errors.Is(err, compute.ErrVolumeInUse) {
		t.Fatalf("DeleteVolume of an attached volume: %v, want ErrVolumeInUse", err)
	}
	s.attached(v.ID, in.ID)
	if err := s.f.Volumes.DetachVolume(s.ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.f.Volumes.DeleteVolume(s.ctx, v.ID); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	if err := s.f.Volumes.DeleteVolume(s.ctx, v.ID); err != nil {
		t.Fatalf("deleting a deleted volume: %v, want nil", err)
	}
	if got := s.volumes(); len(got) != 0 {
		t.Fatalf("after DeleteVolume: %+v", got)
	}
	if _, err := s.f.Volumes.AttachVolume(s.ctx, v.ID, in.ID); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("AttachVolume of a deleted volume: %v, want ErrNotFound", err)
	}
}

func testVolumeCanceled(s *volSuite) {
	t := s.t
	in := s.launch(s.spec("role", "db"))
	v := s.create(s.volSpec("role", "db"))
	attachedV := s.create(s.volSpec("role", "db", "volume", "attached"))
	s.attach(attachedV.ID, in.ID)
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", what, err)
		}
	}
	_, err := s.f.Volumes.CreateVolume(ctx, s.volSpec("role", "db"))
	check("CreateVolume", err)
	_, err = s.f.Volumes.Volumes(ctx, nil)
	check("Volumes", err)
	_, err = s.f.Volumes.AttachVolume(ctx, v.ID, in.ID)
	check("AttachVolume", err)
	check("DetachVolume", s.f.Volumes.DetachVolume(ctx, attachedV.ID))
	_, err = s.f.Volumes.SnapshotVolume(ctx, v.ID, s.run+"-snap", nil)
	check("SnapshotVolume", err)
	_, err = s.f.Volumes.VolumeSnapshots(ctx, nil)
	check("VolumeSnapshots", err)
	check("DeleteVolume", s.f.Volumes.DeleteVolume(ctx, v.ID))
	if got := s.volumes(); len(got) != 2 {
		t.Fatalf("after canceled calls: %+v, want the two volumes", got)
	}
	s.attached(v.ID, "")
	s.attached(attachedV.ID, in.ID)
	snaps, err := s.f.Volumes.VolumeSnapshots(s.ctx, compute.Selector{"drover-test": s.run})
	if err != nil || len(snaps) != 0 {
		t.Fatalf("after a canceled SnapshotVolume: %+v, %v; want none", snaps, err)
	}
}

// testVolumeOutlivesTerminate: terminating the instance that has a volume
// leaves the volume, detached (as EC2 does with a volume not deleted on
// termination), ready for another instance.
func testVolumeOutlivesTerminate(s *volSuite) {
	t := s.t
	first := s.launch(s.spec("color", "blue"))
	second := s.launch(s.spec("color", "green"))
	v := s.create(s.volSpec("role", "db"))
	s.attach(v.ID, first.ID)
	if err := s.f.Provider.Terminate(s.ctx, first.ID); err != nil {
		t.Fatalf("Terminate(%s): %v", first.ID, err)
	}
	s.attached(v.ID, "")
	s.attach(v.ID, second.ID)
	s.attached(v.ID, second.ID)
}
