package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/rootfs"
	"github.com/drover-dev/drover/plugins/store/local"
)

// TestBuildPrunesOldImages: after a build that added an image, each role keeps its newest
// keep_images images and every image a rollout uses; a build that only found its image in the
// catalog, keep_images = 0, or a state store it cannot read removes nothing.
func TestBuildPrunesOldImages(t *testing.T) {
	type run struct {
		name     string
		keep     string // the drover block's keep_images line
		cached   bool
		lockHeld bool
		want     []int // indexes of the seeded images left, newest first
	}
	for _, r := range []run{
		{name: "keep 2 and the one in use", keep: "keep_images = 2", want: []int{4, 3, 0}},
		{name: "default keep 3", want: []int{4, 3, 2, 0}},
		{name: "nothing built", keep: "keep_images = 1", cached: true, want: []int{4, 3, 2, 1, 0}},
		{name: "pruning off", keep: "keep_images = 0", want: []int{4, 3, 2, 1, 0}},
		{name: "store locked by a rollout", keep: "keep_images = 1", lockHeld: true, want: []int{4, 3, 2, 1, 0}},
	} {
		t.Run(r.name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, ".drover")
			ids := seedCatalog(t, state, 5)
			st, err := local.New(local.NewDefaultConfig(state))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Put(context.Background(), "images/in-use/"+ids[0], []byte(`{"identity":"`+ids[0]+`"}`), 0); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if r.lockHeld {
				db, err := bolt.Open(filepath.Join(state, "state.db"), 0o600, &bolt.Options{Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
			}
			fleetFile := filepath.Join(dir, "drover.hcl")
			src := "drover {\n  " + r.keep + "\n}\n\nrole \"web\" {\n  image {\n    base     = \"debian-bookworm\"\n    packages = [\"nginx\"]\n  }\n}\n"
			if err := os.WriteFile(fleetFile, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			f, diags := fleet.Load(fleetFile, fleet.Options{})
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			var out bytes.Buffer
			a := newApp(&out, &out, func(string) (string, bool) { return "", false })
			fs := flag.NewFlagSet("drover", flag.ContinueOnError)
			fs.String("fleet", fleetFile, "")
			fs.String("state", "", "")
			c := cli.NewContext(cli.NewApp(), fs, nil)
			newest, err := images.OpenCatalog(state).Get(ids[4])
			if err != nil {
				t.Fatal(err)
			}
			p := newBuildProgress(&out, false, false)
			a.autoPrune(t.Context(), c, f, []buildOutcome{{role: "web", result: &rootfs.Result{Manifest: newest, Cached: r.cached}}}, p)
			p.Close()

			left, err := images.OpenCatalog(state).List()
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, m := range left {
				got = append(got, images.ShortID(m.Identity))
			}
			for _, i := range r.want {
				want = append(want, images.ShortID(ids[i]))
			}
			if !slices.Equal(got, want) {
				t.Errorf("left %v, want %v\n%s", got, want, out.String())
			}
			pruned := strings.Count(out.String(), "pruned old image")
			if pruned != 5-len(r.want) {
				t.Errorf("%d \"pruned\" lines for %d images removed:\n%s", pruned, 5-len(r.want), out.String())
			}
			if r.lockHeld && !strings.Contains(out.String(), "old images not pruned") {
				t.Errorf("a locked store is not reported:\n%s", out.String())
			}
		})
	}
}
