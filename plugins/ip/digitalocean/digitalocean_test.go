package digitalocean_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/cloudlab/dolab"
	"github.com/drover-dev/drover/plugins/compute"
	docompute "github.com/drover-dev/drover/plugins/compute/digitalocean"
	"github.com/drover-dev/drover/plugins/internal/doapi"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/digitalocean"
	"github.com/drover-dev/drover/plugins/ip/iptest"
)

func fastRetry() doapi.Retry {
	return doapi.Retry{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond, MaxRetryAfter: 5 * time.Second,
		AttemptTimeout: 5 * time.Second, CallTimeout: 20 * time.Second}
}

// lab is the fake with a compute provider and an image to launch.
type lab struct {
	cloud   *dolab.Cloud
	compute *docompute.Provider
	image   compute.Image
	n       int
}

func newLab(t *testing.T, opts dolab.Options) *lab {
	t.Helper()
	c := dolab.New(t, opts)
	p, err := docompute.New(&docompute.Config{Region: c.Region(), Size: "s-1vcpu-1gb", APIURL: c.URL(), Token: c.Token(), SpacesBucket: "drover-images"},
		docompute.WithRetry(fastRetry()), docompute.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	id := c.AddImage("web", make([]byte, 1<<20))
	return &lab{cloud: c, compute: p, image: compute.Image{Identity: "sha256:web", Published: compute.PublishedImage{Identity: "sha256:web", ID: strconv.Itoa(id), Region: c.Region()}}}
}

func (l *lab) launch(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		l.n++
		in, err := l.compute.Launch(t.Context(), compute.Spec{Token: fmt.Sprintf("%s-%d", t.Name(), l.n), Name: "web", Image: l.image, Labels: map[string]string{"role": "web"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	return ids
}

func (l *lab) provider(t *testing.T, addr netip.Addr) ip.Provider {
	t.Helper()
	p, err := digitalocean.New(t.Context(), &digitalocean.Config{Address: addr.String()}, l.compute, digitalocean.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContract(t *testing.T) {
	l := newLab(t, dolab.Options{ActionPolls: 2})
	iptest.Run(t, func(t *testing.T) iptest.Fixture {
		a0, a1 := l.cloud.CreateReservedIP(), l.cloud.CreateReservedIP()
		return iptest.Fixture{
			Provider:  l.provider(t, a0),
			Addrs:     []netip.Addr{a0, a1},
			Instances: l.launch(t, 2),
			Unknown:   "999999",
			Reopen:    func(t *testing.T) ip.Provider { return l.provider(t, a0) },
			Kill: func(t *testing.T, id string) {
				if err := l.compute.Terminate(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			},
		}
	}, iptest.Options{})
}

func TestNewUnknownAddress(t *testing.T) {
	l := newLab(t, dolab.Options{})
	_, err := digitalocean.New(t.Context(), &digitalocean.Config{Address: "203.0.113.10"}, l.compute)
	if err == nil || !strings.Contains(err.Error(), "not a reserved IP of this account") {
		t.Errorf("New with an address the account lacks: %v", err)
	}
}

// TestAssignThroughFaults: a 429 and a 500 on the assign action are retried, and the move is
// verified.
func TestAssignThroughFaults(t *testing.T) {
	l := newLab(t, dolab.Options{ActionPolls: 1})
	addr := l.cloud.CreateReservedIP()
	ids := l.launch(t, 2)
	p := l.provider(t, addr)
	l.cloud.Fail(dolab.Fault{Method: http.MethodPost, Path: "/v2/reserved_ips/", Status: http.StatusTooManyRequests, RetryAfter: "1"})
	l.cloud.Fail(dolab.Fault{Method: http.MethodPost, Path: "/v2/reserved_ips/", Status: http.StatusInternalServerError})
	if err := p.Assign(t.Context(), addr, ids[1]); err != nil {
		t.Fatal(err)
	}
	if got := l.cloud.ReservedIPs()[0].Droplet; strconv.Itoa(got) != ids[1] {
		t.Errorf("the fake says droplet %d holds %v, want %s", got, addr, ids[1])
	}
	if err := p.Assign(t.Context(), addr, "not-a-droplet"); !errors.Is(err, ip.ErrUnknownInstance) {
		t.Errorf("Assign to a non-numeric ID: %v, want ErrUnknownInstance", err)
	}
}

// TestMoveGap moves the reserved IP between two droplets that answer HTTP on their public
// addresses while a request loop runs through the reserved IP, and reports the longest time
// without an answer: the assign action moves the address in one step, so there is no moment
// without a holder.
func TestMoveGap(t *testing.T) {
	const port = 18080
	l := newLab(t, dolab.Options{Ports: []int{port}, ActionPolls: 1})
	addr := l.cloud.CreateReservedIP()
	ids := l.launch(t, 2)
	for _, d := range l.cloud.Droplets() {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(d.Address, port).String())
		if err != nil {
			t.Fatal(err)
		}
		id := strconv.Itoa(d.ID)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, id) })}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	p := l.provider(t, addr)
	if err := p.Assign(t.Context(), addr, ids[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var (
		mu      sync.Mutex
		last    = time.Now()
		longest time.Duration
		seen    = map[string]int{}
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	wg.Go(func() {
		for ctx.Err() == nil {
			res, err := client.Get(fmt.Sprintf("http://%s:%d/", addr, port))
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			mu.Lock()
			now := time.Now()
			longest = max(longest, now.Sub(last))
			last = now
			seen[string(body)]++
			mu.Unlock()
		}
	})
	time.Sleep(50 * time.Millisecond)
	for i := range 6 {
		if err := p.Assign(t.Context(), addr, ids[(i+1)%2]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if seen[ids[0]] == 0 || seen[ids[1]] == 0 {
		t.Errorf("answers by droplet %v: both should have answered", seen)
	}
	t.Logf("longest gap in answers across 6 reserved IP moves: %v (answers %v)", longest.Round(time.Millisecond), seen)
	if longest > time.Second {
		t.Errorf("longest gap %v: a move should not leave the address without a holder", longest)
	}
}
