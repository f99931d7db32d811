package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/store/local"
)

// seedCatalog puts n fake web images in a state directory's catalog, oldest first.
func seedCatalog(t *testing.T, state string, n int) []string {
	t.Helper()
	cat := images.OpenCatalog(state)
	var ids []string
	for i := 0; i < n; i++ {
		id := "sha256:" + strings.Repeat(string(rune('a'+i)), 64)
		s, err := cat.Stage(id)
		if err != nil {
			t.Fatal(err)
		}
		m := &images.Manifest{Identity: id, Role: "web", Created: time.Now().Add(time.Duration(i-n) * time.Hour),
			Packages: []images.Package{{Name: "nginx", Version: "1.22." + string(rune('0'+i)), Arch: "amd64"}}}
		if err := s.Commit(m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestImagesListShowPrune(t *testing.T) {
	state := t.TempDir()
	ids := seedCatalog(t, state, 4)

	// A kept rollout still uses the oldest image.
	st, err := local.New(local.NewDefaultConfig(state))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), "images/in-use/"+ids[0], []byte(`{"identity":"`+ids[0]+`"}`), 0); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, stdout, stderr := drover(t, nil, "--state", state, "images", "list")
	if code != 0 || strings.Count(stdout, "web") != 4 {
		t.Fatalf("list: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = drover(t, nil, "--state", state, "--output", "json", "images", "show", "web")
	var m images.Manifest
	if code != 0 || json.Unmarshal([]byte(stdout), &m) != nil || m.Identity != ids[3] {
		t.Fatalf("show web: exit %d, %q; want the newest", code, m.Identity)
	}
	code, stdout, _ = drover(t, nil, "--state", state, "images", "diff", "web@"+images.ShortID(ids[0]), "web")
	if code != 0 || !strings.Contains(stdout, "~ package nginx 1.22.0 -> 1.22.3") {
		t.Errorf("diff: exit %d\n%s", code, stdout)
	}

	code, stdout, _ = drover(t, nil, "--state", state, "images", "prune", "--keep", "1")
	if code != 0 {
		t.Fatalf("prune: exit %d", code)
	}
	left, _ := images.OpenCatalog(state).List()
	var kept []string
	for _, m := range left {
		kept = append(kept, m.Identity)
	}
	if len(kept) != 2 || kept[0] != ids[3] || kept[1] != ids[0] {
		t.Errorf("kept %v, want the newest and the one in use\n%s", kept, stdout)
	}

	code, _, stderr = drover(t, nil, "--state", state, "images", "show", "nosuchrole")
	if code != exitFailure || !strings.Contains(stderr, "(hint: ") {
		t.Errorf("show of an unknown image: exit %d\n%s", code, stderr)
	}
}

// TestImagesShowContainers checks that drover images show names an image's containers with the
// digest they are pinned by.
func TestImagesShowContainers(t *testing.T) {
	state := t.TempDir()
	id := "sha256:" + strings.Repeat("c", 64)
	s, err := images.OpenCatalog(state).Stage(id)
	if err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("d", 64)
	m := &images.Manifest{Identity: id, Role: "app", Created: time.Now(),
		Inputs: images.Inputs{Containers: []images.ContainerInput{{Name: "hello", Image: "127.0.0.1:5000/drover/hello:1", Digest: digest, Engine: "podman"}}}}
	if err := s.Commit(m); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := drover(t, nil, "--state", state, "images", "show", "app")
	if want := "container  hello 127.0.0.1:5000/drover/hello:1@" + digest + " (podman)\n"; code != 0 || !strings.Contains(stdout, want) {
		t.Errorf("show: exit %d, want the line %q\n%s%s", code, want, stdout, stderr)
	}
}
