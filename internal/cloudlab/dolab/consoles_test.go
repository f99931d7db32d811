package dolab

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
)

// consoleHypervisor boots machines whose console names their boot.
type consoleHypervisor struct{ boots atomic.Int32 }

type consoleMachine struct{ text string }

func (h *consoleHypervisor) Boot(context.Context, MachineSpec) (Machine, error) {
	return consoleMachine{"console of boot " + strconv.Itoa(int(h.boots.Add(1)))}, nil
}
func (m consoleMachine) Console() ([]byte, error) { return []byte(m.text), nil }
func (consoleMachine) Stop() error                { return nil }

// TestConsolesOutliveDeletedDroplets: a deleted droplet's console stays readable, as it was when
// its machine stopped, beside the running ones': a test reads it after drover destroyed a green
// that failed its health check.
func TestConsolesOutliveDeletedDroplets(t *testing.T) {
	c := New(t, Options{Hypervisor: &consoleHypervisor{}, ActionPolls: 0})
	img := c.AddImage("web", make([]byte, 1<<20))
	create := func(name string) int {
		t.Helper()
		code, out := call(t, c, http.MethodPost, "/v2/droplets", c.Token(), fmt.Sprintf(`{"name":%q,"region":%q,"size":"s-1vcpu-1gb","image":%d}`, name, c.Region(), img))
		if code != http.StatusAccepted {
			t.Fatalf("create droplet: %d %v", code, out)
		}
		id := int(out["droplet"].(map[string]any)["id"].(float64))
		waitUntil(t, func() bool {
			for _, d := range c.Droplets() {
				if d.ID == id && d.Status == "active" {
					return true
				}
			}
			return false
		})
		return id
	}
	gone, live := create("web-1"), create("web-2")
	if code, out := call(t, c, http.MethodDelete, "/v2/droplets/"+strconv.Itoa(gone), c.Token(), ""); code != http.StatusNoContent {
		t.Fatalf("delete droplet: %d %v", code, out)
	}
	waitUntil(t, func() bool { _, ok := c.Consoles()[gone]; return ok })
	consoles := c.Consoles()
	if len(consoles) != 2 || string(consoles[gone]) != "console of boot 1" || string(consoles[live]) != "console of boot 2" {
		t.Errorf("Consoles() = %v, want droplet %d's (deleted) and %d's", consoles, gone, live)
	}
	if b, err := c.Console(gone); err != nil || string(b) != "console of boot 1" {
		t.Errorf("Console(%d) of the deleted droplet = %q, %v", gone, b, err)
	}
	if _, err := c.Console(99999); err == nil {
		t.Error("Console of a droplet that never booted is no error")
	}
}
