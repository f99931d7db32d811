package vultrlab_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
)

type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

func client(t *testing.T, c *vultrlab.Cloud, key string) *govultr.Client {
	t.Helper()
	g := govultr.NewClient(&http.Client{Transport: bearer{key}})
	if err := g.SetBaseURL(c.URL()); err != nil {
		t.Fatal(err)
	}
	g.SetRateLimit(15 * time.Millisecond)
	return g
}

func TestBearerAuth(t *testing.T) {
	c := vultrlab.New(t, vultrlab.Options{})
	if _, _, _, err := client(t, c, "wrong").Instance.List(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "Invalid API token") {
		t.Fatalf("List with a wrong key: %v, want 401 Invalid API token", err)
	}
	if _, _, _, err := client(t, c, c.APIKey()).Instance.List(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestPaginationAndTagFilter(t *testing.T) {
	c := vultrlab.New(t, vultrlab.Options{})
	g := client(t, c, c.APIKey())
	snap := c.AddSnapshot(t, "d", []byte("x"))
	for i := range 7 {
		tags := []string{"all"}
		if i%2 == 0 {
			tags = append(tags, "even")
		}
		if _, _, err := g.Instance.Create(t.Context(), &govultr.InstanceCreateReq{Region: c.Region(), Plan: "vc2-1c-1gb", SnapshotID: snap, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	opts := &govultr.ListOptions{PerPage: 2, Tag: "even"}
	pages := 0
	for {
		ins, meta, _, err := g.Instance.List(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, in := range ins {
			got = append(got, in.ID)
		}
		if meta.Total != 4 {
			t.Errorf("meta.total = %d, want 4", meta.Total)
		}
		if meta.Links.Next == "" {
			break
		}
		opts.Cursor = meta.Links.Next
	}
	if len(got) != 4 || pages != 2 {
		t.Fatalf("listing tag even by 2: %d instances in %d pages, want 4 in 2", len(got), pages)
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	c := vultrlab.New(t, vultrlab.Options{})
	c.Fail(vultrlab.RateLimited("GET /v2/instances", 2, 1))
	start := time.Now()
	if _, _, _, err := client(t, c, c.APIKey()).Instance.List(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("govultr got past two 429s with Retry-After 1 in %v, want at least 2 s", d)
	}
}

func TestSnapshotFromURL(t *testing.T) {
	disk := append(make([]byte, 3<<20), []byte("data at the end")...)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/disk.raw" {
			http.NotFound(w, r)
			return
		}
		w.Write(disk)
	}))
	defer src.Close()
	c := vultrlab.New(t, vultrlab.Options{})
	g := client(t, c, c.APIKey())
	s, _, err := g.Snapshot.CreateFromURL(t.Context(), &govultr.SnapshotURLReq{URL: src.URL + "/disk.raw", Description: "drover web", UEFI: govultr.BoolToBoolPtr(true)})
	if err != nil || s.Status != "pending" {
		t.Fatalf("CreateFromURL = %+v, %v; want pending", s, err)
	}
	got := waitSnapshot(t, g, s.ID)
	if got == nil || got.Status != "complete" || got.Size != len(disk) {
		t.Fatalf("snapshot = %+v, want complete of %d bytes", got, len(disk))
	}
	fake := c.Snapshots()[0]
	if b, err := os.ReadFile(fake.Path); err != nil || !bytes.Equal(b, disk) || !fake.UEFI {
		t.Fatalf("the snapshot's bytes differ from the URL's (%v), or UEFI %v", err, fake.UEFI)
	}
	list, _, _, err := g.Snapshot.List(t.Context(), &govultr.ListOptions{Description: "drover web"})
	if err != nil || len(list) != 1 {
		t.Fatalf("List by description = %v, %v", list, err)
	}

	// A URL that does not answer, and a failure the test asks for: the snapshot goes, with a reason.
	bad, _, err := g.Snapshot.CreateFromURL(t.Context(), &govultr.SnapshotURLReq{URL: src.URL + "/missing", UEFI: govultr.BoolToBoolPtr(false)})
	if err != nil {
		t.Fatal(err)
	}
	c.FailSnapshots("the image has no partition table")
	failed, _, err := g.Snapshot.CreateFromURL(t.Context(), &govultr.SnapshotURLReq{URL: src.URL + "/disk.raw", UEFI: govultr.BoolToBoolPtr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if waitSnapshot(t, g, bad.ID) != nil || waitSnapshot(t, g, failed.ID) != nil {
		t.Fatal("failed snapshots are still listed")
	}
	reasons := c.FailedSnapshots()
	if !strings.Contains(reasons[bad.ID], "404") || reasons[failed.ID] != "the image has no partition table" {
		t.Fatalf("failure reasons = %v", reasons)
	}
}

// waitSnapshot polls snapshot id until it is no longer pending; nil when it is gone.
func waitSnapshot(t *testing.T, g *govultr.Client, id string) *govultr.Snapshot {
	t.Helper()
	for range 200 {
		s, _, err := g.Snapshot.Get(t.Context(), id)
		if err != nil && strings.Contains(err.Error(), "404") {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != "pending" {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("snapshot %s still pending", id)
	return nil
}

// recorder is a Hypervisor whose machines are records, and whose boots wait for a release.
type recorder struct {
	mu      sync.Mutex
	booted  []vultrlab.MachineSpec
	stopped int
	release chan struct{}
	fail    error
}

type machine struct{ r *recorder }

func (m machine) Console() ([]byte, error) { return []byte("console"), nil }
func (m machine) Stop() error {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	m.r.stopped++
	return nil
}

func (r *recorder) Boot(ctx context.Context, s vultrlab.MachineSpec) (vultrlab.Machine, error) {
	<-r.release
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	r.booted = append(r.booted, s)
	return machine{r}, nil
}

func TestHypervisorLifecycle(t *testing.T) {
	h := &recorder{release: make(chan struct{})}
	c := vultrlab.New(t, vultrlab.Options{Hypervisor: h, Ports: []int{8080}})
	g := client(t, c, c.APIKey())
	snap := c.AddSnapshot(t, "d", append(make([]byte, 2<<20), 1))
	in, _, err := g.Instance.Create(t.Context(), &govultr.InstanceCreateReq{Region: c.Region(), Plan: "p", SnapshotID: snap, UserData: "aGVsbG8="})
	if err != nil {
		t.Fatal(err)
	}
	status := func() (string, string) {
		got, _, err := g.Instance.Get(t.Context(), in.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status, got.PowerStatus
	}
	for range 3 {
		if s, _ := status(); s != "pending" {
			t.Fatalf("status %q while booting, want pending", s)
		}
	}
	h.release <- struct{}{}
	waitFor(t, func() bool { s, _ := status(); return s == "active" })
	h.mu.Lock()
	spec := h.booted[0]
	h.mu.Unlock()
	if spec.Address.String() != c.Instances()[0].MainIP.String() || spec.BootMode != "legacy-bios" || spec.Metadata == nil {
		t.Errorf("boot spec %+v", spec)
	}
	if st, err := os.Stat(spec.Disk); err != nil || st.Size() != 2<<20+1 {
		t.Fatalf("instance disk: %v, %v", st, err)
	}
	rec := httptest.NewRecorder()
	spec.Metadata.ServeHTTP(rec, httptest.NewRequest("GET", "/latest/user-data", nil))
	if rec.Body.String() != "hello" {
		t.Errorf("metadata user-data = %q, want hello", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	spec.Metadata.ServeHTTP(rec, httptest.NewRequest("GET", "/v1.json", nil))
	if !strings.Contains(rec.Body.String(), `"instanceid":"`+in.ID) {
		t.Errorf("metadata v1.json = %s", rec.Body.String())
	}
	if err := g.Instance.Halt(t.Context(), in.ID); err != nil {
		t.Fatal(err)
	}
	if _, p := status(); p != "stopped" || h.stopped != 1 {
		t.Fatalf("after halt: power %q, %d machines stopped", p, h.stopped)
	}
	if err := g.Instance.Start(t.Context(), in.ID); err != nil {
		t.Fatal(err)
	}
	h.release <- struct{}{}
	waitFor(t, func() bool { s, p := status(); return s == "active" && p == "running" && len(c.Console(in.ID)) > 0 })
	h.fail = errors.New("no bootable device")
	if err := g.Instance.Delete(t.Context(), in.ID); err != nil {
		t.Fatal(err)
	}
	if h.stopped != 2 {
		t.Errorf("delete stopped %d machines in all, want 2", h.stopped)
	}
	if _, err := os.Stat(spec.Disk); !os.IsNotExist(err) {
		t.Errorf("the deleted instance's disk is still there: %v", err)
	}
	// Its console stays, as it was when its machine stopped: what a test shows of an instance
	// drover destroyed.
	if got := string(c.Console(in.ID)); got != "console" {
		t.Errorf("console of the deleted instance = %q, want its last one", got)
	}
	if got := c.Consoles(); len(got) != 1 || string(got[in.ID]) != "console" {
		t.Errorf("Consoles() = %v, want the deleted instance's", got)
	}

	// A boot that fails leaves the instance powered off, with the reason.
	in2, _, err := g.Instance.Create(t.Context(), &govultr.InstanceCreateReq{Region: c.Region(), Plan: "p", SnapshotID: snap})
	if err != nil {
		t.Fatal(err)
	}
	h.release <- struct{}{}
	waitFor(t, func() bool { return c.BootErrors()[in2.ID] != "" })
	if got, _, _ := g.Instance.Get(t.Context(), in2.ID); got.PowerStatus != "stopped" {
		t.Errorf("after a failed boot: power %q, want stopped", got.PowerStatus)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 500 {
		if ok() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("timed out")
}
