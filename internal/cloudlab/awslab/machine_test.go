package awslab

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fakeHypervisor boots a "machine" that is a plain HTTP server on MachineSpec.Address at every
// port, answering with its instance ID: the stand-in for a guest behind its forwards.
type fakeHypervisor struct {
	t     *testing.T
	mu    sync.Mutex
	specs []MachineSpec
	up    int
}

type fakeMachine struct {
	h   *fakeHypervisor
	id  string
	srv []*http.Server
}

func (h *fakeHypervisor) Boot(ctx context.Context, s MachineSpec) (Machine, error) {
	m := &fakeMachine{h: h, id: s.InstanceID}
	for _, p := range s.Ports {
		ln, err := listenLoopback(s.Address, p)
		if err != nil {
			m.Stop()
			return nil, err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s.InstanceID) })}
		go srv.Serve(ln)
		m.srv = append(m.srv, srv)
	}
	h.mu.Lock()
	h.specs = append(h.specs, s)
	h.up++
	h.mu.Unlock()
	return m, nil
}

func (m *fakeMachine) Console() ([]byte, error) { return []byte("console of " + m.id + "\n"), nil }

func (m *fakeMachine) Stop() error {
	for _, s := range m.srv {
		s.Close()
	}
	if m.srv != nil {
		m.h.mu.Lock()
		m.h.up--
		m.h.mu.Unlock()
		m.srv = nil
	}
	return nil
}

// waitRunning polls DescribeInstances until the instance runs.
func waitRunning(t *testing.T, e *ec2.Client, id string) ec2types.Instance {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if in := describe(t, e, id); in.State.Name == ec2types.InstanceStateNameRunning {
			return in
		}
	}
	t.Fatalf("%s never ran", id)
	return ec2types.Instance{}
}

// get answers GET http://addr:port/ with a fresh connection.
func get(addr string) (string, error) {
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The Elastic IP moves connections between two instances: new connections go to the new
// holder, an open one stays with the old; the hypervisor gets the disk assembled from the
// snapshot, sparse, and its console answers GetConsoleOutput.
func TestElasticIPMovesAndMachines(t *testing.T) {
	h := &fakeHypervisor{t: t}
	c := New(t, Options{Hypervisor: h, Ports: []int{8080}})
	e, b := defaultClients(c)
	ctx := context.Background()
	_, ami := publish(t, e, b, "web-eip", "x86_64", 2, map[int32][]byte{0: block(0xAA), 3000: block(0xBB)})
	var ids []string
	for _, tok := range []string{"blue", "green"} {
		out, err := e.RunInstances(ctx, runInput(ami, tok))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *out.Instances[0].InstanceId)
	}
	blue, green := waitRunning(t, e, ids[0]), waitRunning(t, e, ids[1])

	h.mu.Lock()
	spec := h.specs[0]
	h.mu.Unlock()
	if spec.Arch != "amd64" || spec.BootMode != "uefi" || spec.Metadata == nil || len(spec.Ports) != 1 || spec.Dir == "" {
		t.Fatalf("MachineSpec = %+v", spec)
	}
	st, err := os.Stat(spec.Disk)
	if err != nil || st.Size() != 2<<30 {
		t.Fatalf("disk %s: %v, size %d; want 2 GiB", spec.Disk, err, st.Size())
	}
	if used := st.Sys().(*syscall.Stat_t).Blocks * 512; used > 8<<20 {
		t.Errorf("disk uses %d bytes on disk; want it sparse (2 blocks written)", used)
	}
	f, err := os.Open(spec.Disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for idx, want := range map[int64][]byte{0: block(0xAA), 1: block(0), 3000: block(0xBB), 4095: block(0)} {
		got := make([]byte, BlockSize)
		if _, err := f.ReadAt(got, idx*BlockSize); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("block %d of the disk is not the snapshot's (%v)", idx, err)
		}
	}
	if got, err := get(*blue.PublicIpAddress + ":8080"); err != nil || got != ids[0] {
		t.Fatalf("blue's own address answers %q, %v", got, err)
	}

	alloc, err := e.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc})
	if err != nil {
		t.Fatal(err)
	}
	eip := *alloc.PublicIp + ":8080"
	if _, err := get(eip); err == nil {
		t.Fatalf("an unassociated Elastic IP answered")
	}
	if _, err := e.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: blue.InstanceId}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(eip); err != nil || got != ids[0] {
		t.Fatalf("the Elastic IP on blue answers %q, %v", got, err)
	}
	if in := describe(t, e, ids[0]); *in.PublicIpAddress != *alloc.PublicIp {
		t.Fatalf("blue's PublicIpAddress %s, want the Elastic IP %s", *in.PublicIpAddress, *alloc.PublicIp)
	}
	// An open connection to blue, kept across the move.
	kept, err := net.Dial("tcp", eip)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()

	_, err = e.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: green.InstanceId})
	wantCode(t, "AssociateAddress of a held address without AllowReassociation", err, "Resource.AlreadyAssociated")
	if _, err := e.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: green.InstanceId, AllowReassociation: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(eip); err != nil || got != ids[1] {
		t.Fatalf("the Elastic IP moved to green answers %q, %v", got, err)
	}
	io.WriteString(kept, "GET / HTTP/1.0\r\n\r\n")
	old, _ := io.ReadAll(kept)
	if !strings.HasSuffix(string(old), ids[0]) {
		t.Fatalf("the connection opened before the move answered %q, want blue", old)
	}
	da, err := e.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{*alloc.AllocationId}})
	if err != nil || len(da.Addresses) != 1 || *da.Addresses[0].InstanceId != ids[1] || da.Addresses[0].AssociationId == nil {
		t.Fatalf("DescribeAddresses: %+v, %v", da, err)
	}
	if _, err := e.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: da.Addresses[0].AssociationId}); err != nil {
		t.Fatal(err)
	}
	if _, err := get(eip); err == nil {
		t.Fatalf("a disassociated Elastic IP answered")
	}

	co, err := e.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: blue.InstanceId})
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := base64.StdEncoding.DecodeString(*co.Output); string(out) != "console of "+ids[0]+"\n" {
		t.Fatalf("GetConsoleOutput = %q", out)
	}
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if in := describe(t, e, ids[0]); in.State.Name == ec2types.InstanceStateNameTerminated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("blue never terminated")
		}
	}
	// The terminated instances' consoles stay, as GetConsoleOutput keeps them.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		consoles := c.Consoles()
		if len(consoles) == len(ids) && string(consoles[ids[0]]) == "console of "+ids[0]+"\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Consoles() after TerminateInstances = %v, want the consoles of %v", consoles, ids)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up > 1 {
		t.Fatalf("%d machines up after TerminateInstances", h.up)
	}
}

