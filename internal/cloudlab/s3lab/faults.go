package s3lab

import (
	"net/http"
	"net/http/httptest"
	"time"
)

// Fault is an answer the lab gives instead of serving a request, after its signature is checked
// (so it is counted) and before gofakes3 sees it (so it has no effect). Faults apply in the order
// they were queued.
//
// What aws-sdk-go-v2's standard retryer makes of them: it retries 500, 502, 503 and 504, the
// throttle codes (SlowDown among them) and broken connections, up to its attempt limit (3 by
// default) when the body can be rewound; other answers are final.
type Fault struct {
	// Op is the operation, as Count names it ("UploadPart"); empty matches every operation.
	Op string
	// After lets this many matching requests through before the fault applies.
	After int
	// Times is how many requests get the fault: 0 means 1, -1 means every matching one from now on.
	Times int
	// Status, Code and Message make the error answer; Status defaults to 503, and Code to
	// SlowDown when nothing else (Cut, Lost, Delay) is asked for.
	Status        int
	Code, Message string
	// Delay holds the request this long (or until the client gives up) first; with no Code, Cut
	// or Lost, it is then served: a slow answer.
	Delay time.Duration
	// Cut drops the connection without an answer instead, as a network failure would.
	Cut bool
	// Lost serves the request, then drops the connection before the answer: it took effect but
	// the client cannot tell (Status and Code are not used).
	Lost bool
}

// SlowDown is S3's throttling answer.
var SlowDown = Fault{Status: http.StatusServiceUnavailable, Code: "SlowDown", Message: "Please reduce your request rate."}

// InternalError is S3's 500.
var InternalError = Fault{Status: http.StatusInternalServerError, Code: "InternalError", Message: "We encountered an internal error. Please try again."}

type queuedFault struct {
	f            Fault
	skip, remain int
}

// Fail queues f.
func (l *Lab) Fail(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	if f.Status == 0 {
		f.Status = http.StatusServiceUnavailable
	}
	if f.Code == "" && !f.Cut && !f.Lost && f.Delay == 0 {
		f.Code = "SlowDown"
		if f.Message == "" {
			f.Message = "Please reduce your request rate."
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, &queuedFault{f: f, skip: f.After, remain: f.Times})
}

// ClearFaults drops every queued fault.
func (l *Lab) ClearFaults() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = nil
}

// nextFault returns the fault that applies to a request of op, if any; l.mu is held.
func (l *Lab) nextFault(op string) (Fault, bool) {
	for i, q := range l.faults {
		if q.f.Op != "" && q.f.Op != op {
			continue
		}
		if q.skip > 0 {
			q.skip--
			continue
		}
		if q.remain > 0 {
			q.remain--
			if q.remain == 0 {
				l.faults = append(l.faults[:i:i], l.faults[i+1:]...)
			}
		}
		return q.f, true
	}
	return Fault{}, false
}

// applyFault answers r with f, after f.Delay: an S3 error document, a dropped connection (after
// serving r when f.Lost), or r served when f has no Code.
func (l *Lab) applyFault(w http.ResponseWriter, r *http.Request, op string, body []byte, f Fault) {
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.Lost {
		l.forward(httptest.NewRecorder(), r, op, body)
		f.Cut = true
	}
	if f.Cut {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // the server drops the connection
	}
	if f.Code == "" {
		l.forward(w, r, op, body)
		return
	}
	writeError(w, f.Status, f.Code, f.Message)
}
