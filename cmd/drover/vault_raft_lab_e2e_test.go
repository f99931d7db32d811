//go:build e2e && lab

package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/internal/vaultraft"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/rollout"
)

// endpoints are the nodes' API addresses on the host.
func endpoints(nodes []compute.Instance) []string {
	var out []string
	for _, in := range nodes {
		out = append(out, in.Endpoint(8200).String())
	}
	return out
}

// TestE2EVaultRaftLab deploys the example's vault role as it is, 3 nodes with strategy "raft", on
// real lab VMs that reach each other over the lab's segment (the compute block's segment: a second
// NIC per VM on a shared L2 segment): node 0 initializes the cluster, nodes 1 and 2 boot side by
// side and join it at node 0's segment address. Autopilot then reports 3 healthy voters named after
// their VMs, each advertising its segment address (not the user-mode network's 10.0.2.15 every VM
// has); a secret written on the cluster reads back through the failover address and through each
// standby, which forwards to the active node over the segment; a token of RaftPolicy alone sees
// the same through vaultraft, as the check before a replacement does. Then a new image replaces
// the cluster one VM at a time under a reader of the secret every 100 ms, drover killed with
// SIGKILL after every node step and run again (replaceLabCluster); a node that removes itself
// while joining (Vault's hashicorp/vault#32099, frequent under TCG) is undone and replaced by drover.
func TestE2EVaultRaftLab(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done, its lab
	// on addresses of its own (127.0.79.0/24; 127.0.78.2 is plugins/secrets/vault's raft test's).
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e raft rollout needs root (it builds images)")
	}
	began := time.Now()
	srv, root, controllerToken := startLabVault(t)
	transitToken := setupTransitUnseal(t, root)
	mustWrite(t, root, "kv/data/vault/transit", map[string]any{"data": map[string]any{"token": transitToken}})

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

	// Vault's log on the console too, where drover's report of a failed check shows its last lines.
	editFleet(t, filepath.Join(fleetDir, "vault/vault.service"), "LimitNOFILE=65536\n", "LimitNOFILE=65536\nStandardOutput=journal+console\nStandardError=journal+console\n")

	cfg := qemu.NewDefaultConfig(os.LookupEnv)
	cfg.Network, cfg.Segment = "127.0.79.0/24", "10.77.0.0/24"
	lab, err := qemu.New(cfg, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })
	env := []string{"VAULT_TOKEN=" + controllerToken, "DROVER_VAR_vault_binary=" + srv.Bin}
	must := func(args ...string) result {
		t.Helper()
		r := droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
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

	// The operator's setup on the new cluster: a KV secret, read back through the failover address
	// (the active node) and through each standby, which forwards the request to the active node
	// over the segment (its cluster port).
	if err := nodeRoot.Sys().Mount("secret", &vaultMountKV2); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, nodeRoot, "secret/data/hello", map[string]any{"data": map[string]any{"from": "the raft cluster"}})
	for _, addr := range append([]string{"127.0.79.1:8200"}, endpoints(nodes)...) {
		s, err := vaultAs(t, "http://"+addr, rootToken).KVv2("secret").Get(t.Context(), "hello")
		if err != nil || s.Data["from"] != "the raft cluster" {
			t.Errorf("the secret through %s: %v %v", addr, s, err)
		}
	}
	row("the secret through the failover address and each node", "read back (standbys forward over the segment)")

	// drover's view of the cluster, through a token of RaftPolicy only (the README's least-privilege
	// policy): what the check before a replacement asks.
	if err := nodeRoot.Sys().PutPolicy(vault.RaftPolicyName, vault.RaftPolicy()); err != nil {
		t.Fatal(err)
	}
	dt, err := nodeRoot.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vault.RaftPolicyName}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := vaultraft.New(dt.Auth.ClientToken, "http", "")
	if err != nil {
		t.Fatal(err)
	}
	seen, err := cl.Servers(t.Context(), nodes[0].Endpoint(8200))
	if err != nil || len(seen) != 3 {
		t.Errorf("autopilot through the RaftPolicy token: %v, %v", seen, err)
	}
	for _, sv := range seen {
		if !sv.Healthy || !sv.Voter || !netip.MustParsePrefix("10.77.0.0/24").Contains(netip.MustParseAddrPort(sv.Address).Addr()) {
			t.Errorf("autopilot through the RaftPolicy token: %+v", sv)
		}
	}
	row("autopilot through a token of RaftPolicy only", fmt.Sprintf("%d healthy voters", len(seen)))

	replaceLabCluster(t, labReplacement{lab: lab, state: state, fleetDir: fleetDir, env: env, raftToken: dt.Auth.ClientToken,
		rootToken: rootToken, address: "127.0.79.1:8200", must: must, row: row, firstNodes: nodes})

	// Every VM stopped by its PID (SIGTERM, then SIGKILL), and no qemu of this lab left.
	terminateAll(t, lab)
	if vms := labVMs(t, state); len(vms) != 0 {
		t.Errorf("qemu processes of the lab left after terminating every VM: %v", vms)
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
