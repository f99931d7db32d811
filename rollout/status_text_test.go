package rollout_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
)

// The status reads as prose and a table, never a Go struct dump, and its JSON carries the same
// facts.
func TestStatusTextGolden(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 12, 4, 10, min, 0, 0, time.UTC) }
	now := at(30)
	live := &rollout.Record{ID: "web-1-aaaaaa", Role: "web", Kind: rollout.KindRollout, State: rollout.Retired, Strategy: "bluegreen",
		Image: rollout.Image{Identity: "sha256:05fa", Short: "05fa883343d7"}, Updated: at(1)}
	active := &rollout.Record{ID: "web-2-bbbbbb", Role: "web", Kind: rollout.KindRollout, State: rollout.Promoted, Strategy: "bluegreen",
		Image: rollout.Image{Identity: "sha256:e385", Short: "e3851c412d9e"}, Previous: live.ID, Updated: at(25), KeepUntil: at(40)}
	kept := rollout.Status{
		Role: "web", Strategy: "bluegreen", Active: active, Live: live, Latest: active,
		Cutover: rollout.CutoverStatus{Type: "ip", Target: `ip "front" 127.0.0.100`, Current: []string{"vm-2-0"}},
		Lock:    &rollout.LockStatus{Owner: "ann@box pid 42", Acquired: at(29), Expires: at(31)},
		Instances: []rollout.InstanceStatus{
			{ID: "vm-1-0", Name: "web-1-aaaaaa-0", Rollout: live.ID, Slot: "0", State: compute.Running, Address: "10.0.0.5", Owned: true},
			{ID: "vm-2-0", Name: "web-2-bbbbbb-0", Rollout: active.ID, Slot: "0", State: compute.Running, Address: "10.0.0.6", Owned: true},
			{ID: "vm-0-0", Name: "web-0-cccccc-0", Rollout: "web-0-cccccc", Slot: "0", State: compute.Stopped, Owned: false},
		},
	}
	failed := &rollout.Record{ID: "web-3-dddddd", Role: "web", Kind: rollout.KindRollback, State: rollout.Failed, Strategy: "bluegreen",
		Image: rollout.Image{Identity: "sha256:05fa", Short: "05fa883343d7"}, Updated: at(28)}
	quiet := rollout.Status{
		Role: "web", Strategy: "raft", Live: live, Latest: failed, BlueDue: false,
		Cutover:   rollout.CutoverStatus{Type: "none", Target: "none (traffic is moved by hand)"},
		Lock:      &rollout.LockStatus{Owner: "bob@box pid 7", Acquired: at(10), Expires: at(11), Expired: true},
		Instances: []rollout.InstanceStatus{},
	}
	due := kept
	due.BlueDue, due.Lock, due.Cutover.Current = true, nil, nil
	var text bytes.Buffer
	for i, st := range []rollout.Status{kept, quiet, due} {
		if i > 0 {
			text.WriteString("\n")
		}
		if err := st.WriteText(&text, now); err != nil {
			t.Fatal(err)
		}
	}
	if s := text.String(); strings.Contains(s, "{") || strings.Contains(s, "0x") {
		t.Errorf("a Go value dumped:\n%s", s)
	}
	golden(t, "status.golden", text.Bytes())

	js, err := json.MarshalIndent(kept, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"role", "strategy", "active", "live", "latest", "instances", "cutover", "lock"} {
		if _, ok := back[key]; !ok {
			t.Errorf("JSON lacks %q, which the text shows", key)
		}
	}
	golden(t, "status.json.golden", append(js, '\n'))
}
