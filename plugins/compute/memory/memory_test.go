package memory_test

import (
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/compute/memory"
)

func TestContract(t *testing.T) {
	computetest.Run(t, func(*testing.T) compute.Provider { return memory.New() }, computetest.Options{Parallel: true})
}

func TestKill(t *testing.T) {
	p := memory.New()
	in, err := p.Launch(t.Context(), compute.Spec{Token: "t", Labels: map[string]string{"role": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Kill(in.ID)
	got, err := p.Instances(t.Context(), compute.Selector{"role": "web"})
	if err != nil || len(got) != 1 || got[0].State != compute.Terminated {
		t.Fatalf("after Kill: %+v, %v; want one terminated instance", got, err)
	}
	if err := p.Terminate(t.Context(), in.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Instances(t.Context(), nil); len(got) != 0 {
		t.Fatalf("after Terminate: %+v", got)
	}
}

// TestRefusesCloudRole: the memory fake has no platform identities, so a Spec that asks for one
// is refused and nothing is launched.
func TestRefusesCloudRole(t *testing.T) {
	p := memory.New()
	spec := compute.Spec{Token: "t", Name: "vault-0", CloudRole: "arn:aws:iam::123456789012:role/vault"}
	if in, err := p.Launch(t.Context(), spec); err == nil {
		t.Fatalf("Launch with a cloud role = %+v, want an error", in)
	}
	if ins, err := p.Instances(t.Context(), nil); err != nil || len(ins) != 0 {
		t.Errorf("after a refused Launch, Instances = %v, %v; want none", ins, err)
	}
}

func TestVolumesContract(t *testing.T) {
	computetest.RunVolumes(t, func(*testing.T) computetest.VolumesFixture {
		p := memory.New()
		return computetest.VolumesFixture{Provider: p, Volumes: p, WriteMarker: p.WriteMarker, ReadMarker: p.ReadMarker}
	}, computetest.VolumesOptions{Parallel: true})
}
