package dolab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// plugger is a Hypervisor whose machines hot-plug: each plug waits for a value on gate (nil:
// done, an error: failed) and is recorded.
type plugger struct {
	gate  chan error
	mu    sync.Mutex
	calls []string
}

type plugMachine struct{ p *plugger }

func (p *plugger) Boot(context.Context, MachineSpec) (Machine, error) { return plugMachine{p}, nil }
func (plugMachine) Console() ([]byte, error)                          { return nil, nil }
func (plugMachine) Stop() error                                       { return nil }

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

// TestVolumeHotplug: with a machine that can hot-plug, a volume is a raw file of its size, plugged
// in under the volume's name by the attach action, which stays in progress until the plug is done
// (errored, and the volume detached again, when it failed); another action on the volume is
// refused meanwhile, and a detach completes once the machine let go of the disk.
func TestVolumeHotplug(t *testing.T) {
	p := &plugger{gate: make(chan error)}
	c := New(t, Options{Hypervisor: p, ActionPolls: 0})
	img := c.AddImage("db", make([]byte, 1<<20))
	code, out := call(t, c, http.MethodPost, "/v2/droplets", c.Token(), fmt.Sprintf(`{"name":"db-1","region":%q,"size":"s-1vcpu-1gb","image":%d}`, c.Region(), img))
	if code != http.StatusAccepted {
		t.Fatalf("create droplet: %d %v", code, out)
	}
	droplet := int(out["droplet"].(map[string]any)["id"].(float64))
	waitUntil(t, func() bool { return c.Droplets()[0].Status == "active" })
	code, out = call(t, c, http.MethodPost, "/v2/volumes", c.Token(), fmt.Sprintf(`{"name":"db-data","region":%q,"size_gigabytes":2}`, c.Region()))
	if code != http.StatusCreated {
		t.Fatalf("create volume: %d %v", code, out)
	}
	vol := out["volume"].(map[string]any)["id"].(string)
	act := func(typ string) (int, string) {
		t.Helper()
		code, out := call(t, c, http.MethodPost, "/v2/volumes/"+vol+"/actions", c.Token(), fmt.Sprintf(`{"type":%q,"droplet_id":%d}`, typ, droplet))
		if code != http.StatusAccepted {
			return code, ""
		}
		return code, fmt.Sprint(int(out["action"].(map[string]any)["id"].(float64)))
	}
	status := func(id string) string {
		t.Helper()
		_, out := call(t, c, http.MethodGet, "/v2/actions/"+id, c.Token(), "")
		return out["action"].(map[string]any)["status"].(string)
	}
	droplets := func() string {
		t.Helper()
		_, out := call(t, c, http.MethodGet, "/v2/volumes/"+vol, c.Token(), "")
		var ids []int
		for _, id := range out["volume"].(map[string]any)["droplet_ids"].([]any) {
			ids = append(ids, int(id.(float64)))
		}
		return fmt.Sprint(ids)
	}

	code, attach := act("attach")
	if code != http.StatusAccepted {
		t.Fatalf("attach: %d", code)
	}
	if s := status(attach); s != "in-progress" {
		t.Fatalf("attach action %s before the guest has the disk", s)
	}
	if code, _ := act("detach"); code != http.StatusUnprocessableEntity {
		t.Fatalf("detach while the attach runs: %d, want 422", code)
	}
	p.gate <- nil
	waitUntil(t, func() bool { return status(attach) == "completed" })
	p.mu.Lock()
	call0 := p.calls[0]
	p.mu.Unlock()
	path := strings.TrimPrefix(call0, "attach db-data ")
	if st, err := os.Stat(path); path == call0 || err != nil || st.Size() != 2<<30 {
		t.Fatalf("hot-plug %q: the volume's file %v, %v; want one of 2 GiB under the volume's name", call0, st, err)
	}
	if !c.WriteVolume(vol, []byte("on disk")) {
		t.Fatal("WriteVolume")
	}
	if got, ok := c.ReadVolume(vol, 7); !ok || string(got) != "on disk" {
		t.Errorf("ReadVolume = %q, %v", got, ok)
	}

	_, detach := act("detach")
	p.gate <- errors.New("the guest did not release it")
	waitUntil(t, func() bool { return status(detach) == "errored" })
	if d := droplets(); d != fmt.Sprintf("[%d]", droplet) {
		t.Fatalf("after a failed detach the volume is on %s, want [%d]", d, droplet)
	}
	_, detach = act("detach")
	p.gate <- nil
	waitUntil(t, func() bool { return status(detach) == "completed" })
	if d := droplets(); d != "[]" {
		t.Fatalf("after the detach the volume is on %s", d)
	}

	_, attach = act("attach")
	p.gate <- errors.New("no room on the bus")
	waitUntil(t, func() bool { return status(attach) == "errored" })
	if d := droplets(); d != "[]" {
		t.Fatalf("after a failed attach the volume is on %s", d)
	}
	if code, _ := call(t, c, http.MethodDelete, "/v2/volumes/"+vol, c.Token(), ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the deleted volume's file is still there: %v", err)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("timed out")
}
