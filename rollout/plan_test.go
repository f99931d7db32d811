package rollout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	storemem "github.com/drover-dev/drover/plugins/store/memory"
	"github.com/drover-dev/drover/rollout"
)

var update = flag.Bool("update", false, "rewrite golden files")

func role(name string, mod func(*fleet.Deploy)) *fleet.Role {
	r := webRole()
	if mod != nil {
		mod(r.Deploy)
	}
	r.Name = name
	return r
}

func TestPlanGolden(t *testing.T) {
	l := newLab(t,
		webRole(),
		role("api", func(d *fleet.Deploy) {
			d.Count, d.AutoPromote, d.Cutover = 1, true, fleet.Cutover{Type: "none"}
			d.Health[0] = fleet.HealthCheck{Type: "tcp", Port: 8080, Interval: 2 * time.Second, Timeout: time.Second, Healthy: 2, Deadline: 5 * time.Minute}
		}),
		role("cache", nil),
		role("vault", func(d *fleet.Deploy) {
			d.Health[0] = fleet.HealthCheck{Type: "vault", Port: 8200, Interval: 2 * time.Second, Timeout: 2 * time.Second, Healthy: 2, Deadline: 5 * time.Minute}
		}),
		&fleet.Role{Name: "pi"},
		role("worker", nil),
	)
	ctx := t.Context()
	c := l.controller()
	for _, r := range []string{"web", "cache"} {
		l.build(r)
		if _, err := c.Start(ctx, r, rollout.StartOptions{AutoPromote: new(true)}); err != nil {
			t.Fatal(err)
		}
	}
	l.build("web")
	l.build("api")
	l.build("db")
	before, _ := l.store.List(ctx, "")
	p, err := c.Plan(ctx, nil, rollout.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := l.store.List(ctx, "")
	if len(before) != len(after) {
		t.Fatal("plan changed the store")
	}
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`\b(web|cache)-(\d+)-[0-9a-f]{6}\b`)
	golden(t, "plan.golden", ids.ReplaceAll(text.Bytes(), []byte("$1-$2-XXXXXX")))
	golden(t, "plan.json.golden", append(ids.ReplaceAll(js, []byte("$1-$2-XXXXXX")), '\n'))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update ./rollout/ to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; got:\n%s", name, got)
	}
}

// planFleet generates roles x count: every role has a live rollout of its first image (count
// instances recorded) and a newer image in the catalog.
func planFleet(tb testing.TB, roles, count int) *rollout.Controller {
	tb.Helper()
	dir := tb.TempDir()
	cat := images.OpenCatalog(dir)
	st := storemem.New()
	fl := &fleet.Fleet{Path: filepath.Join(dir, "drover.hcl"), Dir: dir}
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range roles {
		name := fmt.Sprintf("role%03d", i)
		r := webRole(func(d *fleet.Deploy) { d.Count = count })
		r.Name = name
		fl.Roles = append(fl.Roles, r)
		var idents []string
		for n := range 2 {
			id := fmt.Sprintf("sha256:%064x", i*2+n+1)
			idents = append(idents, id)
			m := images.Manifest{Identity: id, Role: name, Arch: "amd64", Created: base.Add(time.Duration(n) * time.Hour),
				Artifacts: []images.Artifact{{Format: "qcow2", File: "disk.qcow2"}}}
			b, _ := json.Marshal(m)
			if err := os.MkdirAll(cat.ImageDir(id), 0o755); err != nil {
				tb.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cat.ImageDir(id), "manifest.json"), b, 0o644); err != nil {
				tb.Fatal(err)
			}
		}
		rec := rollout.Record{ID: name + "-1-000000", Role: name, Seq: 1, Kind: rollout.KindRollout, State: rollout.Retired,
			Image: rollout.Image{Identity: idents[0], Short: idents[0][7:19]}, Count: count}
		for s := range count {
			rec.Green = append(rec.Green, rollout.InstanceRef{ID: fmt.Sprintf("vm-%s-%d", name, s), Slot: s})
		}
		b, _ := json.Marshal(rec)
		if _, err := st.Put(ctx, fmt.Sprintf("rollouts/%s/%08d", name, 1), b, 0); err != nil {
			tb.Fatal(err)
		}
	}
	c, err := rollout.New(rollout.Options{Fleet: fl, Store: st, Catalog: cat})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func BenchmarkPlan500x10(b *testing.B) {
	c := planFleet(b, 500, 10)
	ctx := context.Background()
	for b.Loop() {
		p, err := c.Plan(ctx, nil, rollout.PlanOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Roles) != 500 || p.Roles[0].Action != rollout.ActionRollout {
			b.Fatalf("plan %+v", p.Roles[0])
		}
		if err := p.WriteText(&bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPlan500x10IsFast holds the figure of the issue: under a second (with room for a shared,
// instrumented machine).
func TestPlan500x10IsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a fleet of 500 roles")
	}
	c := planFleet(t, 500, 10)
	start := time.Now()
	if _, err := c.Plan(t.Context(), nil, rollout.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("plan of 500 roles x 10 instances: %s", took)
	if took > 3*time.Second {
		t.Errorf("plan took %s, want under 1s (3s allowed here for -race on a shared machine)", took)
	}
}
