//go:build e2e

package qemu_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/images/disk/disktest"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/config"
)

// TestE2EVolumesContract runs the volumes suite against the lab with VMs
// that boot no OS (a blank disk under SeaBIOS): qcow2 files, records and
// QMP hot-plug are real; a hot-unplug, which needs the guest's ACPI, is not
// possible there, so Detach and Delete (which detach from a live VM) are
// left to TestE2EVolumeMove, which boots real guests.
func TestE2EVolumesContract(t *testing.T) {
	blank := filepath.Join(t.TempDir(), "blank.raw")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	computetest.RunVolumes(t, func(t *testing.T) computetest.VolumesFixture {
		dir := t.TempDir()
		killAll(t, dir)
		cfg := qemu.NewDefaultConfig(config.OS())
		cfg.Firmware, cfg.Memory, cfg.Accel = "bios", 128, "tcg"
		cfg.Network = "127.0.13.0/24"
		p, err := qemu.New(cfg, dir)
		if err != nil {
			t.Fatal(err)
		}
		return computetest.VolumesFixture{Provider: p, Volumes: p,
			WriteMarker: func(ctx context.Context, id string, data []byte) error {
				return writeMarker(ctx, p.VolumePath(id), data)
			},
			ReadMarker: func(ctx context.Context, id string, n int) ([]byte, error) {
				return readMarker(ctx, p.VolumePath(id), n)
			},
		}
	}, computetest.VolumesOptions{
		Image:   compute.Image{Identity: "blank", Path: blank},
		Timeout: 2 * time.Minute,
		Skip:    []string{"Detach", "Delete"},
	})
	t.Logf("suite took %s", time.Since(start).Round(time.Millisecond))
}

// writeMarker writes data at offset 0 of a qcow2 volume, as a guest writes
// its block device.
func writeMarker(ctx context.Context, path string, data []byte) error {
	src := filepath.Join(filepath.Dir(path), "marker.tmp")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	defer os.Remove(src)
	out, err := exec.CommandContext(ctx, "qemu-io", "-f", "qcow2", "-c",
		fmt.Sprintf("write -s %s 0 %d", src, len(data)), path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-io: %w: %s", err, out)
	}
	return nil
}

