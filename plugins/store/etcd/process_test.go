package etcd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/store"
	"github.com/drover-dev/drover/plugins/store/etcd"
)

// helperEnv makes this test binary, run again, a lock holder: it acquires role/web on the etcd
// store at HELPER_ENDPOINT under HELPER_PREFIX for HELPER_TTL, prints "held <token>", and renews
// every ttl/3, as a rollout does, until it is killed.
const helperEnv = "DROVER_ETCD_STORE_HELPER"

func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestKilledHolderExpires")
	}
	ttl, err := time.ParseDuration(os.Getenv("HELPER_TTL"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	s, err := etcd.New(etcd.Config{Endpoints: []string{os.Getenv("HELPER_ENDPOINT")}, Prefix: os.Getenv("HELPER_PREFIX")})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	ctx := context.Background()
	l, err := s.Acquire(ctx, "role/web", fmt.Sprintf("runner pid %d", os.Getpid()), ttl)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("held", l.Token)
	for {
		time.Sleep(ttl / 3)
		if l, err = s.Renew(ctx, l, ttl); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
	}
}

// TestKilledHolderExpires: a runner that holds a role's lease and renews it is killed (SIGKILL, so
// nothing is released). While it lived, nobody could take the lease, for several TTLs; once it is
// dead its etcd lease runs out and another runner's Acquire succeeds within about the TTL.
func TestKilledHolderExpires(t *testing.T) {
	url := startEtcd(t)
	prefix := uniquePrefix()
	const ttl = 2 * time.Second
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_ENDPOINT="+url, "HELPER_PREFIX="+prefix, "HELPER_TTL="+ttl.String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	token, perr := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "held ")), 10, 64)
	if err != nil || !strings.HasPrefix(line, "held ") || perr != nil {
		t.Fatalf("helper said %q, %v", line, err)
	}

	s := open(t, url, prefix)
	ctx := t.Context()
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(ttl / 4) {
		_, err := s.Acquire(ctx, "role/web", "runner-b", time.Minute)
		var held *store.HeldError
		if !errors.As(err, &held) || held.Lease.Token != token {
			t.Fatalf("Acquire while the runner lives and renews = %v, want held with token %d", err, token)
		}
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for {
		l, err := s.Acquire(ctx, "role/web", "runner-b", time.Minute)
		if err == nil {
			after := time.Since(killed)
			t.Logf("taken over %s after the holder was killed (ttl %s), token %d -> %d", after.Round(time.Millisecond), ttl, token, l.Token)
			if l.Token <= token {
				t.Errorf("takeover token %d, want greater than %d", l.Token, token)
			}
			return
		}
		if !errors.Is(err, store.ErrHeld) {
			t.Fatal(err)
		}
		if time.Since(killed) > ttl+5*time.Second {
			t.Fatalf("still held %s after the holder was killed: %v", time.Since(killed), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
