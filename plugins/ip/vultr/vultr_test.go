package vultr_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
	"github.com/drover-dev/drover/plugins/compute"
	computevultr "github.com/drover-dev/drover/plugins/compute/vultr"
	"github.com/drover-dev/drover/plugins/ip"
	"github.com/drover-dev/drover/plugins/ip/iptest"
	"github.com/drover-dev/drover/plugins/ip/vultr"
)

// lab is the fake cloud with a vultr compute provider and a snapshot to launch.
type lab struct {
	cloud   *vultrlab.Cloud
	compute *computevultr.Provider
	image   compute.Image
	n       int
}

func newLab(t *testing.T, opts vultrlab.Options) *lab {
	t.Helper()
	c := vultrlab.New(t, opts)
	p, err := computevultr.New(&computevultr.Config{Region: c.Region(), Plan: "vc2-1c-1gb", APIKey: c.APIKey(), APIURL: c.URL()},
		computevultr.WithPollInterval(10*time.Millisecond), computevultr.WithRetry(3, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	id := c.AddSnapshot(t, "drover-test", []byte("disk"))
	return &lab{cloud: c, compute: p, image: compute.Image{Published: compute.PublishedImage{ID: id, Region: c.Region()}}}
}

func (l *lab) launch(t *testing.T, n int) []compute.Instance {
	t.Helper()
	var out []compute.Instance
	for range n {
		l.n++
		in, err := l.compute.Launch(t.Context(), compute.Spec{Token: fmt.Sprintf("rip-%d", l.n), Name: "web", Image: l.image, Labels: map[string]string{"role": "web"}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, in)
	}
	return out
}

// reserve makes a reserved IP and returns its address.
func (l *lab) reserve(t *testing.T) netip.Addr {
	t.Helper()
	rip, _, err := l.compute.Client().ReservedIP.Create(t.Context(), &govultr.ReservedIPReq{Region: l.cloud.Region(), IPType: "v4", Label: "web"})
	if err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddr(rip.Subnet)
}

func (l *lab) provider(t *testing.T, addr netip.Addr) *vultr.Provider {
	t.Helper()
	p, err := vultr.New(t.Context(), &vultr.Config{Address: addr.String(), APIKey: l.cloud.APIKey(), APIURL: l.cloud.URL()}, l.compute,
		vultr.WithPollInterval(10*time.Millisecond), vultr.WithRetry(3, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContract(t *testing.T) {
	iptest.Run(t, func(t *testing.T) iptest.Fixture {
		l := newLab(t, vultrlab.Options{})
		ins := l.launch(t, 2)
		addrs := []netip.Addr{l.reserve(t), l.reserve(t)}
		return iptest.Fixture{
			Provider:  l.provider(t, addrs[0]),
			Addrs:     addrs,
			Instances: []string{ins[0].ID, ins[1].ID},
			Unknown:   "5e6f7a8b-0000-4000-8000-000000000000",
			Reopen:    func(t *testing.T) ip.Provider { return l.provider(t, addrs[0]) },
			Kill: func(t *testing.T, id string) {
				if err := l.compute.Terminate(t.Context(), id); err != nil {
					t.Fatal(err)
				}
			},
		}
	}, iptest.Options{})
}

func TestNewRefusesAnAddressNotReserved(t *testing.T) {
	l := newLab(t, vultrlab.Options{})
	_, err := vultr.New(t.Context(), &vultr.Config{Address: "127.9.9.9", APIKey: l.cloud.APIKey(), APIURL: l.cloud.URL()}, l.compute)
	if err == nil {
		t.Fatal("New with an address that is no reserved IP: no error")
	}
}

// TestMoveGap moves the reserved IP from blue to green under a request loop through the fake's
// proxy and measures the longest time without an answer: the detach-then-attach gap.
func TestMoveGap(t *testing.T) {
	port := freePort(t)
	l := newLab(t, vultrlab.Options{Ports: []int{port}})
	ins := l.launch(t, 2)
	for _, in := range ins {
		serve(t, in.Endpoint(port), in.ID)
	}
	addr := l.reserve(t)
	p := l.provider(t, addr)
	blue, green := ins[0].ID, ins[1].ID
	if err := p.Assign(t.Context(), addr, blue); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	wg.Go(func() {
		for ctx.Err() == nil {
			sent := time.Now()
			resp, err := client.Get("http://" + netip.AddrPortFrom(addr, uint16(port)).String() + "/")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				answers = append(answers, answer{sent, time.Now(), string(b)})
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	})
	time.Sleep(100 * time.Millisecond)
	if err := p.Assign(t.Context(), addr, green); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	if h, err := p.Holder(t.Context(), addr); err != nil || h != green {
		t.Fatalf("Holder after the move = %q, %v; want %s", h, err, green)
	}
	var longest time.Duration
	seenGreen := false
	for i, a := range answers {
		if a.from == green {
			seenGreen = true
		} else if a.from != blue || seenGreen {
			t.Fatalf("answer %d from %q after green answered (or from neither)", i, a.from)
		}
		if a.from == blue && a.sent.After(moved) {
			t.Errorf("blue answered a request sent after the move had returned")
		}
		if i > 0 {
			longest = max(longest, a.at.Sub(answers[i-1].at))
		}
	}
	if !seenGreen || len(answers) < 10 {
		t.Fatalf("%d answers, green among them: %v", len(answers), seenGreen)
	}
	t.Logf("reserved IP move on the fake: longest gap in answers %v (detach to attach %v), %d answers", longest, p.LastGap(), len(answers))
}

type answer struct {
	sent time.Time
	at   time.Time
	from string
}

// serve answers id at ep until the test ends.
func serve(t *testing.T, ep netip.AddrPort, id string) {
	t.Helper()
	ln, err := net.Listen("tcp", ep.String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, id) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