// readMarker reads the first n bytes of a qcow2 volume.
func readMarker(ctx context.Context, path string, n int) ([]byte, error) {
	raw := path + ".read"
	defer os.Remove(raw)
	blocks := (n + 511) / 512
	out, err := exec.CommandContext(ctx, "qemu-img", "dd", "-f", "qcow2", "-O", "raw",
		"bs=512", "count="+strconv.Itoa(blocks), "if="+path, "of="+raw).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("qemu-img dd: %w: %s", err, out)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// virtioDisk is the start of the kernel's line for a virtio disk it found,
// such as "virtio_blk virtio3: [vdb] 2097152 512-byte logical blocks". Only
// the start: what systemd or getty writes to the same serial console can
// land in the middle of a kernel line.
var virtioDisk = regexp.MustCompile(`virtio_blk virtio\d+: \[vd[b-z]\]`)

// TestE2EVolumeMove boots two lab VMs, moves one volume from the first to
// the second and checks, through QMP of both VMs after every step, that at
// most one has the volume's block node; the guests' kernels log the
// hot-plugged disk on their serial consoles.
func TestE2EVolumeMove(t *testing.T) {
	img := disktest.LabImage(t)
	state := t.TempDir()
	killAll(t, state)
	cfg := qemu.NewDefaultConfig(config.OS())
	cfg.Network = "127.0.14.0/24"
	p, err := qemu.New(cfg, state)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), httpDeadline+5*time.Minute)
	defer cancel()
	start := time.Now()
	var ins []compute.Instance
	for i := range 2 {
		in, err := p.Launch(ctx, compute.Spec{
			Token: fmt.Sprintf("volume-e2e-%d", i), Name: fmt.Sprintf("db-%d", i),
			Image:  compute.Image{Identity: "lab-nginx", Path: img},
			Labels: map[string]string{"role": "db"}, Ports: []int{80},
			UserData: []byte(fmt.Sprintf("instance %d\n", i)),
		})
		if err != nil {
			t.Fatalf("Launch %d: %v", i, err)
		}
		ins = append(ins, in)
	}
	for _, in := range ins {
		if _, err := waitHTTP(ctx, fmt.Sprintf("http://%s/userdata.txt", in.Endpoint(80)), start.Add(httpDeadline)); err != nil {
			t.Fatalf("%s: %v\nconsole:\n%s", in.ID, err, tail(in.Console, 40))
		}
	}
	t.Logf("both guests booted (nginx answers) in %s", time.Since(start).Round(time.Millisecond))

	v, err := p.CreateVolume(ctx, compute.VolumeSpec{Token: "volume-e2e", Name: "data", SizeGiB: 1, Labels: map[string]string{"role": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	// holders asks every VM's QMP which has the volume's block node.
	holders := func(step string) []string {
		t.Helper()
		var have []string
		for _, in := range ins {
			m, err := p.Monitor(ctx, in.ID)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			ids, err := m.VolumeBlocks(ctx)
			m.Close()
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if slices.Contains(ids, v.ID) {
				have = append(have, in.ID)
			}
		}
		if len(have) > 1 {
			t.Fatalf("%s: volume %s is in %d VMs at once: %v", step, v.ID, len(have), have)
		}
		return have
	}
	expect := func(step string, want ...string) {
		t.Helper()
		if got := holders(step); !slices.Equal(got, want) {
			t.Fatalf("%s: QMP shows the volume in %v, want %v", step, got, want)
		}
	}
	expect("created")

	moveTo := func(i int) {
		t.Helper()
		before, _ := os.ReadFile(ins[i].Console)
		t0 := time.Now()
		got, err := p.AttachVolume(ctx, v.ID, ins[i].ID)
		if err != nil {
			t.Fatalf("AttachVolume to %s: %v", ins[i].ID, err)
		}
		attach := time.Since(t0)
		expect("attached to "+ins[i].ID, ins[i].ID)
		if got.GuestPath != "/dev/disk/by-id/virtio-"+v.ID {
			t.Errorf("GuestPath = %q", got.GuestPath)
		}
		// The serial is what udev names /dev/disk/by-id/virtio-<serial> after (GuestPath).
		if m, err := p.Monitor(ctx, ins[i].ID); err != nil {
			t.Fatal(err)
		} else {
			qtree, err := m.HMP(ctx, "info qtree")
			m.Close()
			if err != nil || !strings.Contains(qtree, `serial = "`+v.ID+`"`) {
				t.Fatalf("info qtree of %s shows no virtio-blk with serial %q (%v)", ins[i].ID, v.ID, err)
			}
		}
		line := waitConsole(t, ctx, ins[i].Console, len(before))
		t.Logf("attach to %s: %s; guest's kernel %s after: %q", ins[i].ID, attach.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), line)
		if _, err := p.AttachVolume(ctx, v.ID, ins[1-i].ID); err == nil {
			t.Fatalf("AttachVolume to %s while %s has it succeeded", ins[1-i].ID, ins[i].ID)
		}
		expect("refused attach to "+ins[1-i].ID, ins[i].ID)
		t0 = time.Now()
		if err := p.DetachVolume(ctx, v.ID); err != nil {
			t.Fatalf("DetachVolume from %s: %v", ins[i].ID, err)
		}
		t.Logf("detach from %s: %s", ins[i].ID, time.Since(t0).Round(time.Millisecond))
		expect("detached from " + ins[i].ID)
	}
	moveTo(0)
	moveTo(1)
	if _, err := p.AttachVolume(ctx, v.ID, ins[1].ID); err != nil {
		t.Fatal(err)
	}
	expect("attached again to "+ins[1].ID, ins[1].ID)
	if err := p.Terminate(ctx, ins[1].ID); err != nil {
		t.Fatal(err)
	}
	ins = ins[:1]
	vs, err := p.Volumes(ctx, compute.Selector{"role": "db"})
	if err != nil || len(vs) != 1 || vs[0].AttachedTo != "" {
		t.Fatalf("after Terminate of its holder: %+v, %v; want the volume, detached", vs, err)
	}
	expect("holder terminated")
	if err := p.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("test took %s", time.Since(start).Round(time.Millisecond))
}

// waitConsole waits for the guest's kernel to log a virtio disk after
// offset of its console file, and returns the line.
func waitConsole(t *testing.T, ctx context.Context, console string, offset int) string {
	t.Helper()
	for {
		b, _ := os.ReadFile(console)
		if len(b) > offset {
			if loc := virtioDisk.FindIndex(b[offset:]); loc != nil {
				line := b[offset+loc[0]:]
				if end := bytes.IndexByte(line, '\n'); end >= 0 {
					line = line[:end]
				}
				return string(bytes.TrimSpace(line))
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no virtio_blk line on %s:\n%s", console, tail(console, 20))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
