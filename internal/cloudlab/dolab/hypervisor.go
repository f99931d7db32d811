package dolab

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/drover-dev/drover/internal/cloudlab/vm"
)

// Hypervisor boots a droplet's disk. With Options.Hypervisor nil, droplets exist only as API
// state. The fake calls Boot from a goroutine of its own once a create or power_on has answered;
// the droplet is "new" until Boot returns and "active" after, and its action completes. An error
// from Boot makes the droplet "archive" and its action "errored". Power off, delete and the end of
// the test call Machine.Stop.
type Hypervisor interface {
	Boot(ctx context.Context, m MachineSpec) (Machine, error)
}

// MachineSpec is what a Hypervisor needs to boot one droplet the way DigitalOcean would.
type MachineSpec struct {
	DropletID int
	Disk      string                            // the droplet's raw disk, a copy of its image's; the machine owns it
	Address   netip.Addr                        // the loopback address the droplet's public address maps to
	Guest     netip.Addr                        // the address the metadata gives the droplet, where Ports go in the guest
	Ports     []int                             // forwarded from Address:port to Guest:port
	Metadata  http.Handler                      // the droplet metadata service, at 169.254.169.254:80
	Routes    map[netip.AddrPort]netip.AddrPort // guest-visible address -> host loopback address
	Dir       string                            // a directory of its own for console log, pid file
}

// Machine is one booted droplet.
type Machine interface {
	Console() ([]byte, error)
	Stop() error // power off and wait until the process is gone; nil if already gone
}

// QEMU is the Hypervisor that boots droplets for real, each one a qemu process (package vm) with
// DigitalOcean's platform: virtio disk, SMBIOS vendor DigitalOcean, legacy BIOS (droplets boot
// with SeaBIOS: a custom image must be BIOS-bootable), no address but the one the guest
// configures from its metadata. Memory, CPUs and Accel override vm's defaults.
type QEMU struct {
	Memory int
	CPUs   int
	Accel  string
}

// Boot implements Hypervisor.
func (q QEMU) Boot(ctx context.Context, m MachineSpec) (Machine, error) {
	p := vm.DigitalOcean
	return vm.Start(ctx, vm.Spec{
		Disk: m.Disk, Arch: "amd64", BootMode: vm.BootLegacyBIOS, Address: m.Address, Ports: m.Ports,
		Platform: &p, GuestAddress: m.Guest, Metadata: m.Metadata, Routes: m.Routes, Dir: m.Dir,
		Memory: q.Memory, CPUs: q.CPUs, Accel: q.Accel,
	})
}

// boot starts d's machine in the background and finishes a when it runs; c.mu is held. The first
// boot copies the image's disk (imageDisk) to the droplet's own.
func (c *Cloud) boot(d *droplet, a *action, imageDisk string) {
	d.boots++
	gen := d.boots
	dir := filepath.Join(c.opts.Dir, "droplet-"+strconv.Itoa(d.ID))
	spec := MachineSpec{DropletID: d.ID, Disk: filepath.Join(dir, "disk.raw"), Address: d.Address, Guest: d.Guest,
		Ports: c.opts.Ports, Metadata: c.Metadata(d.ID), Routes: c.opts.Routes, Dir: dir}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		m, err := c.bootMachine(spec, imageDisk)
		c.mu.Lock()
		defer c.mu.Unlock()
		if cur := c.droplets[d.ID]; cur != d || d.boots != gen {
			// Deleted or powered off while booting.
			if m != nil {
				c.stopMachine(d.ID, m)
			}
			a.finish(err != nil)
			return
		}
		if err != nil {
			c.t.Logf("dolab: droplet %d failed to boot: %v", d.ID, err)
			d.Status = "archive"
			a.finish(true)
			return
		}
		d.machine, d.Status = m, "active"
		c.plugVolumesOf(d)
		a.finish(false)
	}()
}

func (c *Cloud) bootMachine(spec MachineSpec, imageDisk string) (Machine, error) {
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	if imageDisk != "" {
		if err := sparseCopy(spec.Disk, imageDisk); err != nil {
			return nil, fmt.Errorf("dolab: the droplet's disk: %w", err)
		}
	}
	return c.opts.Hypervisor.Boot(c.ctx, spec)
}

// stopMachine stops m in the background, then finishes the actions waiting for it; c.mu is held.
func (c *Cloud) stopMachine(id int, m Machine, wait ...*action) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := m.Stop()
		if err != nil {
			c.t.Errorf("dolab: stopping droplet %d: %v", id, err)
		}
		console, _ := m.Console()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.lastConsole == nil {
			c.lastConsole = map[int][]byte{}
		}
		c.lastConsole[id] = console
		for _, a := range wait {
			a.finish(err != nil)
		}
	}()
}

// sparseCopy copies src to a new file dst, leaving holes where src has zero MiBs.
func sparseCopy(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := copySparse(out, in)
	if err == nil {
		err = out.Truncate(n)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// copySparse copies r to w by MiB, seeking over MiBs of zeros; it returns the bytes read.
func copySparse(w *os.File, r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if !allZero(buf[:n]) {
				if _, werr := w.WriteAt(buf[:n], off); werr != nil {
					return off, werr
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Console returns the serial console of droplet id so far (DigitalOcean shows it in its web
// console only; tests read it here).
func (c *Cloud) Console(id int) ([]byte, error) {
	c.mu.Lock()
	var m Machine
	if d := c.droplets[id]; d != nil {
		m = d.machine
	}
	last, stopped := c.lastConsole[id]
	c.mu.Unlock()
	if m == nil {
		if stopped {
			return last, nil
		}
		return nil, fmt.Errorf("dolab: droplet %d has not booted", id)
	}
	return m.Console()
}

// Consoles returns the serial console of every droplet that has had a machine, deleted ones
// included (as it was when their machine stopped), by droplet ID: what a test prints when a
// rollout failed and drover destroyed the instance that would have told why.
func (c *Cloud) Consoles() map[int][]byte {
	c.mu.Lock()
	ids := slices.Collect(maps.Keys(c.lastConsole))
	for id, d := range c.droplets {
		if d.machine != nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	out := map[int][]byte{}
	for _, id := range ids {
		if b, err := c.Console(id); err == nil {
			out[id] = b
		}
	}
	return out
}
