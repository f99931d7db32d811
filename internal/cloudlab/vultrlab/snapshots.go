package vultrlab

// Snapshots made from a URL (POST /v2/snapshots/create-from-url {url, description, uefi}): the
// fake answers at once with a pending snapshot, downloads the URL with a plain GET in the
// background into a file of its own, and marks the snapshot complete with the raw size, or, when
// the download fails (or FailSnapshots asked), deletes it, as Vultr drops a snapshot it could not
// make: the client sees it vanish and reads the reason from FailedSnapshots in tests. Instances
// launch only from a complete snapshot. Snapshots of instances (POST /v2/snapshots) are left out.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Snapshot is what the fake knows of one snapshot, for tests.
type Snapshot struct {
	ID, Description, URL, Status string
	UEFI                         bool
	Size                         int64
	Path                         string // the downloaded bytes, once complete
	Created                      time.Time
}

type snapshot struct {
	Snapshot
}

// Snapshots returns the snapshots the fake holds, oldest first.
func (c *Cloud) Snapshots() []Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Snapshot
	for _, s := range c.sortedSnapshots() {
		out = append(out, s.Snapshot)
	}
	return out
}

func (c *Cloud) sortedSnapshots() []*snapshot {
	out := make([]*snapshot, 0, len(c.snapshots))
	for _, s := range c.snapshots {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// FailSnapshots makes the next len(reasons) snapshot downloads fail with the given reasons.
func (c *Cloud) FailSnapshots(reasons ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failSnaps = append(c.failSnaps, reasons...)
}

// FailedSnapshots returns why each snapshot that failed did, by ID.
func (c *Cloud) FailedSnapshots() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for k, v := range c.failedSnaps {
		out[k] = v
	}
	return out
}

type snapshotJSON struct {
	ID             string `json:"id"`
	DateCreated    string `json:"date_created"`
	Description    string `json:"description"`
	Size           int64  `json:"size"`
	CompressedSize int64  `json:"compressed_size"`
	Status         string `json:"status"`
	OsID           int    `json:"os_id"`
	AppID          int    `json:"app_id"`
}

func (s *snapshot) json() snapshotJSON {
	return snapshotJSON{ID: s.ID, DateCreated: vultrTime(s.Created), Description: s.Description,
		Size: s.Size, CompressedSize: s.Size, Status: s.Status, OsID: 180}
}

func (c *Cloud) createSnapshotFromURL(r *http.Request) (int, any) {
	var req struct {
		URL         string `json:"url"`
		Description string `json:"description"`
		UEFI        *bool  `json:"uefi"`
	}
	if s, b, ok := decode(r, &req); !ok {
		return s, b
	}
	if !strings.HasPrefix(req.URL, "http://") && !strings.HasPrefix(req.URL, "https://") {
		return errorf(http.StatusBadRequest, "Invalid url %q.", req.URL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &snapshot{Snapshot{ID: newID(), Description: req.Description, URL: req.URL, Status: "pending",
		UEFI: req.UEFI != nil && *req.UEFI, Created: time.Now().Truncate(time.Second)}}
	c.snapshots[s.ID] = s
	var fail string
	if len(c.failSnaps) > 0 {
		fail, c.failSnaps = c.failSnaps[0], c.failSnaps[1:]
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.download(s.ID, req.URL, fail) }()
	return http.StatusAccepted, map[string]any{"snapshot": s.json()}
}

// download fetches url into the snapshot id's file and completes it, or drops it with a reason.
func (c *Cloud) download(id, url, fail string) {
	path := filepath.Join(c.opts.Dir, "snapshot-"+id+".raw")
	size, err := fetch(c, url, path)
	if err == nil && fail != "" {
		err = fmt.Errorf("%s", fail)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.snapshots[id]
	if err != nil || !ok {
		os.Remove(path)
		if err != nil {
			if c.failedSnaps == nil {
				c.failedSnaps = map[string]string{}
			}
			c.failedSnaps[id] = err.Error()
		}
		delete(c.snapshots, id)
		return
	}
	s.Status, s.Size, s.Path = "complete", size, path
}

func fetch(c *Cloud, url, path string) (int64, error) {
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("downloading %s: HTTP %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := copySparse(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func (c *Cloud) listSnapshots(r *http.Request) (int, any) {
	desc := r.URL.Query().Get("description")
	c.mu.Lock()
	defer c.mu.Unlock()
	var match []*snapshot
	for _, s := range c.sortedSnapshots() {
		if desc == "" || s.Description == desc {
			match = append(match, s)
		}
	}
	from, to, m, ok := page(r, len(match))
	if !ok {
		return errorf(http.StatusBadRequest, "Invalid per_page or cursor.")
	}
	out := []snapshotJSON{}
	for _, s := range match[from:to] {
		out = append(out, s.json())
	}
	return http.StatusOK, map[string]any{"snapshots": out, "meta": m}
}

func (c *Cloud) getSnapshot(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.snapshots[r.PathValue("id")]
	if !ok {
		return errorf(http.StatusNotFound, "Invalid snapshot ID.")
	}
	return http.StatusOK, map[string]any{"snapshot": s.json()}
}

func (c *Cloud) deleteSnapshot(r *http.Request) (int, any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.snapshots[r.PathValue("id")]
	if !ok {
		return errorf(http.StatusNotFound, "Invalid snapshot ID.")
	}
	delete(c.snapshots, s.ID)
	if s.Path != "" {
		os.Remove(s.Path)
	}
	return http.StatusNoContent, nil
}

// AddSnapshot puts a complete snapshot of data in the fake, as if made earlier, and returns its
// ID: tests that launch instances need one without publishing.
func (c *Cloud) AddSnapshot(t testing.TB, description string, data []byte) string {
	t.Helper()
	s := &snapshot{Snapshot{ID: newID(), Description: description, Status: "complete", Size: int64(len(data)), Created: time.Now().Truncate(time.Second)}}
	s.Path = filepath.Join(c.opts.Dir, "snapshot-"+s.ID+".raw")
	if err := os.WriteFile(s.Path, data, 0o644); err != nil {
		t.Fatalf("vultrlab: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshots[s.ID] = s
	return s.ID
}
