package memory

import (
	"errors"
	"testing"

	"github.com/drover-dev/drover/plugins/compute"
)

// TestEditUserData: a running instance's user-data is not edited (ErrInstanceRunning); a stopped
// one's is, given the launched one; a terminated one is ErrNotFound.
func TestEditUserData(t *testing.T) {
	p := New()
	ctx := t.Context()
	in, err := p.Launch(ctx, compute.Spec{Token: "a", UserData: []byte("launched")})
	if err != nil {
		t.Fatal(err)
	}
	edit := func(b []byte) ([]byte, error) { return append(b, "+edited"...), nil }
	if err := p.EditUserData(ctx, in.ID, edit); !errors.Is(err, compute.ErrInstanceRunning) {
		t.Fatalf("edit of a running instance: %v, want ErrInstanceRunning", err)
	}
	if err := p.Stop(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.EditUserData(ctx, in.ID, edit); err != nil || string(p.UserData(in.ID)) != "launched+edited" {
		t.Fatalf("edit of a stopped instance: %v, user-data %q", err, p.UserData(in.ID))
	}
	if err := p.Terminate(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := p.EditUserData(ctx, in.ID, edit); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("edit of a terminated instance: %v, want ErrNotFound", err)
	}
}
