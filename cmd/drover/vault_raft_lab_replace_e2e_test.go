//go:build e2e && lab

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/rollout"
)

// labReplacement is what TestE2EVaultRaftLab's replacement needs of the first half of the test.
type labReplacement struct {
	lab        *qemu.Provider
	state      string   // the lab's state directory
	fleetDir   string   // the copy of examples/homelab
	env        []string // drover's environment (VAULT_TOKEN, the vault binary)
	raftToken  string   // the controller's token of RaftPolicy on the cluster
	rootToken  string   // the cluster's root token, for the reader
	address    string   // the role's address (the failover IP), host:port
	must       func(args ...string) result
	row        func(check, outcome string)
	firstNodes []compute.Instance
}

// isNodeStep is the event of a raft node step done (persisted): "node X joined ... in D" or "node
// X left ... in D"; the step chosen reads "join node X (...)".
func isNodeStep(e rollout.Event) bool {
	return e.Kind == "step" && (e.Step == "join" || e.Step == "remove") && strings.HasPrefix(e.Message, "node ")
}

// replaceLabCluster builds a new image of the vault role and replaces the 3-node cluster with it,
// one node at a time, under a reader of the secret through the role's address every 100 ms:
// drover is killed with SIGKILL right after every node step it persisted and run again, until a
// run ends; then the cluster is the 3 new nodes only (no old VM runs: the lab's qemu processes are
// the ground truth), autopilot reports them healthy voters, the secret reads back, and every read
// after the first succeeded but within the leader elections seen.
func replaceLabCluster(t *testing.T, x labReplacement) {
	// A new image: the same role with one more line in its Vault configuration.
	hcl := filepath.Join(x.fleetDir, "vault/vault.hcl")
	b, err := os.ReadFile(hcl)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hcl, append(b, "\n# image 2 of TestE2EVaultRaftLab\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	x.must("build", "vault")
	x.row("drover build vault (image 2, the base tree reused)", time.Since(start).Round(time.Second).String())

	env := append(slices.Clone(x.env), "DROVER_RAFT_TOKEN="+x.raftToken)
	reads := startReader(t, "http://"+x.address+"/v1/secret/data/hello", x.rootToken)
	leaders := watchLeader(t, x.lab, x.rootToken)
	removals := watchRemovals(t, x.lab)
	defer func() {
		for _, l := range removals() {
			t.Logf("Vault's removed-node check, on the console of %s", l)
		}
	}()

	start = time.Now()
	r := droverExec(t, env, "--fleet", filepath.Join(x.fleetDir, "drover.hcl"), "rollout", "start", "vault")
	if r.code != 0 {
		t.Fatalf("rollout start vault (image 2): exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 40))
	}
	x.row("rollout start (autopilot: every member a healthy voter)", time.Since(start).Round(time.Second).String())

	// promote, SIGKILLed right after each node step, until a run ends by itself.
	start = time.Now()
	var kills, rejoins int
	var steps []string
	for run := 0; ; run++ {
		if run > 20 {
			t.Fatalf("the replacement has not ended after %d runs (%d killed)", run, kills)
		}
		s := droverStream(t, env, "--fleet", filepath.Join(x.fleetDir, "drover.hcl"), "rollout", "promote", "vault")
		e, ok := s.until(func(e rollout.Event) bool {
			if e.Kind == "step" && e.Step == "rejoin" && strings.Contains(e.Message, "removed itself") {
				rejoins++
				t.Logf("rejoin: %s", e.Message)
			}
			return isNodeStep(e)
		})
		if !ok {
			res := s.wait()
			if res.code != 0 {
				t.Fatalf("rollout promote vault, run %d (after %d kills): exit %d\n%s\n%s", run, kills, res.code, res.stdout, tail(compactHealth(res.stderr), 60))
			}
			t.Logf("rollout promote vault, run %d: ended in %s\n%s", run, res.elapsed.Round(time.Second), res.stdout)
			break
		}
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		res := s.wait()
		if res.code != 128+int(syscall.SIGKILL) {
			t.Fatalf("drover killed after %q ended %d, not by SIGKILL", e.Message, res.code)
		}
		kills++
		steps = append(steps, e.Step)
		t.Logf("killed (SIGKILL) drover after node step %d (%s), %s into the replacement: %s", kills, e.Step, time.Since(start).Round(time.Second), e.Message)
	}
	wall := time.Since(start)
	time.Sleep(time.Second)
	got := reads.stop()
	elections := leaders.stop()
	x.row("replacement of 3 VMs one at a time, SIGKILL after every node step", fmt.Sprintf("%s wall, %d kills (%s), %d node(s) removed themselves and were replaced", wall.Round(time.Second), kills, strings.Join(steps, " "), rejoins))
	if kills < 6 {
		t.Errorf("drover was killed after %d node steps, want each of the 6 (3 joins, 3 removals)", kills)
	}

	// The cluster is the new image's 3 VMs; no qemu of an old node runs.
	nodes := liveInstances(t, x.lab, compute.Selector{rollout.LabelRole: "vault"})
	if len(nodes) != 3 {
		t.Fatalf("%d vault VMs after the replacement, want 3", len(nodes))
	}
	vms := labVMs(t, x.state)
	for _, old := range x.firstNodes {
		if slices.ContainsFunc(nodes, func(in compute.Instance) bool { return in.ID == old.ID }) {
			t.Errorf("old node %s (%s) is still an instance", old.Name, old.ID)
		}
		if pid, ok := vms[old.ID]; ok {
			t.Errorf("old node %s still runs as qemu pid %d", old.ID, pid)
		}
	}
	if len(vms) != 3 {
		t.Errorf("%d qemu processes in the lab after the replacement, want the 3 new VMs: %v", len(vms), vms)
	}
	nodeRoot := vaultAs(t, "http://"+nodes[0].Endpoint(8200).String(), x.rootToken)
	checkMembers(t, "after the replacement", nodes, waitVoters(t, nodeRoot, 3))
	s, err := vaultAs(t, "http://"+x.address, x.rootToken).KVv2("secret").Get(t.Context(), "hello")
	if err != nil || s.Data["from"] != "the raft cluster" {
		t.Errorf("the secret after the replacement: %v %v", s, err)
	}
	x.row("after: autopilot", "3 healthy voters, the new VMs, on the segment; the secret reads back")

	// Reads: after the first success, failures only within leader elections.
	outages := outagesOf(got)
	var longest time.Duration
	var unexplained []string
	for _, o := range outages {
		longest = max(longest, o.end.Sub(o.start))
		if !slices.ContainsFunc(elections, func(e election) bool { return e.overlaps(o) }) {
			unexplained = append(unexplained, o.String())
		}
	}
	x.row("reads every 100 ms through the role's address", fmt.Sprintf("%d reads, %d failed %v, %d outage(s) %v, longest %s; slowest successful read %s", len(got), failedAfterFirst(got), reasons(got), len(outages), outages, longest.Round(time.Millisecond), slowest(got).Round(time.Millisecond)))
	x.row("leader elections seen (sys/leader on every node, every 200 ms)", fmt.Sprintf("%d %v", len(elections), elections))
	if len(unexplained) > 0 {
		t.Errorf("read outages outside every leader election: %v (elections %v)", unexplained, elections)
	}
	if longest > 30*time.Second {
		t.Errorf("longest read outage %s", longest)
	}
}

// watchRemovals collects, every 2 s until stop, the lines of Vault's removed-node check from the
// consoles of the role's VMs (a destroyed VM's directory goes with it): the evidence of
// hashicorp/vault#32099 when a node removed itself.
func watchRemovals(t *testing.T, lab *qemu.Provider) (stop func() []string) {
	re := regexp.MustCompile(`(?i)removed.checker|removed from the (ha )?cluster|removed_from_cluster|failed to remove self`)
	var (
		seen  = map[string]bool{}
		lines []string
		stopc = make(chan struct{})
		done  = make(chan struct{})
	)
	scan := func() {
		all, _ := lab.Instances(context.Background(), compute.Selector{rollout.LabelRole: "vault"})
		for _, in := range all {
			b, err := os.ReadFile(in.Console)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); re.MatchString(line) && !seen[in.Name+line] {
					seen[in.Name+line] = true
					lines = append(lines, in.Name+": "+line)
				}
			}
		}
	}
	go func() {
		defer close(done)
		for {
			scan()
			select {
			case <-stopc:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	var once sync.Once
	stop = func() []string {
		once.Do(func() { close(stopc) })
		<-done
		return lines
	}
	t.Cleanup(func() { stop() })
	return stop
}
