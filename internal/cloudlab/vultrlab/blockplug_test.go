package vultrlab_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
)

// plugger is a Hypervisor whose machines hot-plug: each plug waits for a value on gate (nil: done,
// an error: failed) and is recorded.
type plugger struct {
	gate  chan error
	mu    sync.Mutex
	calls []string
}

type plugMachine struct{ p *plugger }

func (p *plugger) Boot(context.Context, vultrlab.MachineSpec) (vultrlab.Machine, error) {
	return plugMachine{p}, nil
}
func (plugMachine) Console() ([]byte, error) { return nil, nil }
func (plugMachine) Stop() error              { return nil }

func (m plugMachine) AttachVolume(ctx context.Context, id, path string) error {
	err := <-m.p.gate
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	m.p.calls = append(m.p.calls, "attach "+id+" "+path)
	return err
}

func (m plugMachine) DetachVolume(ctx context.Context, id string) error {
	err := <-m.p.gate
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	m.p.calls = append(m.p.calls, "detach "+id)
	return err
}

// TestBlockHotplug: with a machine that can hot-plug, a block is a raw file of its size, which
// the attach plugs in under the block's mount_id; attached_to_instance shows the holder only once
// the plug is done (and none once the guest let it go), another attach waits meanwhile, and a
// failed plug puts the block back where it was.
func TestBlockHotplug(t *testing.T) {
	p := &plugger{gate: make(chan error)}
	c := vultrlab.New(t, vultrlab.Options{Hypervisor: p})
	g := client(t, c, c.APIKey())
	ctx := t.Context()
	in, _, err := g.Instance.Create(ctx, &govultr.InstanceCreateReq{Region: c.Region(), Plan: "p", SnapshotID: c.AddSnapshot(t, "d", []byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { got, _, _ := g.Instance.Get(ctx, in.ID); return got.Status == "active" })
	b, _, err := g.BlockStorage.Create(ctx, &govultr.BlockStorageCreate{Region: c.Region(), SizeGB: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { got, _, _ := g.BlockStorage.Get(ctx, b.ID); return got.Status == "active" })
	holder := func() string {
		got, _, err := g.BlockStorage.Get(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.AttachedToInstance
	}

	if err := g.BlockStorage.Attach(ctx, b.ID, &govultr.BlockStorageAttach{InstanceID: in.ID}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if h := holder(); h != "" {
			t.Fatalf("attached_to_instance %q before the guest has the disk", h)
		}
	}
	p.gate <- nil
	waitFor(t, func() bool { return holder() == in.ID })
	p.mu.Lock()
	call := p.calls[0]
	p.mu.Unlock()
	path := strings.TrimPrefix(call, "attach "+b.MountID+" ")
	if st, err := os.Stat(path); path == call || err != nil || st.Size() != 2<<30 {
		t.Fatalf("hot-plug %q: the block's file %v, %v; want one of 2 GiB under the mount_id", call, st, err)
	}
	if !c.WriteBlock(b.ID, []byte("on disk")) {
		t.Fatal("WriteBlock")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 7)
	_, err = f.ReadAt(head, 0)
	f.Close()
	if err != nil || string(head) != "on disk" {
		t.Errorf("the block's file starts %q (%v), want what WriteBlock wrote", head, err)
	}

	// Detach: shown attached until the guest let go; an attach meanwhile is refused.
	if err := g.BlockStorage.Detach(ctx, b.ID, &govultr.BlockStorageDetach{}); err != nil {
		t.Fatal(err)
	}
	if err := g.BlockStorage.Attach(ctx, b.ID, &govultr.BlockStorageAttach{InstanceID: in.ID}); err == nil || !strings.Contains(err.Error(), "being detached") {
		t.Fatalf("attach while the detach runs: %v", err)
	}
	if h := holder(); h != in.ID {
		t.Fatalf("attached_to_instance %q while the guest still has the disk", h)
	}
	p.gate <- errors.New("the guest did not release it")
	waitFor(t, func() bool { return c.BlockHolder(b.ID) == in.ID })
	if h := holder(); h != in.ID {
		t.Fatalf("after a failed detach: attached_to_instance %q, want %s still", h, in.ID)
	}
	if err := g.BlockStorage.Detach(ctx, b.ID, &govultr.BlockStorageDetach{}); err != nil {
		t.Fatal(err)
	}
	p.gate <- nil
	waitFor(t, func() bool { return holder() == "" })

	// A failed attach leaves the block detached.
	if err := g.BlockStorage.Attach(ctx, b.ID, &govultr.BlockStorageAttach{InstanceID: in.ID}); err != nil {
		t.Fatal(err)
	}
	p.gate <- errors.New("no free port")
	waitFor(t, func() bool { return c.BlockHolder(b.ID) == "" })
	if h := holder(); h != "" {
		t.Fatalf("after a failed attach: attached_to_instance %q", h)
	}
	if err := g.BlockStorage.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the deleted block's file is still there: %v", err)
	}
}
