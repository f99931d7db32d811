package rollout_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/rollout"
)

// The record names the strategy that drives it, and keeps the strategy's own progress, typed and
// in the JSON the store holds.
func TestRecordNamesItsStrategy(t *testing.T) {
	l, _ := deployed(t, raftNode(1))
	recs, err := l.controller().History(t.Context(), "web")
	if err != nil || len(recs) != 1 {
		t.Fatalf("history: %d records, %v", len(recs), err)
	}
	r := recs[0]
	if r.Strategy != "raft" || r.Progress.Raft == nil || !r.Progress.Raft.Bootstrap || r.Progress.Raft.Nodes != 1 {
		t.Errorf("raft record: strategy %q, progress %+v", r.Strategy, r.Progress.Raft)
	}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), `"progress":{"raft":{"bootstrap":true,"nodes":1,"seeded":true}}`) {
		t.Errorf("record JSON: %s", b)
	}
	st, err := l.controller().Status(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := st.WriteText(&text, time.Now()); err != nil {
		t.Fatal(err)
	}
	if st.Strategy != "raft" || !strings.Contains(text.String(), "(strategy raft)") || !strings.Contains(text.String(), r.ID+"  retired") {
		t.Errorf("status: strategy %q\n%s", st.Strategy, text.String())
	}

	l, _ = deployed(t)
	recs, err = l.controller().History(t.Context(), "web")
	if err != nil || len(recs) != 1 {
		t.Fatalf("history: %d records, %v", len(recs), err)
	}
	if r := recs[0]; r.Strategy != "bluegreen" || r.Progress.Raft != nil {
		t.Errorf("bluegreen record: strategy %q, progress %+v", r.Strategy, r.Progress)
	}
	if b, _ := json.Marshal(recs[0]); strings.Contains(string(b), `"progress"`) {
		t.Errorf("bluegreen keeps no progress of its own, got %s", b)
	}
}

// The catalog drover validate uses names what the controller drives, and each strategy's rules.
func TestCatalogNamesWhatTheControllerDrives(t *testing.T) {
	cat := rollout.NewCatalog(nil, nil)
	if got := cat.Types(fleet.DeployStrategy); !slices.Equal(got, []string{"bluegreen", "ab", "handoff", "raft"}) {
		t.Errorf("strategies %v", got)
	}
	if got := cat.Types(fleet.DeployCutover); !slices.Equal(got, []string{"dns", "ip", "none"}) {
		t.Errorf("cutovers %v", got)
	}
	if got := cat.Types(fleet.DeployHealth); !slices.Contains(got, "vault") || !slices.Contains(got, "http") {
		t.Errorf("health types %v", got)
	}
	for _, tc := range []struct {
		strategy string
		count    int
		known    bool
		at       string // the attribute of the one refusal, "" for none
	}{
		{"", 5, true, ""},
		{"bluegreen", 5, true, ""},
		{"raft", 1, true, ""},
		{"raft", 3, true, ""},
		{"raft", 4, true, "count"},
		{"handoff", 1, true, "strategy"}, // webRole has no volume to hand over
		{"ab", 1, true, "strategy"},      // webRole's image is a VM disk, and it has a cutover
		{"canary", 1, false, ""},
	} {
		role := webRole(func(d *fleet.Deploy) { d.Strategy, d.Count = tc.strategy, tc.count })
		known, refusals := cat.Admit(role)
		var at string
		for _, r := range refusals {
			if at != "" && r.Attribute != at {
				at = "(several)"
				break
			}
			at = r.Attribute
		}
		if known != tc.known || at != tc.at {
			t.Errorf("strategy %q count %d: known %v, refusals %+v; want known %v, refusals at %q", tc.strategy, tc.count, known, refusals, tc.known, tc.at)
		}
	}
}
