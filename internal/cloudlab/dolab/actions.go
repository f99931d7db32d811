package dolab

// Actions, as the API reference documents them: GET /v2/actions/{id} answers
// {"action": {id, status, type, started_at, completed_at, resource_id, resource_type, region,
// region_slug}}, status "in-progress", then "completed" or "errored". An action of the fake
// completes once its work is done (a boot, a power off, an assignment) and it was read
// Options.ActionPolls times.

import (
	"net/http"
	"time"
)

type action struct {
	id           int
	typ          string
	resourceType string
	resourceID   int
	started      time.Time
	completed    time.Time
	polls        int
	done         bool // the work is done
	failed       bool // and it failed
}

// newAction records an action in progress; c.mu is held.
func (c *Cloud) newAction(typ, resourceType string, resourceID int) *action {
	a := &action{id: c.newID(), typ: typ, resourceType: resourceType, resourceID: resourceID, started: time.Now()}
	c.actions[a.id] = a
	return a
}

// finish marks a's work done; c.mu is held.
func (a *action) finish(failed bool) {
	a.done, a.failed = true, failed
}

func (c *Cloud) getAction(id int) answer {
	a := c.actions[id]
	if a == nil {
		return notFound()
	}
	if a.done && a.polls >= c.opts.ActionPolls && a.completed.IsZero() {
		a.completed = time.Now()
	}
	a.polls++
	return answer{http.StatusOK, map[string]any{"action": c.actionJSON(a)}}
}

func (c *Cloud) actionJSON(a *action) map[string]any {
	status := "in-progress"
	var completed any
	if !a.completed.IsZero() {
		status, completed = "completed", apiTime(a.completed)
		if a.failed {
			status = "errored"
		}
	}
	return map[string]any{"id": a.id, "status": status, "type": a.typ, "started_at": apiTime(a.started),
		"completed_at": completed, "resource_id": a.resourceID, "resource_type": a.resourceType,
		"region": map[string]any{"slug": c.opts.Region}, "region_slug": c.opts.Region}
}
