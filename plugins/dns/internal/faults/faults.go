// Package faults is the queue of injected error answers that the dns API fakes (cffake, r53fake)
// share: each fake has its own Fault type, what to answer, and queues it with a Match, which
// requests get it.
package faults

import (
	"slices"
	"strings"
)

// Match says which requests a fault answers, and how many.
type Match struct {
	// Times is how many requests get the fault; -1 (or 0) means every request from now on.
	Times int
	// Method and Path, when not empty, restrict the fault to matching requests (Path is a suffix
	// of the URL path).
	Method, Path string
}

// Queue holds faults in the order they were queued; the zero value is empty. It is not safe for
// concurrent use: the fakes call it with their lock held.
type Queue[F any] struct {
	entries []entry[F]
}

type entry[F any] struct {
	fault F
	match Match
}

// Add queues f for the requests m matches.
func (q *Queue[F]) Add(f F, m Match) {
	q.entries = append(q.entries, entry[F]{f, m})
}

// Next returns the first queued fault whose Match takes a request with method and path, and
// counts the request against its Times: a fault whose Times runs out leaves the queue.
func (q *Queue[F]) Next(method, path string) (F, bool) {
	for i, e := range q.entries {
		m := &q.entries[i].match
		if (m.Method != "" && m.Method != method) || (m.Path != "" && !strings.HasSuffix(path, m.Path)) {
			continue
		}
		if m.Times > 0 {
			m.Times--
			if m.Times == 0 {
				q.entries = slices.Delete(q.entries, i, i+1)
			}
		}
		return e.fault, true
	}
	var zero F
	return zero, false
}
