package digitalocean_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/compute/digitalocean"
)

func TestContract(t *testing.T) {
	c := dolab.New(t, dolab.Options{NewPolls: 2, ActionPolls: 1, MaxPerPage: 2})
	img := importImage(t, c, newProvider(t, c))
	computetest.Run(t, func(t *testing.T) compute.Provider { return newProvider(t, c) }, computetest.Options{Image: img, Ports: []int{80, 443}, LateCreates: true})
}

// TestLaunchRequest checks what the create asked for: image, size, region, VPC, user-data, and
// the token, ports, labels and the block's tags as tags.
func TestLaunchRequest(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	p := newProvider(t, c)
	img := importImage(t, c, p)
	cfg := &digitalocean.Config{Region: c.Region(), Size: "s-2vcpu-4gb", VPCUUID: "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
		APIURL: c.URL(), Token: c.Token(), Tags: []string{"team-web"}, SpacesBucket: "drover-images"}
	p, err := digitalocean.New(cfg, digitalocean.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	spec := compute.Spec{Token: "rollout-7/web/0", Name: "Web 0", Image: img, Labels: map[string]string{"role": "web", "drover.dev/color": "green"},
		Ports: []int{80, 443}, UserData: []byte("wrapping-token")}
	in, err := p.Launch(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	ds := c.Droplets()
	if len(ds) != 1 {
		t.Fatalf("droplets %+v, want one", ds)
	}
	d := ds[0]
	if d.Name != "web-0" || d.Size != "s-2vcpu-4gb" || d.VPCUUID != cfg.VPCUUID || d.UserData != "wrapping-token" || in.ID != strconvItoa(d.ID) {
		t.Errorf("droplet %+v, instance %+v", d, in)
	}
	for _, tag := range []string{"drover", "drover-ports:80-443", "drover-label:role:web", "drover-label:drover_2edev_2fcolor:green", "team-web"} {
		if !slices.Contains(d.Tags, tag) {
			t.Errorf("droplet tags %v lack %q", d.Tags, tag)
		}
	}
	if in.Labels["drover.dev/color"] != "green" || !slices.Equal(in.Ports, []int{80, 443}) || in.Address != d.Address {
		t.Errorf("instance %+v does not read back the spec", in)
	}
}

// TestLaunchRefused: a create the API refuses starts nothing and says why.
func TestLaunchRefused(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	p := newProvider(t, c)
	img := importImage(t, c, p)
	img.Published.ID = "999"
	_, err := p.Launch(t.Context(), compute.Spec{Token: "t1", Name: "web", Image: img})
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "invalid image") {
		t.Errorf("Launch from a missing image: %v, want DigitalOcean's refusal", err)
	}
	if len(c.Droplets()) != 0 {
		t.Errorf("a refused Launch left droplets %+v", c.Droplets())
	}
}

// TestFaults: 429 with Retry-After and 5xx are retried; a 429 asking for more than the policy
// waits fails at once, saying so.
func TestFaults(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	p := newProvider(t, c)
	img := importImage(t, c, p)
	c.Fail(dolab.Fault{Method: http.MethodPost, Path: "/v2/droplets", Status: http.StatusTooManyRequests, RetryAfter: "1"})
	c.Fail(dolab.Fault{Path: "/v2/droplets", Status: http.StatusServiceUnavailable, Times: 2})
	in, err := p.Launch(t.Context(), compute.Spec{Token: "t1", Name: "web", Image: img, Labels: map[string]string{"role": "web"}})
	if err != nil {
		t.Fatalf("Launch through a 429 and two 503s: %v", err)
	}
	var statuses []int
	for _, r := range c.Requests() {
		statuses = append(statuses, r.Status)
	}
	if !slices.Contains(statuses, 429) || !slices.Contains(statuses, 503) {
		t.Errorf("statuses %v: the faults were not answered", statuses)
	}
	c.Fail(dolab.Fault{Path: "/v2/droplets", Status: http.StatusTooManyRequests, RetryAfter: "3600"})
	_, err = p.Instances(t.Context(), compute.Selector{"role": "web"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 429") || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("Instances under a 429 asking for an hour: %v, want a 429 that says it would wait too long", err)
	}
	if err := p.Terminate(t.Context(), in.ID); err != nil {
		t.Fatal(err)
	}
}

// TestTerminateRemembersToken: the token of a deleted droplet is refused, also by another
// provider value (a new process).
func TestTerminateRemembersToken(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	p := newProvider(t, c)
	img := importImage(t, c, p)
	spec := compute.Spec{Token: "t-gone", Name: "web", Image: img}
	in, err := p.Launch(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(t.Context(), in.ID); err != nil {
		t.Fatal(err)
	}
	_, err = newProvider(t, c).Launch(t.Context(), spec)
	if err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("Launch of a terminated token from a new provider: %v, want a refusal", err)
	}
	if len(c.Droplets()) != 0 {
		t.Errorf("droplets %+v after the refused Launch", c.Droplets())
	}
	if errors.Is(err, compute.ErrNotFound) {
		t.Errorf("the refusal wraps ErrNotFound: %v", err)
	}
}

// TestLaunchFailsLater: a create DigitalOcean accepts and then fails (the droplet archived) is an
// error; the droplet is listed as terminated and Terminate deletes it.
func TestLaunchFailsLater(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	p := newProvider(t, c)
	img := importImage(t, c, p)
	c.BreakCreates(1)
	_, err := p.Launch(t.Context(), compute.Spec{Token: "t-broken", Name: "web", Image: img, Labels: map[string]string{"role": "web"}})
	if err == nil || !strings.Contains(err.Error(), "failed to start") {
		t.Fatalf("Launch of a droplet that fails: %v, want an error saying so", err)
	}
	ins, err := p.Instances(t.Context(), compute.Selector{"role": "web"})
	if err != nil || len(ins) != 1 || ins[0].State != compute.Terminated {
		t.Fatalf("Instances after the failed launch: %+v, %v; want one terminated", ins, err)
	}
	if err := p.Terminate(t.Context(), ins[0].ID); err != nil {
		t.Fatal(err)
	}
	if d := c.Droplets(); len(d) != 0 {
		t.Errorf("droplets %+v after Terminate", d)
	}
}

// TestQuotaUsedUp: a 429 saying no requests remain until RateLimit-Reset (no Retry-After) is
// waited out until then, and the call succeeds.
func TestQuotaUsedUp(t *testing.T) {
	c := dolab.New(t, dolab.Options{})
	p := newProvider(t, c)
	reset := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second).Add(time.Second)
	c.Fail(dolab.Fault{Path: "/v2/droplets", Status: http.StatusTooManyRequests, Reset: reset})
	if _, err := p.Instances(t.Context(), nil); err != nil {
		t.Fatalf("Instances after the quota's reset: %v", err)
	}
	if now := time.Now(); now.Before(reset) {
		t.Errorf("the retry came at %v, before RateLimit-Reset %v", now, reset)
	}
}
