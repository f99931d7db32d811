package aws_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
)

// TestVolumeLabelsAndUserDataAWS: SetVolumeLabels replaces a volume's label tags (its token and
// Name tags stay, so CreateVolume with the token still finds it); EditUserData is refused while the
// instance runs, and on a stopped one reads EC2's user-data and writes the edit back.
func TestVolumeLabelsAndUserDataAWS(t *testing.T) {
	l, p, ins := volumeLab(t, awslab.Options{})
	ctx := t.Context()
	spec := compute.VolumeSpec{Token: "db/pgdata", Name: "db-pgdata", SizeGiB: 1, Labels: map[string]string{"role": "db", "volume": "pgdata"}}
	v, err := p.CreateVolume(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	aside := map[string]string{"role": "db", "replaced-volume": "pgdata", "restore": "db-pgdata-restore-2"}
	for range 2 {
		got, err := p.SetVolumeLabels(ctx, v.ID, aside)
		if err != nil || !maps.Equal(got.Labels, aside) || got.Name != "db-pgdata" {
			t.Fatalf("SetVolumeLabels = %+v, %v; want labels %v, the name kept", got, err, aside)
		}
	}
	if got, _ := p.Volumes(ctx, compute.Selector{"volume": "pgdata"}); len(got) != 0 {
		t.Errorf("the old labels still find %+v", got)
	}
	if again, err := p.CreateVolume(ctx, spec); err != nil || again.ID != v.ID {
		t.Errorf("CreateVolume with the token after a relabel: %+v, %v; want %s (the token tag kept)", again, err, v.ID)
	}
	if _, err := p.SetVolumeLabels(ctx, "vol-0123456789abcdef0", aside); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("SetVolumeLabels of an unknown volume: %v, want ErrNotFound", err)
	}

	edit := func(b []byte) ([]byte, error) { return append(b, "+edited"...), nil }
	if err := p.EditUserData(ctx, ins[0], edit); !errors.Is(err, compute.ErrInstanceRunning) {
		t.Fatalf("EditUserData of a running instance: %v, want ErrInstanceRunning", err)
	}
	if err := p.Stop(ctx, ins[0]); err != nil {
		t.Fatal(err)
	}
	var seen string
	if err := p.EditUserData(ctx, ins[0], func(b []byte) ([]byte, error) { seen = string(b); return []byte(`{"volumes":[]}`), nil }); err != nil {
		t.Fatal(err)
	}
	for _, in := range l.cloud.Instances() {
		if in.ID == ins[0] && (string(in.UserData) != `{"volumes":[]}` || seen != "") {
			t.Errorf("after EditUserData EC2 has %q (the edit saw %q); want the edit, given none", in.UserData, seen)
		}
	}
	if err := p.EditUserData(ctx, ins[0], edit); err != nil || func() string {
		for _, in := range l.cloud.Instances() {
			if in.ID == ins[0] {
				return string(in.UserData)
			}
		}
		return ""
	}() != `{"volumes":[]}+edited` {
		t.Errorf("a second edit: %v; want it given the first one's user-data", err)
	}
	if err := p.EditUserData(ctx, "i-0123456789abcdef0", edit); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("EditUserData of an unknown instance: %v, want ErrNotFound", err)
	}
}
