package vultr

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
)

// labSnapshot publishes a tiny snapshot on the fake (create-from-url of a local server's file)
// and returns the Image instances launch from.
func labSnapshot(t *testing.T, cloud *vultrlab.Cloud) compute.Image {
	t.Helper()
	id := cloud.AddSnapshot(t, "drover-test", []byte("not a real disk"))
	return compute.Image{Identity: "sha256:test", Published: compute.PublishedImage{Identity: "sha256:test", ID: id, Region: cloud.Region()}}
}

func labProvider(t *testing.T, cloud *vultrlab.Cloud, opts ...Option) *Provider {
	t.Helper()
	cfg := &Config{Region: cloud.Region(), Plan: "vc2-1c-1gb", APIKey: cloud.APIKey(), APIURL: cloud.URL()}
	p, err := New(cfg, append([]Option{WithPollInterval(20 * time.Millisecond), WithRetry(3, 10*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContract(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{PendingPolls: 2})
	img := labSnapshot(t, cloud)
	computetest.Run(t, func(t *testing.T) compute.Provider {
		return labProvider(t, cloud, WithPageSize(3)) // small pages: listings follow the cursor
	}, computetest.Options{Image: img, Ports: []int{80, 443}, LateCreates: true})
}

func TestLaunchRetriesRateLimitAndServerErrors(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	img := labSnapshot(t, cloud)
	p := labProvider(t, cloud)
	cloud.Fail(vultrlab.RateLimited("POST /v2/instances", 1, 1))
	cloud.Fail(vultrlab.ServerError("GET /v2/instances", 2))
	start := time.Now()
	in, err := p.Launch(context.Background(), compute.Spec{Token: "t1", Name: "web-1", Image: img, Labels: map[string]string{"role": "web"}, Ports: []int{80}})
	if err != nil {
		t.Fatalf("Launch through a 429 and two 500s: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("Launch took %v: it did not wait the Retry-After of 1 s", waited)
	}
	if in.State != compute.Running || !in.Address.IsValid() {
		t.Errorf("Launch = %+v, want running with an address", in)
	}
	if n := len(cloud.Instances()); n != 1 {
		t.Errorf("the fake holds %d instances, want 1", n)
	}
	var limited, failed int
	for _, r := range cloud.Requests() {
		switch {
		case r.Status == 429:
			limited++
		case r.Status == 500:
			failed++
		}
	}
	if limited != 1 || failed != 2 {
		t.Errorf("the fake answered %d 429s and %d 500s, want 1 and 2", limited, failed)
	}
}

func TestLaunchRefused(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	img := labSnapshot(t, cloud)
	p := labProvider(t, cloud)
	cloud.RefuseLaunches("plan vc2-1c-1gb is sold out in ewr")
	_, err := p.Launch(context.Background(), compute.Spec{Token: "t1", Name: "web-1", Image: img})
	if err == nil || !strings.Contains(err.Error(), "sold out") || !strings.Contains(err.Error(), "nothing was started") {
		t.Fatalf("Launch refused by Vultr: %v, want the reason and that nothing was started", err)
	}
	if n := len(cloud.Instances()); n != 0 {
		t.Errorf("a refused launch left %d instances", n)
	}
	if _, err := p.Launch(context.Background(), compute.Spec{Token: "t1", Name: "web-1", Image: img}); err != nil {
		t.Fatalf("retry after the refusal: %v", err)
	}
}

func TestLaunchWaitsSlowPending(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{PendingPolls: 6})
	img := labSnapshot(t, cloud)
	p := labProvider(t, cloud)
	in, err := p.Launch(context.Background(), compute.Spec{Token: "slow", Name: "web", Image: img})
	if err != nil || in.State != compute.Running {
		t.Fatalf("Launch of a slow instance = %+v, %v; want running", in, err)
	}
	gets := 0
	for _, r := range cloud.Requests() {
		if r.Route == "GET /v2/instances/{id}" {
			gets++
		}
	}
	if gets < 6 {
		t.Errorf("Launch polled %d times, want at least the 6 the instance stayed pending", gets)
	}
}

// TestLaunchAdoptsAfterCrash: a process that died between the create and the wait leaves an
// instance with its token tag; a new provider's Launch of the token returns it.
func TestLaunchAdoptsAfterCrash(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{PendingPolls: 1000})
	img := labSnapshot(t, cloud)
	spec := compute.Spec{Token: "crash", Name: "web", Image: img, Labels: map[string]string{"role": "web"}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := labProvider(t, cloud).Launch(ctx, spec); err == nil {
		t.Fatal("Launch of an instance pending for ever returned")
	}
	if n := len(cloud.Instances()); n != 1 {
		t.Fatalf("the first Launch left %d instances, want 1", n)
	}
	cloud.Activate(cloud.Instances()[0].ID)
	in, err := labProvider(t, cloud).Launch(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := cloud.Instances(); len(got) != 1 || got[0].ID != in.ID {
		t.Fatalf("after the retry the fake holds %v, want only %s", got, in.ID)
	}
}

func TestNoPublishedSnapshot(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	_, err := labProvider(t, cloud).Launch(context.Background(), compute.Spec{Token: "x", Name: "web", Image: compute.Image{Identity: "sha256:abc"}})
	if err == nil || !strings.Contains(err.Error(), "publish image sha256:abc") {
		t.Fatalf("Launch without a snapshot: %v", err)
	}
}

func TestLaunchAttachesVPCAndUserData(t *testing.T) {
	cloud := vultrlab.New(t, vultrlab.Options{})
	img := labSnapshot(t, cloud)
	const vpc = "cb676a46-66fd-4dfb-b839-443f2e6c0b60"
	p, err := New(&Config{Region: cloud.Region(), Plan: "vc2-2c-4gb", VPC: vpc, APIKey: cloud.APIKey(), APIURL: cloud.URL()}, WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	in, err := p.Launch(t.Context(), compute.Spec{Token: "v", Name: "web blue 1", Image: img, UserData: []byte(`{"role":"web"}`), Labels: map[string]string{"role": "web"}, Ports: []int{80}})
	if err != nil {
		t.Fatal(err)
	}
	got := cloud.Instances()[0]
	if got.VPC != vpc || got.Plan != "vc2-2c-4gb" || string(got.UserData) != `{"role":"web"}` || got.Label != "web blue 1" {
		t.Errorf("the fake's instance %+v", got)
	}
	rec := httptest.NewRecorder()
	cloud.Metadata(in.ID).ServeHTTP(rec, httptest.NewRequest("GET", "/v1.json", nil))
	if !strings.Contains(rec.Body.String(), `"network-type":"private"`) || !strings.Contains(rec.Body.String(), got.VPCAddress.String()) {
		t.Errorf("metadata lacks the VPC interface: %s", rec.Body.String())
	}
	wantTags := []string{"drover-ports=80", "drover-token=v", "drover:role=web"}
	if strings.Join(got.Tags, " ") != strings.Join(wantTags, " ") {
		t.Errorf("tags %v, want %v", got.Tags, wantTags)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := map[string]Config{
		"region":  {Region: "New Jersey", Plan: "p"},
		"no plan": {Region: "ewr"},
		"vpc":     {Region: "ewr", Plan: "p", VPC: "default"},
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate(%+v) = nil", name, c)
		}
	}
	if err := (&Config{Region: "ewr", Plan: "vc2-1c-1gb"}).Validate(); err != nil {
		t.Error(err)
	}
}
