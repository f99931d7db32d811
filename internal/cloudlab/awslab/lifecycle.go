package awslab

// An instance's life, as EC2 documents its states
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html): pending ->
// running -> stopping -> stopped -> pending, and shutting-down -> terminated from any of them.
// With a Hypervisor, pending ends when Boot returns and stopping/shutting-down when Machine.Stop
// does; without one, DescribeInstances moves them on (Options.PendingPolls). TerminateInstances,
// StopInstances and StartInstances are idempotent; a stop or terminate of an instance in a state
// that forbids it is IncorrectInstanceState. GetConsoleOutput answers the machine's console, kept
// after it stops. Left out: hibernation, Force, and the public address change at stop/start (the
// instance keeps its loopback address).

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"time"
)

func errorf(format string, args ...any) error { return fmt.Errorf("awslab: "+format, args...) }

// launch starts in on its way to running; c.mu is held.
func (c *Cloud) launch(in *instance) {
	in.gen++
	if c.opts.Hypervisor == nil || in.failLaunch {
		return
	}
	f, blocks, err := c.rootBlocks(in)
	if in.disk == "" && err != nil {
		c.terminate(in, "Server.InternalError", "Server.InternalError: Internal error on launch: "+err.Error())
		in.settle = "terminated"
		return
	}
	if in.disk != "" && f != nil { // a start after a stop: the root volume is there already
		f.Close()
		f = nil
	}
	if in.dir == "" {
		if in.dir, err = c.instanceDir(in.ID); err != nil {
			if f != nil {
				f.Close()
			}
			c.terminate(in, "Server.InternalError", "Server.InternalError: Internal error on launch: "+err.Error())
			return
		}
	}
	assemble := in.disk == ""
	in.disk = filepath.Join(in.dir, "disk.raw")
	arch := map[string]string{"x86_64": "amd64", "arm64": "arm64"}[in.arch]
	spec := MachineSpec{InstanceID: in.ID, Disk: in.disk, Arch: arch, BootMode: in.bootMode, Address: in.PublicIP,
		Ports: c.opts.Ports, Metadata: in.imds, Routes: c.opts.Routes, Dir: in.dir}
	gen, size := in.gen, in.volumeSize*gib
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if assemble {
			if err := assembleDisk(spec.Disk, f, blocks, size); err != nil {
				c.bootFailed(in, gen, err)
				return
			}
		}
		m, err := c.opts.Hypervisor.Boot(c.ctx, spec)
		if err != nil {
			c.bootFailed(in, gen, err)
			return
		}
		c.mu.Lock()
		if in.gen != gen || c.ctx.Err() != nil {
			c.mu.Unlock()
			if err := m.Stop(); err != nil {
				c.t.Errorf("awslab: stopping %s, booted after it was stopped: %v", in.ID, err)
			}
			return
		}
		in.machine, in.State = m, "running"
		c.mu.Unlock()
	}()
}

func (c *Cloud) bootFailed(in *instance, gen int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.gen == gen {
		c.terminate(in, "Server.InternalError", "Server.InternalError: Internal error on launch: "+err.Error())
		in.State, in.terminatedAt, in.settle = "terminated", time.Now(), ""
	}
}

// advance moves in on at a DescribeInstances poll, where no machine does it; c.mu is held.
func (c *Cloud) advance(in *instance) {
	switch {
	case in.State == "pending" && in.failLaunch:
		c.terminate(in, "Server.InternalError", "Server.InternalError: Internal error on launch")
		in.State, in.terminatedAt, in.settle = "terminated", time.Now(), ""
	case in.settle != "":
		in.State, in.settle = in.settle, ""
		if in.State == "terminated" {
			in.terminatedAt = time.Now()
		}
	case in.State == "pending" && c.opts.Hypervisor == nil:
		if in.pendingPolls > 0 {
			in.pendingPolls--
		} else {
			in.State = "running"
		}
	}
}

// terminate starts in shutting down, with the state reason given; c.mu is held.
func (c *Cloud) terminate(in *instance, code, msg string) {
	c.halt(in, "shutting-down", "terminated", code, msg)
	for _, a := range c.addresses {
		if a.instanceID == in.ID {
			a.instanceID, a.associationID = "", ""
		}
	}
	in.eip = netip.Addr{}
	c.detachAll(in.ID)
}

