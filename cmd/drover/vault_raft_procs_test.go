//go:build e2e && lab

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/rollout"
	"github.com/drover-dev/drover/rollout/health"
)

// raftProcs is a compute provider whose instances are Vault servers booted as the example's vault
// role boots on a machine: a process per instance on a loopback address of its own (127.0.77.N,
// API on 8200, cluster on 8201, so nodes reach each other as on a private network, which the lab's
// VMs cannot), integrated storage in the instance's directory, the transit seal against the lab's
// Vault (VAULT_ADDR and VAULT_TOKEN, as vault.env and transit.env give them), VAULT_RAFT_NODE_ID
// and DROVER_RAFT_JOIN from the user-data's raft section (as drover-boot's raft.env gives them),
// and the example's own vault-init.sh run beside it as vault-init.service runs it. Terminate kills
// the process (-9), as a destroyed machine stops.
type raftProcs struct {
	t                              *testing.T
	bin, seal, transit, key, init_ string
	dir                            string

	mu      sync.Mutex
	next    int
	byToken map[string]*procNode
}

type procNode struct {
	in      compute.Instance
	server  *exec.Cmd
	cancel  context.CancelFunc // stops vault-init.sh
	exited  chan struct{}
	dead    bool
	console string
}

func newRaftProcs(t *testing.T, bin, seal, transit, key, initScript string) *raftProcs {
	p := &raftProcs{t: t, bin: bin, seal: seal, transit: transit, key: key, init_: initScript, dir: t.TempDir(), byToken: map[string]*procNode{}}
	t.Cleanup(func() {
		if t.Failed() {
			p.logNodes()
		}
		p.mu.Lock()
		nodes := make([]*procNode, 0, len(p.byToken))
		for _, n := range p.byToken {
			nodes = append(nodes, n)
		}
		p.mu.Unlock()
		for _, n := range nodes {
			n.kill()
		}
	})
	return p
}

// logNodes logs, for a failed test, what each node's vault-init.sh said and the end of its
// server's log, in the order the nodes were launched.
func (p *raftProcs) logNodes() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, n := range p.byToken {
		ids = append(ids, n.in.ID)
	}
	slices.Sort(ids)
	for _, id := range ids {
		init_, _ := os.ReadFile(filepath.Join(p.dir, id, "console.log"))
		server, _ := os.ReadFile(filepath.Join(p.dir, id, "vault.log"))
		p.t.Logf("%s: vault-init.sh said:\n%s\n%s: the end of its server's log:\n%s", id, init_, id, tail(string(server), 15))
	}
}

func (n *procNode) kill() {
	n.cancel()
	_ = n.server.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

func (p *raftProcs) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.byToken[spec.Token]; ok {
		return p.state(n), nil
	}
	ud, err := bootdata.Parse(spec.UserData)
	if err != nil || ud.Raft == nil {
		return compute.Instance{}, fmt.Errorf("procs: user-data of %s without a raft section: %v", spec.Name, err)
	}
	p.next++
	addr := netip.AddrFrom4([4]byte{127, 0, 77, byte(p.next + 1)})
	id := fmt.Sprintf("proc-%d", p.next)
	dir := filepath.Join(p.dir, id)
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		return compute.Instance{}, err
	}
	// The example's vault.hcl with this node's address for GetPrivateIP and 0.0.0.0.
	conf := fmt.Sprintf(`disable_mlock = true
api_addr      = "http://%[1]s:8200"
cluster_addr  = "http://%[1]s:8201"
storage "raft" {
  path                   = %[2]q
  performance_multiplier = 1
}
listener "tcp" {
  address         = "%[1]s:8200"
  cluster_address = "%[1]s:8201"
  tls_disable     = true
}
seal "transit" {
  key_name   = "drover-vault-unseal"
  mount_path = "transit/"
}
`, addr, filepath.Join(dir, "raft"))
	if err := os.WriteFile(filepath.Join(dir, "vault.hcl"), []byte(conf), 0o600); err != nil {
		return compute.Instance{}, err
	}
	// The server logs to vault.log; the console is vault-init.sh's, as its unit sends it there.
	console := filepath.Join(dir, "console.log")
	logf, err := os.Create(filepath.Join(dir, "vault.log"))
	if err != nil {
		return compute.Instance{}, err
	}
	defer logf.Close()
	srv := exec.Command(p.bin, "server", "-config="+filepath.Join(dir, "vault.hcl"), "-log-level=warn")
	srv.Env = []string{"HOME=" + dir, "VAULT_ADDR=" + p.seal, "VAULT_TOKEN=" + p.transit, "VAULT_RAFT_NODE_ID=" + ud.Raft.NodeID}
	srv.Stdout, srv.Stderr = logf, logf
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		return compute.Instance{}, err
	}
	ictx, cancel := context.WithCancel(context.Background())
	n := &procNode{server: srv, cancel: cancel, exited: make(chan struct{}), console: console}
	go func() { _ = srv.Wait(); close(n.exited) }()
	sh := exec.CommandContext(ictx, "sh", p.init_)
	sh.Env = []string{"PATH=" + filepath.Dir(p.bin) + ":/usr/bin:/bin", "VAULT_ADDR=http://" + addr.String() + ":8200", "VAULT_OPERATOR_KEY=" + p.key}
	if ud.Raft.Join != "" {
		sh.Env = append(sh.Env, "DROVER_RAFT_JOIN="+ud.Raft.Join)
	}
	shLog, err := os.Create(console)
	if err != nil {
		cancel()
		return compute.Instance{}, err
	}
	sh.Stdout, sh.Stderr = shLog, shLog
	if err := sh.Start(); err != nil {
		cancel()
		shLog.Close()
		return compute.Instance{}, err
	}
	go func() { _ = sh.Wait(); shLog.Close() }()
	n.in = compute.Instance{ID: id, Name: spec.Name, Labels: spec.Labels, Address: addr, Ports: spec.Ports, Created: time.Now(), Console: console, State: compute.Running}
	p.byToken[spec.Token] = n
	return p.state(n), nil
}

