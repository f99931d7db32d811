package awslab

import (
	"math/rand/v2"
)

// Fault is an error answer to requests, given after their signature is checked and before the
// action runs (so the action has no effect). Faults answer in the order they were queued.
//
// What the SDK makes of them: its standard retryer retries 500, 502, 503 and 504 and the throttle
// codes (RequestLimitExceeded, ThrottlingException, RequestThrottledException, ...), 3 attempts
// in all by default; other codes are final.
type Fault struct {
	// Service is "ec2" or "ebs"; empty matches both.
	Service string
	// Action, such as RunInstances or PutSnapshotBlock; empty matches every action.
	Action string
	// Status is the HTTP status: EC2 answers RequestLimitExceeded with 503, InternalError with
	// 500, Unavailable with 503; EBS answers ThrottlingException with 429 and
	// InternalServerException with 500.
	Status int
	// Code and Message are the error's; Message defaults to one like AWS's.
	Code, Message string
	// Times is how many requests get the fault; -1 means every matching request from now on.
	Times int
}

// The faults EC2 documents for its Query API, as Fault values for Fail.
var (
	// EC2RequestLimitExceeded is EC2's throttling answer (HTTP 503).
	EC2RequestLimitExceeded = Fault{Service: "ec2", Status: 503, Code: "RequestLimitExceeded", Message: "Request limit exceeded."}
	// EC2InternalError is EC2's 500.
	EC2InternalError = Fault{Service: "ec2", Status: 500, Code: "InternalError", Message: "An internal error has occurred."}
	// EC2Unavailable is EC2's 503 when the service is overloaded.
	EC2Unavailable = Fault{Service: "ec2", Status: 503, Code: "Unavailable", Message: "The server is overloaded and can't handle the request."}
	// EBSThrottling is the EBS direct APIs' throttling answer (HTTP 429).
	EBSThrottling = Fault{Service: "ebs", Status: 429, Code: "ThrottlingException", Message: "Rate exceeded"}
	// EBSInternal is the EBS direct APIs' 500.
	EBSInternal = Fault{Service: "ebs", Status: 500, Code: "InternalServerException", Message: "An internal error occurred."}
)

type queuedFault struct {
	f    Fault
	left int
}

// Fail queues f for the next f.Times requests (1 when 0; -1: every matching request from now on)
// of f.Service and f.Action.
func (c *Cloud) Fail(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, &queuedFault{f: f, left: f.Times})
}

// nextFault returns the first queued fault matching service and action; c.mu is held.
func (c *Cloud) nextFault(service, action string) (Fault, bool) {
	for i, q := range c.faults {
		if (q.f.Service != "" && q.f.Service != service) || (q.f.Action != "" && q.f.Action != action) {
			continue
		}
		if q.left > 0 {
			q.left--
			if q.left == 0 {
				c.faults = append(c.faults[:i:i], c.faults[i+1:]...)
			}
		}
		return q.f, true
	}
	return Fault{}, false
}

// ec2Faults are EC2's launch troubles, armed by the methods below.
type ec2Faults struct {
	noCapacity   int // RunInstances calls refused with InsufficientInstanceCapacity
	hidePolls    int // DescribeInstances calls a new instance is unknown to
	failLaunches int // instances that go pending -> terminated by themselves
}

// InsufficientCapacity makes the next n RunInstances calls fail with InsufficientInstanceCapacity
// (HTTP 500, as EC2 answers it, which the SDK's retryer retries: n below 3 is survived by the
// SDK alone), naming the instance type and zone; nothing is created.
func (c *Cloud) InsufficientCapacity(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ec2Faults.noCapacity = n
}

// HideNewInstances makes every instance launched from now on unknown to its first n
// DescribeInstances calls (InvalidInstanceID.NotFound when named, left out of filtered
// listings), as EC2's eventual consistency does right after RunInstances.
func (c *Cloud) HideNewInstances(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ec2Faults.hidePolls = n
}

// FailLaunches makes the next n launched instances go from pending to terminated by themselves,
// with the state reason Server.InternalError, at their first DescribeInstances (or when their
// boot would have started).
func (c *Cloud) FailLaunches(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ec2Faults.failLaunches = n
}

// blockThrottle refuses a fraction of PutSnapshotBlock calls with ThrottlingException, drawn
// from a seeded generator: the same seed and the same order of calls give the same refusals.
type blockThrottle struct {
	fraction float64
	rnd      *rand.Rand
}

// ThrottleBlocks makes a fraction (0 to 1) of PutSnapshotBlock calls fail with
// ThrottlingException (HTTP 429), chosen by a generator seeded with seed; 0 turns it off.
func (c *Cloud) ThrottleBlocks(fraction float64, seed uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.throttle = blockThrottle{fraction: fraction, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// throttled draws whether this PutSnapshotBlock is refused; c.mu is held.
func (b *blockThrottle) throttled() bool {
	return b.fraction > 0 && b.rnd.Float64() < b.fraction
}
