//go:build e2e && lab

package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/rollout"
)

// TestE2EVaultRaftLab runs the example's vault role as it is, 3 nodes with strategy "raft", on real
// lab VMs that reach each other over the lab's segment (the compute block's segment: a second NIC
// per VM on a shared L2 segment): the first deploy boots node 0, which initializes the cluster,
// then nodes 1 and 2 side by side, which join it at node 0's segment address; a secret is written;
// then a new image of the role replaces the whole cluster one node at a time, drover stopped as if
// killed -9 after each of the first five persisted steps (the cutover's start, a join chosen and
// done, a removal chosen and done) and run again, under a loop that reads the secret through the
// role's failover address every 100 ms. Every read after the first succeeds but within the leader
// elections it counts; the cluster ends as the new image's 3 nodes, healthy voters advertising their
// segment addresses; the secret is there.
func TestE2EVaultRaftLab(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done, its lab
	// on addresses of its own (127.0.79.0/24; 127.0.78.2 is plugins/secrets/vault's raft test's).
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("the e2e raft rollout needs root (it builds images)")
	}
	began := time.Now()
	srv, root, controllerToken := startLabVault(t)
	// The operator's one-time transit setup (examples/homelab/vault/README.md).
	if err := root.Sys().Mount("transit", &vaultMountTransit); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "transit/keys/drover-vault-unseal", nil)
	if err := root.Sys().PutPolicy("drover-vault-unseal", vaultUnsealPolicy); err != nil {
		t.Fatal(err)
	}
	tt, err := root.Auth().Token().Create(&vaultUnsealTokenRequest)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "kv/data/vault/transit", map[string]any{"data": map[string]any{"token": tt.Auth.ClientToken}})

	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")
	operator := newOperatorKey(t, filepath.Join(fleetDir, "vault/operator.gpg"))
	editFleet(t, fleetFile, `address = "http://127.0.0.1:8200"`, `address = "`+srv.Addr+`"`)
	editFleet(t, fleetFile, `  accel  = "auto"
}`, `  accel   = "auto"
  network = "127.0.79.0/24"
}`)
	editFleet(t, fleetFile, `address = "127.0.0.100"`, `address = "127.0.79.1"`)
	// nginx makes the vault role's base tree the web tests' (a tree takes minutes cold).
	editFleet(t, fleetFile, `    # A stock Vault server binary`, `    packages = ["nginx"]
    # A stock Vault server binary`)
	editFleet(t, fleetFile, `    strategy = "raft"
    ports    = [8200]`, `    strategy = "raft"
    ports    = [8200]
    watch    = "5s"`)
	// No Knot here: the role's address is the lab's failover IP, which follows the cluster's leader.
	editFleet(t, fleetFile, `cutover "dns" {
      dns  = "home"
      name = "vault"
      ttl  = 60
    }`, `cutover "ip" {
      ip = "front"
    }`)

	cfg := qemu.NewDefaultConfig(os.LookupEnv)
	cfg.Network, cfg.Segment = "127.0.79.0/24", "10.77.0.0/24"
	lab, err := qemu.New(cfg, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })
	env := []string{"VAULT_TOKEN=" + controllerToken, "DROVER_VAR_vault_binary=" + srv.Bin}
	run := func(extra []string, args ...string) result {
		t.Helper()
		return droverExec(t, append(slices.Clone(env), extra...), append([]string{"--fleet", fleetFile}, args...)...)
	}
	must := func(args ...string) result {
		t.Helper()
		r := run(nil, args...)
		if r.code != 0 {
			t.Fatalf("drover %s: exit %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, tail(r.stderr, 40))
		}
		return r
	}

	var table []string
	row := func(check, outcome string) { table = append(table, fmt.Sprintf("%-62s %s", check, outcome)) }
	defer func() { t.Logf("vault raft, 3 lab VMs on the segment:\n%s", strings.Join(table, "\n")) }()

	start := time.Now()
	must("build", "vault")
	row("drover build vault (image 1)", time.Since(start).Round(time.Second).String())

	// The first deploy: node 0 initializes the cluster, nodes 1 and 2 boot side by side and join it.
	start = time.Now()
	must("rollout", "start", "vault")
	must("rollout", "promote", "vault")
	nodes := liveInstances(t, lab, compute.Selector{rollout.LabelRole: "vault"})
	if len(nodes) != 3 {
		t.Fatalf("%d vault VMs after the first deploy, want 3", len(nodes))
	}
	row("first deploy of 3 VMs (node 0 inits, 1 and 2 join side by side)", time.Since(start).Round(time.Second).String())
	var first compute.Instance
	for _, in := range nodes {
		if in.Labels[rollout.LabelSlot] == "0" {
			first = in
		}
	}
	rootToken := decryptPGP(t, operator, initLine(t, first).RootToken)
	nodeRoot := vaultAs(t, "http://"+first.Endpoint(8200).String(), rootToken)
	servers := waitVoters(t, nodeRoot, 3)
	checkMembers(t, "after the first deploy", nodes, servers)
	row("autopilot after the first deploy", "3 healthy voters named after their VMs, cluster addresses on the segment")

	// The operator's setup on the new cluster: a KV secret, and drover's token with RaftPolicy only.
	if err := nodeRoot.Sys().Mount("secret", &vaultMountKV2); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, nodeRoot, "secret/data/hello", map[string]any{"data": map[string]any{"from": "the raft cluster"}})
	if err := nodeRoot.Sys().PutPolicy(vault.RaftPolicyName, vault.RaftPolicy()); err != nil {
		t.Fatal(err)
	}
	dt, err := nodeRoot.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vault.RaftPolicyName}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	env = append(env, raftTokenEnv+"="+dt.Auth.ClientToken)

	// A new image (one file changed), then the replacement under the reader.
	start = time.Now()
	appendTo(t, filepath.Join(fleetDir, "vault/vault.hcl"), "# image 2\n")
	must("build", "vault")
	row("drover build vault (image 2)", time.Since(start).Round(time.Second).String())
	reads := startReader(t, "http://127.0.79.1:8200/v1/secret/data/hello", rootToken)
	leaders := watchLeader(t, lab, rootToken)

	start = time.Now()
	must("rollout", "start", "vault")
	crashed := 0
	for ; crashed < 5; crashed++ {
		if r := run([]string{rollout.CrashEnv + "=" + string(rollout.CuttingOver)}, "rollout", "promote", "vault"); r.code != 137 {
			t.Fatalf("promote killed after step %d of the replacement: exit %d, want 137\n%s", crashed+1, r.code, tail(r.stderr, 20))
		}
	}
	must("rollout", "promote", "vault")
	wall := time.Since(start)
	time.Sleep(time.Second)
	got := reads.stop()
	elections := leaders.stop()
	row("replacement of the 3 VMs, killed after each of its first 5 steps", fmt.Sprintf("%d killed runs + 1, %s wall", crashed, wall.Round(time.Second)))

	live := liveInstances(t, lab, compute.Selector{rollout.LabelRole: "vault"})
	if len(live) != 3 {
		t.Fatalf("%d vault VMs after the replacement, want 3", len(live))
	}
	for _, in := range live {
		if in.Labels[rollout.LabelRollout] == first.Labels[rollout.LabelRollout] || instanceImage(t, in).Identity == instanceImage(t, first).Identity {
			t.Errorf("VM %s (%s) is of the first deploy's rollout or image after the replacement", in.ID, in.Name)
		}
	}
	next := vaultAs(t, "http://"+live[0].Endpoint(8200).String(), rootToken)
	checkMembers(t, "after the replacement", live, waitVoters(t, next, 3))
	s, err := vaultAs(t, "http://127.0.79.1:8200", rootToken).KVv2("secret").Get(t.Context(), "hello")
	if err != nil || s.Data["from"] != "the raft cluster" {
		t.Errorf("the secret after the replacement: %v %v", s, err)
	}
	row("after: autopilot", "3 healthy voters, all of image 2; the secret reads back")

	outages := outagesOf(got)
	var longest time.Duration
	for _, o := range outages {
		longest = max(longest, o.end.Sub(o.start))
	}
	row("reads every 100 ms through the failover address", fmt.Sprintf("%d reads, %d failed, %d outage(s) %v, longest %s", len(got), failedAfterFirst(got), len(outages), outages, longest.Round(time.Millisecond)))
	row("leader changes seen (sys/leader) during the replacement", fmt.Sprintf("%d", elections))
	if len(got) == 0 || !slices.ContainsFunc(got, func(r read) bool { return r.ok }) {
		t.Fatalf("no read succeeded")
	}
	if len(outages) > elections {
		t.Errorf("%d read outages but %d leader change(s): %v", len(outages), elections, outages)
	}
	if longest > 15*time.Second {
		t.Errorf("longest read outage %s", longest)
	}
	row("whole test", time.Since(began).Round(time.Second).String())
}

