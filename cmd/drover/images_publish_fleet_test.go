package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/all"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/memory"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/store/local"
)

// memcloudConfig is the compute "memcloud" block of a test-only type: a memory.Cloud, which boots
// only what was published to it.
type memcloudConfig struct {
	Region string `hcl:"region,optional"`
}

// memcloudFactory registers one shared cloud as the compute type "memcloud"; every block opens it.
func memcloudFactory(cloud *memory.Cloud) all.Providers {
	return all.Providers{Compute: []compute.Factory{{
		Type:      "memcloud",
		Summary:   "a test-only cloud in memory that boots published images",
		NewConfig: func(config.LookupEnv) (any, error) { return &memcloudConfig{Region: "mem-1"}, nil },
		Open: func(_ context.Context, cfg any, _ config.Env) (compute.Provider, error) {
			if _, err := config.As[memcloudConfig]("memcloud", cfg); err != nil {
				return nil, err
			}
			return cloud, nil
		},
	}}}
}

const memcloudFleet = `
compute "memcloud" "cloud" {
  region = "mem-1"
}

role "web" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "cloud"
    count    = 1
    keep_old = "0s"
    watch    = "0s"
  }
}
`

// drover images publish, show, list and prune through the fleet file, on a compute type registered
// by the test: the whole path from the command line to the provider.
func TestImagesPublishThroughTheFleet(t *testing.T) {
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(fleetFile, []byte(memcloudFleet), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	old := seedRawImage(t, state, 200<<10, 2*time.Hour)
	mid := seedRawImage(t, state, 200<<10, time.Hour)
	newest := seedRawImage(t, state, 200<<10, 0)
	cloud := memory.NewCloud("mem-1")
	cli := func(args ...string) (int, string, string) {
		return droverWith(t, memcloudFactory(cloud), append([]string{"--fleet", fleetFile, "--state", state}, args...)...)
	}

	for _, m := range []*images.Manifest{old, mid} {
		code, stdout, stderr := cli("images", "publish", "--to", "cloud", "web@"+m.ShortID())
		if code != exitOK || !strings.HasPrefix(stdout, "publishing web@"+m.ShortID()+" to cloud (memcloud)\n") ||
			!strings.Contains(stdout, "\npublished web@"+m.ShortID()+" on cloud (memcloud): img-"+m.ShortID()+" in mem-1; 200.0 KiB uploaded in ") {
			t.Fatalf("images publish: exit %d\n%s%s", code, stdout, stderr)
		}
	}
	code, stdout, stderr := cli("--output", "json", "images", "publish", "--to", "cloud", "web")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var last publishedEvent
	if code != exitOK || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || last.Image != newest.Identity || last.Existing || last.Uploaded != 200<<10 {
		t.Fatalf("images publish --output json: exit %d, last event %+v\n%s%s", code, last, stdout, stderr)
	}
	code, stdout, _ = cli("--output", "json", "images", "publish", "--to", "cloud", "web")
	if code != exitOK || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"existing":true`) {
		t.Errorf("second publish --output json: exit %d, want the publish and published events only\n%s", code, stdout)
	}
	if bytes, publishes := cloud.Uploaded(); bytes != 3*200<<10 || publishes != 3 {
		t.Errorf("the cloud received %d bytes in %d publishes, want each image once", bytes, publishes)
	}

	code, stdout, _ = cli("images", "list")
	if code != exitOK || strings.Count(stdout, "cloud/mem-1") != 3 {
		t.Errorf("images list: exit %d\n%s", code, stdout)
	}

	// The oldest is in use: prune --keep 1 removes the middle one and deletes its copy only.
	st, err := local.New(local.NewDefaultConfig(state))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), "images/in-use/"+old.Identity, []byte(`{"identity":"`+old.Identity+`"}`), 0); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, stdout, stderr = cli("images", "prune", "--keep", "1")
	if code != exitOK || !strings.Contains(stdout, "unpublished web@"+mid.ShortID()+" from cloud (memcloud): img-"+mid.ShortID()+" in mem-1\n") ||
		!strings.Contains(stdout, "removed web@"+mid.ShortID()+"\n") || !strings.HasSuffix(stdout, "1 image(s) removed, 1 published copy(ies) deleted\n") {
		t.Fatalf("images prune: exit %d\n%s%s", code, stdout, stderr)
	}
	for m, want := range map[*images.Manifest]bool{old: true, mid: false, newest: true} {
		if _, ok, _ := cloud.Published(t.Context(), m.Identity); ok != want {
			t.Errorf("after prune, copy of %s on the cloud: %v, want %v", m.ShortID(), ok, want)
		}
	}
}

// drover rollout start on a compute that boots its own copy publishes the image first, then
// launches from the copy; a second rollout of the image uploads nothing.
func TestRolloutPublishesThroughTheFleet(t *testing.T) {
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "drover.hcl")
	if err := os.WriteFile(fleetFile, []byte(memcloudFleet), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	m := seedRawImage(t, state, 200<<10, 0)
	cloud := memory.NewCloud("mem-1")
	cli := func(args ...string) (int, string, string) {
		return droverWith(t, memcloudFactory(cloud), append([]string{"--fleet", fleetFile, "--state", state}, args...)...)
	}
	code, stdout, stderr := cli("rollout", "start", "--image", m.Identity, "web")
	if code != exitOK || !strings.Contains(stdout, ": publish: published image "+m.ShortID()+" on cloud as img-"+m.ShortID()+" in mem-1 in ") {
		t.Fatalf("rollout start: exit %d\n%s%s", code, stdout, stderr)
	}
	ins, err := cloud.Instances(t.Context(), nil)
	if err != nil || len(ins) != 1 {
		t.Fatalf("instances %v, %v; want 1", ins, err)
	}
	if img, _ := cloud.LaunchedImage(ins[0].ID); img.Published.ID != "img-"+m.ShortID() {
		t.Errorf("launched from %+v, want the published copy", img)
	}
	code, stdout, _ = cli("images", "show", "web")
	if code != exitOK || !strings.Contains(stdout, "\npublished  cloud (memcloud) img-"+m.ShortID()+" in mem-1, made ") {
		t.Errorf("images show after the rollout: exit %d\n%s", code, stdout)
	}
	if code, stdout, stderr := cli("rollout", "promote", "web"); code != exitOK {
		t.Fatalf("rollout promote: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = cli("rollout", "start", "--force", "--image", m.Identity, "web")
	if code != exitOK || !strings.Contains(stdout, ": publish: image "+m.ShortID()+" is published on cloud as img-"+m.ShortID()) {
		t.Fatalf("second rollout start: exit %d\n%s%s", code, stdout, stderr)
	}
	if bytes, publishes := cloud.Uploaded(); bytes != 200<<10 || publishes != 1 {
		t.Errorf("two rollouts uploaded %d bytes in %d publishes, want the image once", bytes, publishes)
	}
}
