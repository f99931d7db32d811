//go:build e2e && lab

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
	"github.com/drover-dev/drover/rollout"
)

// The web role's instance profile in the cloud lab: its temporary credentials (what the metadata
// service hands the instance) are what the fake STS knows as the IAM role web.
const (
	awsWebKeyID  = "ASIAEXAMPLEE2EWEB001"
	awsWebSecret = "e2e-web-instance-secret-access-key-01234"
	awsWebToken  = "IQoJb3JpZ2luX2VjE2eWebSessionToken/abc=="
	awsWebRoleID = "AROAEXAMPLEE2EWEB001"
	awsRoleARN   = "arn:aws:iam::" + vaulttest.Account + ":role/web"
)

// TestE2EAWS runs the example's web role on the cloud lab's EC2 end to end, with the real drover
// binary and aws-sdk-go-v2 clients against the fake EC2 and EBS direct APIs: build, publish (an AMI
// from the raw disk's non-zero blocks), launch (the fake boots the AMI's snapshot under qemu, NVMe
// and UEFI, its metadata service at 169.254.169.254), health, promote (the Elastic IP moves under a
// request loop), rollback, the instance's secrets from a real Vault through Vault's aws login with
// its instance profile's credentials, drover killed with SIGKILL right after every transition and run
// again, and prune deregistering the AMIs it no longer needs. Nothing is left behind: no instance,
// AMI or snapshot that drover does not account for.
func TestE2EAWS(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done (two at a
	// time on two cores: takeLane gives GOMAXPROCS lanes), on addresses of its own (127.0.141.0/24).
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	// Vault, with the aws auth method set up as an operator would (its STS and IAM fakes), and the
	// password web's nginx asks for, which only an instance logged in as the IAM role web may read.
	srv, root, controllerToken := startLabVault(t)
	if err := root.Sys().PutPolicy(vault.ControllerPolicyName, vault.ControllerPolicy("approle")+vault.AWSControllerPolicy("aws")); err != nil {
		t.Fatal(err)
	}
	sts := vaulttest.NewSTS(t, map[string]vaulttest.AWSIdentity{awsWebKeyID: {SecretKey: awsWebSecret, SessionToken: awsWebToken,
		Arn: "arn:aws:sts::" + vaulttest.Account + ":assumed-role/web/i-cloudlab", UserID: awsWebRoleID + ":i-cloudlab"}})
	iam := vaulttest.NewIAM(t, map[string]string{"web": awsWebRoleID})
	srv.EnableAWS(t, "aws", iam.URL, sts.URL, "")
	password := randomPassword(t)
	mustWrite(t, root, "kv/data/web/app", map[string]any{"data": map[string]any{"password": password}})

	// The cloud: instances boot for real; Vault is "in the VPC" at a link-local address the guests
	// reach through the fake's network, as a private name would be on AWS.
	vaultPort := netip.MustParseAddrPort(strings.TrimPrefix(srv.Addr, "http://"))
	vaultInVPC := netip.MustParseAddrPort("169.254.169.100:" + fmt.Sprint(vaultPort.Port()))
	cloud := awslab.New(t, awslab.Options{
		Ports:        []int{80},
		AddressRange: netip.MustParsePrefix("127.0.141.0/24"),
		Hypervisor:   awslab.QEMU{Memory: 512, CPUs: 1},
		Routes:       map[netip.AddrPort]netip.AddrPort{vaultInVPC: vaultPort},
		InstanceProfiles: map[string]awslab.InstanceProfile{
			"web": {Role: "web", AccessKeyID: awsWebKeyID, SecretAccessKey: awsWebSecret, Token: awsWebToken},
		},
	})
	allocation, eip := allocateEIP(t, cloud)

	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	editFleet(t, fleetFile, `store "local" {}`, `store "local" {}

compute "aws" "cloud" {
  region        = "us-east-1"
  instance_type = "t3.micro"
}

ip "awseip" "eip" {
  allocation_id = "`+allocation+`"
  compute       = "cloud"
}`)
	editFleet(t, fleetFile, `address = "http://127.0.0.1:8200"`, `address          = "`+srv.Addr+`"
  instance_address = "http://`+vaultInVPC.String()+`"
  aws_mount        = "aws"`)
	editFleet(t, fleetFile, `    compute = "lab"
    count   = 2`, `    compute      = "cloud"
    count        = 1
    aws_iam_role = "`+awsRoleARN+`"`)
	editFleet(t, fleetFile, `cutover "ip" {
      ip   = "front"
      dns  = "home"
      name = "www"
      ttl  = 60
    }`, `cutover "ip" {
      ip = "eip"
    }`)
	editFleet(t, fleetFile, `watch    = var.watch`, `watch    = "5s"`)
	editFleet(t, fleetFile, `run     = ["systemctl enable nginx"]`, `run     = ["systemctl enable nginx"]
    secret "htpasswd" {
      path     = "kv/data/web/app"
      template = "web/htpasswd.tmpl"
      owner    = "root:www-data"
      mode     = "0440"
    }
    services = ["nginx"]`)
	writeFile(t, filepath.Join(fleetDir, "web/htpasswd.tmpl"), "admin:{PLAIN}{{ .password }}\n")
	writeFile(t, filepath.Join(fleetDir, "web/site.conf"), `server {
    listen 80 default_server;
    root /var/www/html;
    location / { try_files $uri $uri/ =404; }
    location /private/ {
        auth_basic           "drover";
        auth_basic_user_file /run/drover/secrets/htpasswd;
        alias /var/www/html/;
    }
}
`)
	env := append(cloud.Env(), "VAULT_TOKEN="+controllerToken)
	drover := func(t *testing.T, args ...string) result {
		t.Helper()
		return droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}
	must := func(t *testing.T, args ...string) result {
		t.Helper()
		r := drover(t, args...)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d", args, r.code)
		}
		return r
	}
	stream := func(t *testing.T, args ...string) *streamed {
		return droverStream(t, env, append([]string{"--fleet", fleetFile}, args...)...)
	}
	page := func(t *testing.T, v string) images.Manifest {
		t.Helper()
		writeFile(t, filepath.Join(fleetDir, "web/index.html"), "<h1>web on ec2 "+v+"</h1>\n")
		if r := droverExec(t, append(env, "DROVER_SCAN_VAULT_TOKEN="+srv.RootToken), "--fleet", fleetFile, "build", "web"); r.code != 0 {
			t.Fatalf("drover build web: exit %d", r.code)
		}
		var m images.Manifest
		if r := must(t, "--output", "json", "images", "show", "web"); json.Unmarshal([]byte(r.stdout), &m) != nil {
			t.Fatalf("images show web: %s", r.stdout)
		}
		return m
	}
	serves := func(t *testing.T, want string) {
		t.Helper()
		if got := get(t, "http://"+eip.String()+"/"); !strings.Contains(got, want) {
			t.Fatalf("the Elastic IP %s answers %q, want %q", eip, got, want)
		}
	}
	// accounted checks the cloud against drover: every instance that is not terminated is one a
	// rollout owns, every AMI is one the catalog records as published, and every snapshot is an
	// AMI's.
	accounted := func(t *testing.T) string {
		t.Helper()
		var status struct {
			Instances []statusInstance `json:"instances"`
		}
		if r := must(t, "--output", "json", "rollout", "status", "web"); json.Unmarshal([]byte(r.stdout), &status) != nil {
			t.Fatalf("rollout status: %s", r.stdout)
		}
		live := 0
		for _, in := range cloud.Instances() {
			if in.State == "terminated" || in.State == "shutting-down" {
				continue
			}
			live++
			if !slices.ContainsFunc(status.Instances, func(s statusInstance) bool { return s.ID == in.ID && s.Owned }) {
				t.Errorf("instance %s (%s) runs in the cloud, owned by no rollout", in.ID, in.State)
			}
		}
		published := map[string]bool{}
		cat := images.OpenCatalog(filepath.Join(fleetDir, ".drover"))
		list, _ := cat.List()
		for _, m := range list {
			refs, _ := cat.Published(m.Identity)
			for _, r := range refs {
				published[r.ID] = true
			}
		}
		amiSnapshots := map[string]bool{}
		for _, im := range cloud.Images() {
			amiSnapshots[im.RootSnapshotID] = true
			if !published[im.ID] {
				t.Errorf("AMI %s (%s) is in the cloud, recorded by no catalog image", im.ID, im.Tags["drover-identity"])
			}
		}
		for _, s := range cloud.Snapshots() {
			if !amiSnapshots[s.ID] {
				t.Errorf("snapshot %s (%s, %s) belongs to no AMI", s.ID, s.State, s.Tags["drover-identity"])
			}
		}
		return fmt.Sprintf("%d live instance(s), %d AMI(s), %d snapshot(s)", live, len(cloud.Images()), len(cloud.Snapshots()))
	}

	var table []string
	row := func(format string, args ...any) { table = append(table, fmt.Sprintf(format, args...)) }
	defer func() { t.Logf("MEASURE web on the cloud lab's EC2:\n%s", strings.Join(table, "\n")) }()

	t.Run("build, publish, launch, health, promote: the Elastic IP serves the new instance", func(t *testing.T) {
		web := page(t, "1")
		s := stream(t, "rollout", "start", "web")
		var events []rollout.Event
		for e := range s.events {
			events = append(events, e)
			t.Log(e.String())
		}
		r := <-s.done
		if r.code != 0 {
			t.Fatalf("rollout start: exit %d\n%s", r.code, r.stderr)
		}
		raw := filepath.Join(fleetDir, ".drover", "images", strings.TrimPrefix(web.Identity, "sha256:"), "disk.raw")
		inUse, length := bytesInUse(t, raw)
		sent := cloud.BytesReceived()
		row("publish of web: %d bytes sent, %.3f of the %d bytes in use, %.3f of the %d-byte disk", sent, float64(sent)/float64(inUse), inUse, float64(sent)/float64(length), length)
		// EBS takes whole 512 KiB blocks: the publish must send exactly those of the raw disk that
		// hold a non-zero byte (a block with one byte of data goes whole; one of zeros not at all).
		if want := nonZeroBlockBytes(t, raw, ebsBlockSize); sent != want {
			t.Errorf("the publish sent %d bytes; the raw disk's 512 KiB blocks with data come to %d bytes", sent, want)
		}
		if n := len(cloud.Images()); n != 1 {
			t.Errorf("%d AMIs after the first rollout, want 1", n)
		}
		for _, im := range cloud.Images() {
			if im.BootMode != "uefi-preferred" || !im.EnaSupport || im.ImdsSupport != "v2.0" || im.Tags["drover-identity"] != web.Identity {
				t.Errorf("AMI %s: boot mode %q, ENA %v, IMDS %q, identity tag %q", im.ID, im.BootMode, im.EnaSupport, im.ImdsSupport, im.Tags["drover-identity"])
			}
		}
		row("rollout start (publish, launch, boot, health): %s; %s", r.elapsed.Round(100*time.Millisecond), overhead(events))
		for _, in := range cloud.Instances() {
			if in.State == "running" && (in.InstanceProfile != "web" || in.HTTPTokens != "required") {
				t.Errorf("instance %s: instance profile %q, http tokens %q; want web and required", in.ID, in.InstanceProfile, in.HTTPTokens)
			}
		}
		must(t, "rollout", "promote", "web")
		serves(t, "web on ec2 1")
		if got := get(t, "http://admin:"+password+"@"+eip.String()+"/private/"); !strings.HasPrefix(got, "200 ") {
			t.Errorf("/private/ with the password from Vault: %q, want 200: the instance did not get its secret through the aws login", got)
		}
		if got := get(t, "http://admin:wrong@"+eip.String()+"/private/"); !strings.HasPrefix(got, "401 ") {
			t.Errorf("/private/ with a wrong password: %q, want 401", got)
		}
		row("promote: %s serves version 1; /private/ 200 with Vault's password (aws login), 401 without", eip)
		// What EC2's GetConsoleOutput shows of the boot: the kernel on ttyS0, drover-boot reading
		// its user-data with IMDSv2 and writing the secret it logged in for, timesyncd (EC2's NTP first).
		console := consoleOutput(t, cloud, liveGreen(t, cloud))
		for _, want := range []string{"Linux version", "console=ttyS0", "user-data from ec2-imdsv2", "wrote 1 secrets", "Network Time Synchronization"} {
			if !strings.Contains(console, want) {
				t.Errorf("GetConsoleOutput lacks %q; it ends:\n%s", want, tail(console, 30))
			}
		}
		row("after the first rollout: %s", accounted(t))
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("a second rollout moves the Elastic IP under a request loop, and rollback moves it back", func(t *testing.T) {
		page(t, "2")
		must(t, "rollout", "start", "web")
		loop := startRequestLoop("http://"+eip.String()+"/", 50*time.Millisecond)
		t0 := time.Now()
		must(t, "rollout", "promote", "web")
		t1 := time.Now()
		res := loop.stop()
		serves(t, "web on ec2 2")
		row("promote under a request loop (50 ms): %d answered, %d failed, longest gap across the move %s, answers %v",
			res.ok, res.failed, res.gapAround(t0, t1).Round(time.Millisecond), sortedKeys(res.bodies))
		if res.failed > 0 {
			t.Errorf("%d requests failed across the Elastic IP move", res.failed)
		}
		loop = startRequestLoop("http://"+eip.String()+"/", 50*time.Millisecond)
		t0 = time.Now()
		rb := must(t, "rollout", "rollback", "web")
		t1 = time.Now()
		res = loop.stop()
		serves(t, "web on ec2 1")
		row("rollback in %s: %d answered, %d failed, longest gap %s", rb.elapsed.Round(time.Millisecond), res.ok, res.failed, res.gapAround(t0, t1).Round(time.Millisecond))
		row("after the rollback: %s", accounted(t))
	})

	t.Run("drover killed with SIGKILL right after each transition converges when run again", func(t *testing.T) {
		page(t, "3")
		killAfterEachTransition(t, stream, drover, func(cmd string, points []rollout.State, r result) {
			row("%-8s killed after each of %v, rerun: exit %d in %s; %s", cmd, points, r.code, r.elapsed.Round(time.Millisecond), accounted(t))
		})
		serves(t, "web on ec2 1")
	})

	t.Run("prune deregisters the AMIs and deletes the snapshots of images no rollout uses", func(t *testing.T) {
		before := len(cloud.Images())
		r := must(t, "images", "prune", "--keep", "1")
		row("images prune --keep 1: AMIs %d -> %d; %s", before, len(cloud.Images()), accounted(t))
		if len(cloud.Images()) >= before {
			t.Errorf("prune left %d of %d AMIs\n%s", len(cloud.Images()), before, r.stdout)
		}
		serves(t, "web on ec2 1")
	})
}

// liveGreen is the one running instance of the cloud.
func liveGreen(t *testing.T, cloud *awslab.Cloud) string {
	t.Helper()
	var ids []string
	for _, in := range cloud.Instances() {
		if in.State == "running" {
			ids = append(ids, in.ID)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("running instances %v, want one", ids)
	}
	return ids[0]
}

// consoleOutput is GetConsoleOutput of an instance, through the EC2 API as an operator reads it.
func consoleOutput(t *testing.T, cloud *awslab.Cloud, id string) string {
	t.Helper()
	client := ec2.New(ec2.Options{Region: cloud.Region(), BaseEndpoint: aws.String(cloud.EC2URL()),
		Credentials: awscreds.NewStaticCredentialsProvider(awslab.DefaultAccessKey, awslab.DefaultSecretKey, "")})
	out, err := client.GetConsoleOutput(t.Context(), &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// overhead breaks a rollout start down by its events: drover's own time (before the publish starts
// and after the last check passes) against the platform's (the publish, RunInstances until running,
// the guest's boot and its checks); goal: drover's own at most 2 s beyond the slowest
// boot-to-healthy.
func overhead(events []rollout.Event) string {
	var booting, published, launched, ready, end time.Duration
	for _, e := range events {
		switch {
		case e.Kind == "transition" && e.State == rollout.Booting:
			booting = e.Elapsed
		case e.Kind == "step" && e.Step == "publish" && published == 0 && strings.HasPrefix(e.Message, "published"):
			published = e.Elapsed
		case e.Kind == "step" && e.Step == "launch":
			launched = max(launched, e.Elapsed)
		case e.Kind == "transition" && e.State == rollout.Ready:
			ready = e.Elapsed
		}
		end = max(end, e.Elapsed)
	}
	if launched == 0 || ready == 0 {
		return "no launch or ready event to measure the overhead by"
	}
	if published == 0 {
		published = booting
	}
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("until booting %s, publish %s, RunInstances to running %s, running to ready (boot, checks) %s, after ready %s; drover's own time beyond publish and boot-to-healthy %s",
		r(booting), r(published-booting), r(launched-published), r(ready-launched), r(end-ready), r(booting+end-ready))
}

// bytesInUse is the allocated bytes of a sparse file and its length.
// ebsBlockSize is the block size of the EBS direct APIs (PutSnapshotBlock).
const ebsBlockSize = 512 << 10

// nonZeroBlockBytes is how many bytes of path lie in blocks of size that hold a non-zero byte.
func nonZeroBlockBytes(t *testing.T, path string, size int) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf, zeros := make([]byte, size), make([]byte, size)
	var total int64
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 && !bytes.Equal(buf[:n], zeros[:n]) {
			total += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func bytesInUse(t *testing.T, path string) (inUse, length int64) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512, st.Size
}