// The metadata service: IMDSv2 tokens required as launched, user-data, the identity document and
// the instance profile's credentials, read the way cmd/drover-boot reads them.
func TestMetadataService(t *testing.T) {
	prof := InstanceProfile{Role: "vault-web", AccessKeyID: "ASIAEXAMPLEWEB000001", SecretAccessKey: "web-secret", Token: "web-session-token"}
	c := New(t, Options{InstanceProfiles: map[string]InstanceProfile{"web-profile": prof}})
	e, _ := defaultClients(c)
	ctx := context.Background()
	ami := image1(t, c, "imds", "x86_64")
	in := runInput(ami, "imds")
	in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String("web-profile")}
	out, err := e.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	byARN := runInput(ami, "by-arn")
	byARN.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::" + DefaultAccount + ":instance-profile/web-profile")}
	if _, err := e.RunInstances(ctx, byARN); err != nil {
		t.Fatalf("RunInstances with the instance profile's ARN: %v", err)
	}
	plain := runInput(ami, "plain")
	plain.UserData = nil
	out, err = e.RunInstances(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	plainID := *out.Instances[0].InstanceId
	if d := describe(t, e, id); d.IamInstanceProfile == nil || !strings.HasSuffix(*d.IamInstanceProfile.Arn, ":instance-profile/web-profile") {
		t.Fatalf("IamInstanceProfile = %+v", d.IamInstanceProfile)
	}

	srv := httptest.NewServer(c.Metadata(id))
	defer srv.Close()
	do := func(method, path, tok string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("X-aws-ec2-metadata-token", tok)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do("GET", "/latest/user-data", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET without a token: %d, want 401", code)
	}
	if code, _ := do("PUT", "/latest/api/token", ""); code != http.StatusBadRequest {
		t.Fatalf("PUT token without a TTL: %d, want 400", code)
	}
	code, tok := do("PUT", "/latest/api/token", "", "X-aws-ec2-metadata-token-ttl-seconds", "60")
	if code != 200 || tok == "" {
		t.Fatalf("PUT token: %d %q", code, tok)
	}
	if code, _ := do("GET", "/latest/user-data", "forged"); code != http.StatusUnauthorized {
		t.Fatalf("GET with a forged token: %d, want 401", code)
	}
	for path, want := range map[string]string{
		"/latest/user-data": "#drover\nhello", "/latest/meta-data/instance-id": id, "/latest/meta-data/placement/region": "us-east-1",
		"/latest/meta-data/iam/security-credentials/": "vault-web",
	} {
		if code, got := do("GET", path, tok); code != 200 || got != want {
			t.Errorf("GET %s = %d %q, want %q", path, code, got, want)
		}
	}
	inst := c.Instances()
	var me Instance
	for _, i := range inst {
		if i.ID == id {
			me = i
		}
	}
	if _, got := do("GET", "/latest/meta-data/local-ipv4", tok); got != me.PrivateIP.String() {
		t.Errorf("local-ipv4 = %q, want %s", got, me.PrivateIP)
	}
	if _, got := do("GET", "/latest/meta-data/public-ipv4", tok); got != me.PublicIP.String() {
		t.Errorf("public-ipv4 = %q, want %s", got, me.PublicIP)
	}
	var doc map[string]any
	_, raw := do("GET", "/latest/dynamic/instance-identity/document", tok)
	if err := json.Unmarshal([]byte(raw), &doc); err != nil || doc["instanceId"] != id || doc["accountId"] != DefaultAccount || doc["region"] != "us-east-1" || doc["imageId"] != ami {
		t.Fatalf("identity document %s: %v", raw, err)
	}
	var creds map[string]string
	_, raw = do("GET", "/latest/meta-data/iam/security-credentials/vault-web", tok)
	if err := json.Unmarshal([]byte(raw), &creds); err != nil || creds["Code"] != "Success" || creds["AccessKeyId"] != prof.AccessKeyID ||
		creds["SecretAccessKey"] != prof.SecretAccessKey || creds["Token"] != prof.Token || creds["Expiration"] == "" {
		t.Fatalf("credentials %s: %v", raw, err)
	}

	plainSrv := httptest.NewServer(c.Metadata(plainID))
	defer plainSrv.Close()
	srv.URL = plainSrv.URL
	_, tok = do("PUT", "/latest/api/token", "", "X-aws-ec2-metadata-token-ttl-seconds", "60")
	if code, _ := do("GET", "/latest/user-data", tok); code != http.StatusNotFound {
		t.Fatalf("user-data of an instance without: %d, want 404", code)
	}
	if code, _ := do("GET", "/latest/meta-data/iam/security-credentials/", tok); code != http.StatusNotFound {
		t.Fatalf("credentials of an instance without a profile: %d, want 404", code)
	}
}
