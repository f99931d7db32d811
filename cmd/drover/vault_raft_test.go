//go:build e2e && lab

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/vaultraft"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	storemem "github.com/drover-dev/drover/plugins/store/memory"
	"github.com/drover-dev/drover/rollout"
)

// TestE2EVaultRaft runs the raft strategy against real Vault servers, processes on this machine
// rather than the lab's VMs (each VM has a user-mode network of its own, so no VM reaches another's
// cluster port): a 3-node cluster deployed from the example's vault role as it boots (raftProcs:
// one Vault process per instance, on a loopback address of its own,
// the transit seal against the lab's Vault, the example's vault-init.sh), a secret written, then
// a replacement by a new image rolled back part way (walked back one node at a time), then the
// whole cluster replaced, one node at a time, all under a loop that reads the secret through the
// role's address every 100 ms, with drover stopped as if killed -9 after every persisted node step
// and run again. Every read after the first succeeds but during the leader
// elections it measures (from the last moment every node named the old leader to the first every
// node names the new one); the controller's token holds only vault.RaftPolicy; the secret is there at
// the end, served by the three new nodes alone.
func TestE2EVaultRaft(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done (two at a
	// time on two cores: takeLane gives GOMAXPROCS lanes), on addresses of its own (127.0.77.0/24).
	t.Parallel()
	takeLane(t)
	began := time.Now()
	lab, root, _ := startLabVault(t)
	transitToken := setupTransitUnseal(t, root)
	dir := t.TempDir()
	operator := newOperatorKey(t, filepath.Join(dir, "operator.gpg"))
	initScript, err := filepath.Abs("../../examples/homelab/vault/vault-init.sh")
	if err != nil {
		t.Fatal(err)
	}
	procs := newRaftProcs(t, lab.Bin, lab.Addr, transitToken, filepath.Join(dir, "operator.gpg"), initScript)
	proxy := newProxyCut(t)

	role := &fleet.Role{Name: "vault", Deploy: &fleet.Deploy{
		Compute: "procs", Count: 3, Strategy: "raft", Ports: []int{8200}, Cutover: fleet.Cutover{Type: "proxy"}, Watch: 2 * time.Second,
		Health: []fleet.HealthCheck{{Type: "vault", Port: 8200, Scheme: "http", Interval: 250 * time.Millisecond, Timeout: 2 * time.Second, Healthy: 2, Deadline: 2 * time.Minute}},
	}}
	fl := &fleet.Fleet{Path: filepath.Join(dir, "drover.hcl"), Dir: dir, Name: "raft", Roles: []*fleet.Role{role}}
	catalog := images.OpenCatalog(dir)
	img1, img2 := stageImage(t, catalog, "vault", 1), stageImage(t, catalog, "vault", 2)
	store := storemem.New()
	var raftToken string // the controller's token on the new cluster, once the operator made it
	controller := func(crash rollout.State) *rollout.Controller {
		opts := rollout.Options{
			Fleet: fl, Store: store, Catalog: catalog,
			Compute:  func(context.Context, string) (compute.Provider, error) { return procs, nil },
			Cutovers: map[string]rollout.CutoverType{"proxy": proxy},
			RaftNode: raftNodeData(fl),
			Raft: func(context.Context, string) (rollout.RaftCluster, error) {
				cl, err := vaultraft.New(raftToken, "http", "")
				return raftCluster{cl}, err
			},
		}
		if crash != "" {
			opts.CrashAfter, opts.Owner = crash, deadOwner(t)
		}
		c, err := rollout.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	var table []string
	row := func(check, outcome string) { table = append(table, fmt.Sprintf("%-62s %s", check, outcome)) }
	defer func() { t.Logf("vault raft, 3 nodes, real Vault:\n%s", strings.Join(table, "\n")) }()

	// The first deploy: node 0 initializes the cluster, nodes 1 and 2 join it.
	start := time.Now()
	c := controller("")
	rec, err := c.Start(t.Context(), "vault", rollout.StartOptions{Image: img1, AutoPromote: new(true)})
	if err != nil || rec == nil || rec.State != rollout.Retired {
		t.Fatalf("first deploy: %v (rollout record %s)", err, recordSummary(rec))
	}
	row("first deploy of 3 nodes (node 0 inits, 1 and 2 join)", fmt.Sprintf("retired in %s", time.Since(start).Round(time.Second)))
	nodes, _ := procs.Instances(t.Context(), compute.Selector{rollout.LabelRollout: rec.ID})
	var first compute.Instance
	for _, in := range nodes {
		if in.Labels[rollout.LabelSlot] == "0" {
			first = in
		}
	}
	rootToken := decryptPGP(t, operator, initLine(t, first).RootToken)
	nodeRoot := vaultAs(t, "http://"+first.Endpoint(8200).String(), rootToken)
	// Joined nodes are non-voters until autopilot's stabilization time (10 s) passes.
	servers := waitVoters(t, nodeRoot, 3)
	if len(servers) != 3 {
		t.Fatalf("autopilot lists %d servers, want 3: %v", len(servers), servers)
	}
	for _, in := range nodes {
		sv, ok := servers[in.Name]
		if !ok || !sv.Healthy || (sv.Status != "voter" && sv.Status != "leader") {
			t.Errorf("node %s (%s): autopilot %+v, want a healthy voter named after the instance", in.Name, in.ID, sv)
		}
	}
	row("autopilot after the first deploy", "3 healthy voters, each named after its instance (VAULT_RAFT_NODE_ID)")

	// The operator's setup on the new cluster: a KV secret, and drover's token with RaftPolicy only.
	if err := nodeRoot.Sys().Mount("secret", &vaultMountKV2); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, nodeRoot, "secret/data/hello", map[string]any{"data": map[string]any{"from": "the raft cluster"}})
	if raftPolicyName != vault.RaftPolicyName {
		t.Errorf("cmd names the policy %q, secrets/vault %q", raftPolicyName, vault.RaftPolicyName)
	}
	if err := nodeRoot.Sys().PutPolicy(vault.RaftPolicyName, vault.RaftPolicy()); err != nil {
		t.Fatal(err)
	}
	dt, err := nodeRoot.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vault.RaftPolicyName}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	raftToken = dt.Auth.ClientToken
	if _, err := vaultAs(t, "http://"+first.Endpoint(8200).String(), raftToken).Logical().Read("secret/data/hello"); err == nil {
		t.Errorf("the controller's raft token reads a secret")
	}

	// The reader: the secret through the role's address every 100 ms.
	reads := startReader(t, "http://127.0.77.1:8200/v1/secret/data/hello", rootToken)
	leaders := watchLeader(t, procs, rootToken)

	// Part way, a rollback: one node of image 2 joined and one of image 1 left; walking back, a node
	// of image 1 joins and the one of image 2 leaves.
	start = time.Now()
	rec, err = controller("").Start(t.Context(), "vault", rollout.StartOptions{Image: img2})
	if err != nil || rec.State != rollout.Ready {
		t.Fatalf("rollout start of image 2: %v (%v)", err, rec)
	}
	for i := range 5 { // cutting-over; join chosen, done; remove chosen, done
		if _, err := controller(rollout.CuttingOver).Promote(t.Context(), "vault"); !errors.Is(err, rollout.ErrCrashed) {
			t.Fatalf("promote run %d: %v, want the crash", i, err)
		}
	}
	rec, err = controller("").Rollback(t.Context(), "vault")
	if err != nil || rec.State != rollout.RolledBack {
		t.Fatalf("rollback part way: %v (%v)", err, rec)
	}
	back, _ := procs.Instances(t.Context(), compute.Selector{rollout.LabelRole: "vault"})
	var backNodes int
	for _, in := range back {
		if in.State == compute.Running {
			backNodes++
			if in.Labels[rollout.LabelRollout] != rec.Previous {
				t.Errorf("after the rollback node %s belongs to rollout %s, want %s", in.Name, in.Labels[rollout.LabelRollout], rec.Previous)
			}
		}
	}
	if backNodes != 3 {
		t.Errorf("%d nodes after the rollback, want 3 of image 1", backNodes)
	}
	row("rollback part way (1 node of image 2 in, 1 of image 1 out)", fmt.Sprintf("walked back in %s: 3 nodes of image 1", time.Since(start).Round(time.Second)))

	start = time.Now()
	rec, err = controller("").Start(t.Context(), "vault", rollout.StartOptions{Image: img2})
	if err != nil || rec.State != rollout.Ready {
		t.Fatalf("rollout start of image 2 again: %v (%v)", err, rec)
	}
	runs := 0
	for ; runs < 30; runs++ {
		_, err = controller(rollout.CuttingOver).Promote(t.Context(), "vault")
		if !errors.Is(err, rollout.ErrCrashed) {
			break
		}
	}
	rec, err = controller("").Promote(t.Context(), "vault")
	if err != nil || rec.State != rollout.Retired {
		t.Fatalf("promote after %d crashed runs: %v (%v)", runs, err, rec)
	}
	wall := time.Since(start)
	time.Sleep(time.Second)
	got := reads.stop()
	elections := leaders.stop()
	row("replacement of the 3 nodes, killed after every node step", fmt.Sprintf("%d crashed runs + 1, %s wall", runs, wall.Round(time.Second)))
	if runs != 13 {
		t.Errorf("%d crashed runs, want 13 (cutting-over, then each of 6 node steps chosen and done)", runs)
	}

	// The cluster is the new image's 3 nodes, every one a healthy voter; nothing of image 1 runs.
	live, _ := procs.Instances(t.Context(), compute.Selector{rollout.LabelRole: "vault"})
	var running []compute.Instance
	for _, in := range live {
		if in.State == compute.Running {
			running = append(running, in)
			if in.Labels[rollout.LabelRollout] != rec.ID {
				t.Errorf("node %s of rollout %s still runs", in.Name, in.Labels[rollout.LabelRollout])
			}
		}
	}
	if len(running) != 3 {
		t.Fatalf("%d nodes run, want 3", len(running))
	}
	// The last node step removed the old leader: the new one's autopilot reports a node healthy
	// only once it has heard from it, a few seconds after its election (longer on a loaded host).
	servers = waitVoters(t, vaultAs(t, "http://"+running[0].Endpoint(8200).String(), rootToken), 3)
	for _, in := range running {
		if sv, ok := servers[in.Name]; !ok || !sv.Healthy || sv.Status == "non-voter" {
			t.Errorf("new node %s: %+v", in.Name, sv)
		}
	}
	if len(servers) != 3 {
		t.Errorf("autopilot lists %d servers after the replacement: %v", len(servers), servers)
	}
	s, err := vaultAs(t, "http://127.0.77.1:8200", rootToken).KVv2("secret").Get(t.Context(), "hello")
	if err != nil || s.Data["from"] != "the raft cluster" {
		t.Errorf("the secret after the replacement: %v %v", s, err)
	}
	row("after: autopilot", "3 healthy voters, all of image 2; the secret reads back")

	// Reads: after the first success, failures only inside leader elections.
	outages := outagesOf(got)
	var longest, longestElection time.Duration
	for _, o := range outages {
		longest = max(longest, o.end.Sub(o.start))
		if !slices.ContainsFunc(elections, func(e election) bool { return e.overlaps(o) }) {
			t.Errorf("a read outage outside every leader election: %v (elections %v)", o, elections)
		}
	}
	for _, e := range elections {
		longestElection = max(longestElection, e.end.Sub(e.start))
	}
	row("reads every 100 ms through the role's address", fmt.Sprintf("%d reads, %d failed, %d outage(s), longest %s", len(got), failedAfterFirst(got), len(outages), longest.Round(time.Millisecond)))
	row("leader elections (every node names the new leader) in the rollback and the replacement", fmt.Sprintf("%d, longest %s", len(elections), longestElection.Round(time.Millisecond)))
	if longest > 15*time.Second {
		t.Errorf("longest read outage %s", longest)
	}
	row("whole test", time.Since(began).Round(time.Second).String())
}