// halt moves in to the transient state via and, once its machine is off, to final; c.mu is held.
func (c *Cloud) halt(in *instance, via, final, code, msg string) {
	in.gen++
	in.State, in.StateReason, in.stateReasonMsg = via, code, msg
	in.reason = fmt.Sprintf("User initiated (%s)", time.Now().UTC().Format("2006-01-02 15:04:05 GMT"))
	if code != "Client.UserInitiatedShutdown" {
		in.reason = code
	}
	m := in.machine
	in.machine = nil
	if m == nil {
		in.settle = final
		return
	}
	gen := in.gen
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		console, _ := m.Console()
		err := m.Stop()
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.t.Errorf("awslab: stopping %s: %v", in.ID, err)
		}
		in.console = console
		if in.gen == gen {
			in.State = final
			if final == "terminated" {
				in.terminatedAt = time.Now()
			}
		}
	}()
}

type stateChangeXML struct {
	InstanceID string   `xml:"instanceId"`
	Current    stateXML `xml:"currentState"`
	Previous   stateXML `xml:"previousState"`
}

type stateChanges struct {
	Instances []stateChangeXML `xml:"instancesSet>item"`
}

// eachInstance runs change on every instance of InstanceId.N once all are found, and answers
// their state changes.
func (c *Cloud) eachInstance(f url.Values, change func(in *instance) *ec2Error) (any, *ec2Error) {
	ids := members(f, "InstanceId")
	if len(ids) == 0 {
		return nil, missing("InstanceId")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.instances[id] == nil {
			return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"}
		}
	}
	var out stateChanges
	for _, id := range ids {
		in := c.instances[id]
		prev := in.State
		if e := change(in); e != nil {
			return nil, e
		}
		out.Instances = append(out.Instances, stateChangeXML{id, state(in.State), state(prev)})
	}
	return out, nil
}

func (c *Cloud) terminateInstances(f url.Values) (any, *ec2Error) {
	return c.eachInstance(f, func(in *instance) *ec2Error {
		if in.State != "terminated" && in.State != "shutting-down" {
			c.terminate(in, "Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown")
		}
		return nil
	})
}

func (c *Cloud) stopInstances(f url.Values) (any, *ec2Error) {
	return c.eachInstance(f, func(in *instance) *ec2Error {
		switch in.State {
		case "pending", "running":
			c.halt(in, "stopping", "stopped", "Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown")
		case "stopping", "stopped":
		default:
			return &ec2Error{http.StatusBadRequest, "IncorrectInstanceState", "This instance '" + in.ID + "' is not in a state from which it can be stopped."}
		}
		return nil
	})
}

func (c *Cloud) startInstances(f url.Values) (any, *ec2Error) {
	return c.eachInstance(f, func(in *instance) *ec2Error {
		switch in.State {
		case "stopped":
			in.State, in.StateReason, in.stateReasonMsg, in.reason, in.settle = "pending", "", "", "", ""
			in.pendingPolls = c.opts.PendingPolls
			c.launch(in)
		case "pending", "running":
		default:
			return &ec2Error{http.StatusBadRequest, "IncorrectInstanceState", "The instance '" + in.ID + "' is not in a state from which it can be started."}
		}
		return nil
	})
}

// maxConsole is how much of the console GetConsoleOutput answers: EC2's latest 64 KiB.
const maxConsole = 64 << 10

func (c *Cloud) getConsoleOutput(f url.Values) (any, *ec2Error) {
	id := f.Get("InstanceId")
	if id == "" {
		return nil, missing("InstanceId")
	}
	c.mu.Lock()
	in := c.instances[id]
	var m Machine
	var console []byte
	if in != nil {
		m, console = in.machine, in.console
	}
	c.mu.Unlock()
	if in == nil {
		return nil, &ec2Error{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"}
	}
	if m != nil {
		var err error
		if console, err = m.Console(); err != nil {
			return nil, &ec2Error{http.StatusInternalServerError, "InternalError", "reading the console of " + id + ": " + err.Error()}
		}
	}
	if len(console) > maxConsole {
		console = console[len(console)-maxConsole:]
	}
	return struct {
		InstanceID string `xml:"instanceId"`
		Timestamp  string `xml:"timestamp"`
		Output     string `xml:"output"`
	}{id, ec2Time(time.Now()), base64.StdEncoding.EncodeToString(console)}, nil
}
