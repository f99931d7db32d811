//go:build e2e

package qemu_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dev/drover/images/disk/disktest"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/config"
)

// httpDeadline is how long a guest may take from Launch to answering HTTP
// under TCG on a busy machine.
const httpDeadline = 5 * time.Minute

// TestE2EBootNginx boots two instances of a real image, one of them isolated
// (restrict=on), sees nginx answer on each instance's own loopback address
// with the user-data it got through fw_cfg, finds them again from a new
// Provider value and terminates them.
func TestE2EBootNginx(t *testing.T) {
	img := disktest.LabImage(t)
	state := t.TempDir()
	killAll(t, state)
	cfg := qemu.NewDefaultConfig(config.OS())
	cfg.Network = "127.0.12.0/24"
	open := func(isolate bool) *qemu.Provider {
		c := *cfg
		c.Isolate = isolate
		p, err := qemu.New(&c, state)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx, cancel := context.WithTimeout(t.Context(), httpDeadline+2*time.Minute)
	defer cancel()

	var ins []compute.Instance
	start := time.Now()
	for i, isolate := range []bool{false, true} {
		in, err := open(isolate).Launch(ctx, compute.Spec{
			Token:    fmt.Sprintf("boot-e2e-%d", i),
			Name:     fmt.Sprintf("web-%d", i),
			Image:    compute.Image{Identity: "lab-nginx", Path: img},
			Labels:   map[string]string{"role": "web", "color": "blue"},
			Ports:    []int{80},
			UserData: []byte(fmt.Sprintf("instance %d\n", i)),
		})
		if err != nil {
			t.Fatalf("Launch %d: %v", i, err)
		}
		t.Logf("launched %s (%s) at %v in %s", in.ID, in.Name, in.Address, time.Since(start).Round(time.Millisecond))
		ins = append(ins, in)
	}
	if ins[0].Address == ins[1].Address {
		t.Fatalf("both instances got %v", ins[0].Address)
	}

	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() {
			url := fmt.Sprintf("http://%s/userdata.txt", in.Endpoint(80))
			body, err := waitHTTP(ctx, url, start.Add(httpDeadline))
			if err != nil {
				t.Errorf("%s: %v\nconsole:\n%s", in.ID, err, tail(in.Console, 40))
				return
			}
			if want := fmt.Sprintf("instance %d\n", i); body != want {
				t.Errorf("%s: %s = %q, want %q (user-data through fw_cfg)", in.ID, url, body, want)
			}
			t.Logf("%s answered HTTP 200 on %s %s after launch", in.ID, in.Endpoint(80), time.Since(start).Round(time.Second))
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// A new Provider value, as a new drover process would make.
	again := open(false)
	found, err := again.Instances(ctx, compute.Selector{"role": "web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 {
		t.Fatalf("a new provider finds %d instances, want 2: %+v", len(found), found)
	}
	for _, f := range found {
		if f.State != compute.Running {
			t.Errorf("%s: state %q, want running", f.ID, f.State)
		}
	}
	for _, in := range ins {
		if err := again.Terminate(ctx, in.ID); err != nil {
			t.Fatalf("Terminate(%s): %v", in.ID, err)
		}
	}
	if left, err := again.Instances(ctx, nil); err != nil || len(left) != 0 {
		t.Fatalf("after Terminate: %+v, %v", left, err)
	}
	if out, err := exec.Command("pgrep", "-f", state).Output(); err == nil {
		t.Fatalf("qemu processes of %s remain:\n%s", state, out)
	}
}

// waitHTTP GETs url until it answers 200 and returns the body.
func waitHTTP(ctx context.Context, url string, deadline time.Time) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return "", fmt.Errorf("no HTTP 200 from %s by the deadline: %v", url, last)
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