func allVoters(servers map[string]*api.AutopilotServer, n int) bool {
	healthy := 0
	for _, sv := range servers {
		if sv.Healthy && (sv.Status == "voter" || sv.Status == "leader") {
			healthy++
		}
	}
	return healthy == n && len(servers) == n
}

// initLine reads the init line vault-init.sh printed on node's console.
func initLine(t *testing.T, node compute.Instance) (v struct {
	RootToken string `json:"root_token"`
}) {
	t.Helper()
	line := consoleLine(waitConsole(t, node, "drover-vault-init: {", time.Minute), "drover-vault-init: {")
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "drover-vault-init: ")), &v); err != nil {
		t.Fatalf("init line %q: %v", line, err)
	}
	return v
}

func autopilot(t *testing.T, c *api.Client) map[string]*api.AutopilotServer {
	t.Helper()
	st, err := c.Sys().RaftAutopilotState()
	if err != nil || st == nil {
		t.Fatalf("autopilot state: %v", err)
	}
	return st.Servers
}

// stageImage puts an image of role into the catalog (the raftProcs provider boots no disk) and
// returns its identity.
func stageImage(t *testing.T, cat *images.Catalog, role string, n int) string {
	t.Helper()
	sum := sha256.Sum256(fmt.Appendf(nil, "%s image %d", role, n))
	id := "sha256:" + hex.EncodeToString(sum[:])
	st, err := cat.Stage(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "disk.qcow2"), []byte("disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &images.Manifest{Identity: id, Role: role, Arch: "amd64", Created: time.Date(2026, 12, 1, 0, n, 0, 0, time.UTC),
		Artifacts: []images.Artifact{{Format: "qcow2", File: "disk.qcow2"}}}
	if err := st.Commit(m); err != nil {
		t.Fatal(err)
	}
	return id
}

// recordSummary is a rollout record in a line: its ID and state, or "none".
func recordSummary(rec *rollout.Record) string {
	if rec == nil {
		return "none"
	}
	return rec.ID + ", " + string(rec.State)
}