// state is n as the platform reports it now: terminated once killed or exited.
func (p *raftProcs) state(n *procNode) compute.Instance {
	in := n.in.Clone()
	select {
	case <-n.exited:
		in.State = compute.Terminated
	default:
	}
	if n.dead {
		in.State = compute.Terminated
	}
	return in
}

func (p *raftProcs) Instances(_ context.Context, sel compute.Selector) ([]compute.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []compute.Instance
	for _, n := range p.byToken {
		if sel.Matches(n.in.Labels) {
			out = append(out, p.state(n))
		}
	}
	return out, nil
}

func (p *raftProcs) Terminate(_ context.Context, id string) error {
	p.mu.Lock()
	var node *procNode
	for _, n := range p.byToken {
		if n.in.ID == id && !n.dead {
			node, n.dead = n, true
		}
	}
	p.mu.Unlock()
	if node != nil {
		node.kill()
	}
	return nil
}

// proxyCut is the role's address: a TCP proxy on 127.0.77.1:8200 that sends each connection to the
// next of the instances the cutover points at, as a DNS name with several addresses or a load
// balancer spreads clients.
type proxyCut struct {
	ln net.Listener
	mu sync.Mutex
	to []compute.Instance
	rr int
}

func newProxyCut(t *testing.T) *proxyCut {
	ln, err := net.Listen("tcp", "127.0.77.1:8200")
	if err != nil {
		t.Fatal(err)
	}
	x := &proxyCut{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go x.serve(c)
		}
	}()
	return x
}

func (x *proxyCut) serve(c net.Conn) {
	defer c.Close()
	x.mu.Lock()
	if len(x.to) == 0 {
		x.mu.Unlock()
		return
	}
	in := x.to[x.rr%len(x.to)]
	x.rr++
	x.mu.Unlock()
	up, err := net.DialTimeout("tcp", in.Endpoint(8200).String(), 2*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
	_, _ = io.Copy(c, up)
}

func (x *proxyCut) Open(context.Context, string, fleet.Cutover) (rollout.Cutover, error) {
	return x, nil
}
func (x *proxyCut) Describe(fleet.Cutover, int) rollout.CutoverPlan {
	return rollout.CutoverPlan{Target: "proxy", Step: "point the proxy at the nodes", Watch: "through the proxy"}
}
func (x *proxyCut) Type() string   { return "proxy" }
func (x *proxyCut) Target() string { return "proxy " + x.ln.Addr().String() }
func (x *proxyCut) Current(context.Context) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var ids []string
	for _, in := range x.to {
		ids = append(ids, in.ID)
	}
	return ids, nil
}
func (x *proxyCut) Point(_ context.Context, to []compute.Instance) (string, error) {
	x.mu.Lock()
	x.to = slices.Clone(to)
	x.mu.Unlock()
	return "", nil
}
func (x *proxyCut) WatchTargets() []health.Target {
	return []health.Target{{Name: "proxy", Addr: netip.MustParseAddr("127.0.77.1")}}
}

// deadOwner is a lock owner naming a process of this host that no longer runs: a drover killed -9,
// whose lock the next run takes over at once.
func deadOwner(t *testing.T) string {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for pid := 4194000; pid > 4000000; pid-- {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return "crashed@" + host + " pid " + strconv.Itoa(pid)
		}
	}
	t.Fatal("no free pid")
	return ""
}