// waitVoters waits until autopilot reports n healthy voters (joined nodes are non-voters until its
// stabilization time, 10 s, passes) and returns its servers.
func waitVoters(t *testing.T, c *api.Client, n int) map[string]*api.AutopilotServer {
	t.Helper()
	servers := autopilot(t, c)
	for wait := time.Now().Add(2 * time.Minute); time.Now().Before(wait) && !allVoters(servers, n); time.Sleep(time.Second) {
		servers = autopilot(t, c)
	}
	return servers
}

// checkMembers checks that autopilot lists exactly nodes, each a healthy voter named after its VM
// and advertising its cluster address on the segment (its Private address), not the user-mode
// network's 10.0.2.15 every VM has.
func checkMembers(t *testing.T, when string, nodes []compute.Instance, servers map[string]*api.AutopilotServer) {
	t.Helper()
	if len(servers) != len(nodes) {
		t.Errorf("%s: autopilot lists %d servers, want %d: %v", when, len(servers), len(nodes), servers)
	}
	for _, in := range nodes {
		sv, ok := servers[in.Name]
		if !ok || !sv.Healthy || (sv.Status != "voter" && sv.Status != "leader") {
			t.Errorf("%s: node %s (%s): autopilot %+v, want a healthy voter named after the VM", when, in.Name, in.ID, sv)
			continue
		}
		ap, err := netip.ParseAddrPort(sv.Address)
		if !in.Private.IsValid() || err != nil || ap.Addr() != in.Private || !netip.MustParsePrefix("10.77.0.0/24").Contains(ap.Addr()) {
			t.Errorf("%s: node %s: cluster address %q, want its segment address %s:8201", when, in.Name, sv.Address, in.Private)
		}
	}
}
