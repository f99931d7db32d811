package computetest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/compute"
)

// VolumesFixture is one subtest's compute.Volumes, the provider whose
// instances it attaches to, and what the suite may ask of the platform.
type VolumesFixture struct {
	// Provider launches the instances volumes are attached to. It is the
	// same platform (account, state dir) as Volumes.
	Provider compute.Provider
	Volumes  compute.Volumes
	// WriteMarker writes data at the start of a detached volume, and
	// ReadMarker reads len(want) bytes back from there, as a guest would
	// find them on the block device. nil skips the subtests that check a
	// restored volume holds its snapshot's data.
	WriteMarker func(ctx context.Context, volume string, data []byte) error
	ReadMarker  func(ctx context.Context, volume string, n int) ([]byte, error)
}

// VolumesOptions adapt the volumes suite to a provider.
type VolumesOptions struct {
	// Image is what the subtests that attach launch; see Options.Image.
	Image compute.Image
	// Ports given to every launched instance; nil means []int{80}.
	Ports []int
	// SizeGiB of every volume the suite creates; zero means 1.
	SizeGiB int
	// Timeout bounds each subtest; zero means 60 seconds.
	Timeout  time.Duration
	Parallel bool
	Skip     []string
}

// RunVolumes runs the contract suite of compute.Volumes:
//
//	computetest.RunVolumes(t, func(t *testing.T) computetest.VolumesFixture {
//		p := memory.New()
//		return computetest.VolumesFixture{Provider: p, Volumes: p, WriteMarker: p.WriteMarker, ReadMarker: p.ReadMarker}
//	}, computetest.VolumesOptions{})
//
// Every volume and snapshot a subtest makes carries a label unique to the
// run; every instance is terminated and then every volume and snapshot
// deleted in t.Cleanup, so fixtures may share one platform account. The suite
// snapshots only detached volumes: a provider may refuse an attached one.
func RunVolumes(t *testing.T, newFixture func(t *testing.T) VolumesFixture, opts VolumesOptions) {
	t.Helper()
	if opts.Ports == nil {
		opts.Ports = []int{80}
	}
	if opts.SizeGiB == 0 {
		opts.SizeGiB = 1
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	tests := []struct {
		name string
		fn   func(s *volSuite)
	}{
		{"Create/Idempotent", testVolumeCreate},
		{"Create/Invalid", testVolumeInvalid},
		{"Volumes/Labels", testVolumeLabels},
		{"Attach/Basic", testVolumeAttach},
		{"Attach/Elsewhere", testVolumeAttachElsewhere},
		{"Attach/Concurrent", testVolumeAttachConcurrent},
		{"Detach", testVolumeDetach},
		{"Unknown", testVolumeUnknown},
		{"Snapshot/Idempotent", testVolumeSnapshot},
		{"Restore/Data", testVolumeRestore},
		{"Delete", testVolumeDelete},
		{"Context/Canceled", testVolumeCanceled},
		{"Terminate/Detaches", testVolumeOutlivesTerminate},
	}
	cases := make([]contract.Case, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, contract.Case{Name: tt.name, Fn: func(t *testing.T, ctx context.Context) {
			f := newFixture(t)
			base := &suite{t: t, p: f.Provider, ctx: ctx, run: runID(),
				opts: Options{Image: opts.Image, Ports: opts.Ports, Timeout: opts.Timeout}}
			vs := &volSuite{suite: base, f: f, vopts: opts}
			t.Cleanup(vs.cleanup)
			tt.fn(vs)
		}})
	}
	contract.Run(t, cases, contract.Options{Timeout: opts.Timeout, Parallel: opts.Parallel, Skip: opts.Skip})
}

type volSuite struct {
	*suite
	f     VolumesFixture
	vopts VolumesOptions

	madeVolumes, madeSnapshots []string // to delete when the test ends
}

// volSpec returns a VolumeSpec with a fresh token, the run label and extra
// labels.
func (s *volSuite) volSpec(labels ...string) compute.VolumeSpec {
	s.n++
	l := map[string]string{"drover-test": s.run}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return compute.VolumeSpec{
		Token:   s.run + "-vol-" + strconv.Itoa(s.n),
		Name:    "computetest-vol-" + strconv.Itoa(s.n),
		SizeGiB: s.vopts.SizeGiB,
		Labels:  l,
	}
}

// create creates a volume, fails the test on error, and detaches and
// deletes it when the test ends.
func (s *volSuite) create(spec compute.VolumeSpec) compute.Volume {
	s.t.Helper()
	v, err := s.f.Volumes.CreateVolume(s.ctx, spec)
	if err != nil {
		s.t.Fatalf("CreateVolume(token %q): %v", spec.Token, err)
	}
	s.cleanupVolume(v.ID)
	return v
}

// cleanupVolume detaches and deletes volume id when the test ends, after
// the instances are terminated: the cleanup that does it is registered
// before any launch (t.Cleanup runs last in, first out), so a provider whose
// detach needs the guest's help (the lab's hot-unplug) finds the volume
// detached by the Terminate already.
func (s *volSuite) cleanupVolume(id string) { s.madeVolumes = append(s.madeVolumes, id) }

func (s *volSuite) cleanupSnapshot(id string) { s.madeSnapshots = append(s.madeSnapshots, id) }

func (s *volSuite) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), s.vopts.Timeout)
	defer cancel()
	for _, id := range s.madeSnapshots {
		if err := s.f.Volumes.DeleteVolumeSnapshot(ctx, id); err != nil {
			s.t.Errorf("cleanup: DeleteVolumeSnapshot(%q): %v", id, err)
		}
	}
	for _, id := range s.madeVolumes {
		if err := s.f.Volumes.DetachVolume(ctx, id); err != nil && !errors.Is(err, compute.ErrNotFound) {
			s.t.Errorf("cleanup: DetachVolume(%q): %v", id, err)
		}
		if err := s.f.Volumes.DeleteVolume(ctx, id); err != nil {
			s.t.Errorf("cleanup: DeleteVolume(%q): %v", id, err)
		}
	}
}

// volumes lists the run's volumes matching the extra labels.
func (s *volSuite) volumes(labels ...string) []compute.Volume {
	s.t.Helper()
	sel := compute.Selector{"drover-test": s.run}
	for i := 0; i+1 < len(labels); i += 2 {
		sel[labels[i]] = labels[i+1]
	}
	vs, err := s.f.Volumes.Volumes(s.ctx, sel)
	if err != nil {
		s.t.Fatalf("Volumes(%v): %v", sel, err)
	}
	return vs
}

// volume returns the run's volume id as listed, failing when it is not.
func (s *volSuite) volume(id string) compute.Volume {
	s.t.Helper()
	for _, v := range s.volumes() {
		if v.ID == id {
			return v
		}
	}
	s.t.Fatalf("volume %s is not listed", id)
	return compute.Volume{}
}

// holders returns which of the instances have the volume, as listed.
func (s *volSuite) attached(id, want string) {
	s.t.Helper()
	if got := s.volume(id).AttachedTo; got != want {
		s.t.Fatalf("volume %s: AttachedTo = %q, want %q", id, got, want)
	}
}

func (s *volSuite) attach(id, instance string) compute.Volume {
	s.t.Helper()
	v, err := s.f.Volumes.AttachVolume(s.ctx, id, instance)
	if err != nil {
		s.t.Fatalf("AttachVolume(%s, %s): %v", id, instance, err)
	}
	return v
}
