//go:build e2e && e2earm64

package main

import (
	"context"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/internal/cloudlab/awslab"
	"github.com/drover-dev/drover/plugins/compute"
	awscompute "github.com/drover-dev/drover/plugins/compute/aws"
)

// TestE2EBuildARM64 builds an arm64 role with `drover build` on this amd64 host: mmdebstrap makes its
// tree through qemu-user (binfmt), the customization runs inside it the same way, and the disk boots
// under UEFI on an emulated arm64 machine with nginx answering through a host forward.
func TestE2EBuildARM64(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e build needs root (mmdebstrap --mode=root, chroot)")
	}
	fleetDir := t.TempDir()
	copyDir(t, "testdata/arm64", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")

	r := droverExec(t, nil, "--fleet", fleetFile, "build", "edge")
	if r.code != 0 {
		t.Fatalf("arm64 build failed: exit %d", r.code)
	}
	show := droverExec(t, nil, "--fleet", fleetFile, "--output", "json", "images", "show", "edge")
	var m images.Manifest
	if show.code != 0 || json.Unmarshal([]byte(show.stdout), &m) != nil {
		t.Fatalf("images show edge: exit %d\n%s", show.code, show.stdout)
	}
	if m.Arch != "arm64" {
		t.Errorf("manifest arch = %q, want arm64", m.Arch)
	}
	dir := filepath.Join(state, "images", strings.TrimPrefix(m.Identity, "sha256:"))
	raw := filepath.Join(dir, "disk.raw")

	t.Run("the image's programs are aarch64, drover-boot included", func(t *testing.T) {
		root := extractRoot(t, raw)
		for _, p := range []string{"usr/sbin/nginx", "usr/lib/systemd/systemd", "usr/local/bin/drover-boot"} {
			path := filepath.Join(t.TempDir(), filepath.Base(p))
			debugfs(t, root, "dump /"+p+" "+path)
			f, err := elf.Open(path)
			if err != nil {
				t.Errorf("/%s: %v", p, err)
				continue
			}
			if f.Machine != elf.EM_AARCH64 {
				t.Errorf("/%s is %v, want EM_AARCH64", p, f.Machine)
			}
			f.Close()
		}
		found := false
		for _, pkg := range m.Packages {
			if pkg.Name == "linux-image-arm64" || strings.HasPrefix(pkg.Name, "linux-image-") && strings.HasSuffix(pkg.Name, "-arm64") {
				found = true
			}
			if pkg.Arch != "arm64" && pkg.Arch != "all" {
				t.Errorf("package %s is for %s", pkg.Name, pkg.Arch)
			}
		}
		if !found {
			t.Error("the SBOM lists no arm64 kernel")
		}
	})

	t.Run("it boots under UEFI on arm64 and nginx answers", func(t *testing.T) {
		body, took := bootAndGet(t, raw, "uefi-arm64", 12*time.Minute)
		if !strings.Contains(body, "hello from an arm64 image") {
			t.Errorf("nginx served %q", body)
		}
		t.Logf("arm64: HTTP 200 after %s (TCG)", took.Round(time.Second))
	})

	t.Run("published as an arm64 AMI, it boots on the cloud lab's EC2 as a Graviton instance", func(t *testing.T) {
		bootOnGraviton(t, m.Identity, raw)
	})
}

// bootOnGraviton publishes an arm64 raw disk to the cloud lab's EC2 with the aws provider (an arm64
// AMI, from its non-zero blocks), launches it as a t4g instance (the fake boots it under
// qemu-system-aarch64 from NVMe, UEFI, the metadata service at 169.254.169.254), and waits for
// nginx and for drover-boot reading its user-data with IMDSv2, in the console EC2's
// GetConsoleOutput returns: ttyS0 is on the kernel command line for Graviton, and the kernel and
// drover-boot must be on the serial console qemu's virt machine has (ttyAMA0) too.
func bootOnGraviton(t *testing.T, identity, raw string) {
	ctx := t.Context()
	cloud := awslab.New(t, awslab.Options{Ports: []int{80}, AddressRange: netip.MustParsePrefix("127.0.143.0/24"),
		Hypervisor: awslab.QEMU{Memory: 1024}})
	prov, err := awscompute.New(ctx, &awscompute.Config{Region: cloud.Region(), InstanceType: "t4g.small"},
		awscompute.WithCredentials(awscreds.NewStaticCredentialsProvider(awslab.DefaultAccessKey, awslab.DefaultSecretKey, "")),
		awscompute.WithEndpoints(cloud.EC2URL(), cloud.EBSURL()))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := prov.Publish(ctx, compute.PublishSource{Identity: identity, Role: "edge", Arch: "arm64", Path: raw, Size: fi.Size()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ims := cloud.Images(); len(ims) != 1 || ims[0].Architecture != "arm64" {
		t.Fatalf("images in the cloud: %+v, want one arm64 AMI", ims)
	}
	start := time.Now()
	in, err := prov.Launch(ctx, compute.Spec{Token: "arm64-graviton", Name: "edge", Ports: []int{80},
		Image: compute.Image{Identity: identity, Published: pub}, UserData: []byte(`{"version":1,"role":"edge"}`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Terminate(context.Background(), in.ID) })
	var body string
	for deadline := time.Now().Add(12 * time.Minute); time.Now().Before(deadline) && !strings.Contains(body, "hello from an arm64 image"); time.Sleep(2 * time.Second) {
		if resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + in.Endpoint(80).String() + "/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
	}
	t.Logf("arm64 on the cloud lab (t4g, TCG): HTTP 200 after %s", time.Since(start).Round(time.Second))
	if !strings.Contains(body, "hello from an arm64 image") {
		t.Errorf("nginx on %s served %q", in.Endpoint(80), body)
	}
	client := ec2.New(ec2.Options{Region: cloud.Region(), BaseEndpoint: aws.String(cloud.EC2URL()),
		Credentials: awscreds.NewStaticCredentialsProvider(awslab.DefaultAccessKey, awslab.DefaultSecretKey, "")})
	var console string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		out, err := client.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(in.ID)})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
		if console = string(b); strings.Contains(console, "ec2-imdsv2") {
			break
		}
	}
	for _, want := range []string{"Linux version", "console=ttyS0,115200n8 console=ttyAMA0,115200n8", "ec2-imdsv2"} {
		if !strings.Contains(console, want) {
			t.Errorf("GetConsoleOutput lacks %q; it ends:\n%s", want, console[max(0, len(console)-3000):])
		}
	}
}
