package vultrlab_test

import (
	"strings"
	"testing"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
)

// TestBlockStorageLifecycle drives the fake's block storage through govultr as the API reference
// describes it: pending then active, attach shown after the pending reads, one holder at a time,
// no delete while attached, detached when its instance is destroyed, pages by cursor.
func TestBlockStorageLifecycle(t *testing.T) {
	c := vultrlab.New(t, vultrlab.Options{PendingPolls: 1})
	g := client(t, c, c.APIKey())
	ctx := t.Context()
	snap := c.AddSnapshot(t, "d", []byte("x"))
	var ins []string
	for range 2 {
		in, _, err := g.Instance.Create(ctx, &govultr.InstanceCreateReq{Region: c.Region(), Plan: "vc2-1c-1gb", SnapshotID: snap})
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in.ID)
	}
	if _, _, err := g.BlockStorage.Create(ctx, &govultr.BlockStorageCreate{Region: "nowhere", SizeGB: 1}); err == nil {
		t.Fatal("a block in another region was created")
	}
	b, _, err := g.BlockStorage.Create(ctx, &govultr.BlockStorageCreate{Region: c.Region(), SizeGB: 10, Label: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != "pending" || b.SizeGB != 10 || b.Label != "data" || !strings.HasPrefix(b.MountID, c.Region()+"-") {
		t.Fatalf("created block %+v", b)
	}
	if err := g.BlockStorage.Attach(ctx, b.ID, &govultr.BlockStorageAttach{InstanceID: ins[0]}); err == nil {
		t.Fatal("a pending block was attached")
	}
	if got, _, _ := g.BlockStorage.Get(ctx, b.ID); got.Status != "pending" {
		t.Fatalf("first read: %s, want pending", got.Status)
	}
	if got, _, _ := g.BlockStorage.Get(ctx, b.ID); got.Status != "active" {
		t.Fatalf("second read: %s, want active", got.Status)
	}
	if err := g.BlockStorage.Attach(ctx, b.ID, &govultr.BlockStorageAttach{InstanceID: ins[0]}); err != nil {
		t.Fatal(err)
	}
	if err := g.BlockStorage.Attach(ctx, b.ID, &govultr.BlockStorageAttach{InstanceID: ins[1]}); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Fatalf("attach to a second instance: %v, want already attached", err)
	}
	if got, _, _ := g.BlockStorage.Get(ctx, b.ID); got.AttachedToInstance != "" {
		t.Fatalf("the attach shows at once (%q), want after the pending read", got.AttachedToInstance)
	}
	if got, _, _ := g.BlockStorage.Get(ctx, b.ID); got.AttachedToInstance != ins[0] {
		t.Fatalf("attached_to_instance %q, want %s", got.AttachedToInstance, ins[0])
	}
	if err := g.BlockStorage.Delete(ctx, b.ID); err == nil {
		t.Fatal("an attached block was deleted")
	}
	if err := g.Instance.Delete(ctx, ins[0]); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := g.BlockStorage.Get(ctx, b.ID); got.AttachedToInstance != "" || c.BlockHolder(b.ID) != "" {
		t.Fatalf("the block is on %q after its instance was destroyed", got.AttachedToInstance)
	}
	if err := g.BlockStorage.Detach(ctx, b.ID, &govultr.BlockStorageDetach{}); err == nil {
		t.Fatal("a detached block was detached")
	}

	c.WriteBlock(b.ID, []byte("hello"))
	s, _, err := g.BlockStorage.CreateSnapshot(ctx, &govultr.BlockStorageSnapshotReq{BlockID: b.ID, Description: "snap"})
	if err != nil || s.BlockID != b.ID || s.Size != 10 || s.State != "COMPLETE" {
		t.Fatalf("CreateSnapshot = %+v, %v", s, err)
	}
	if _, _, err := g.BlockStorage.Create(ctx, &govultr.BlockStorageCreate{Region: c.Region(), SizeGB: 9, SnapshotID: s.ID}); err == nil {
		t.Fatal("a block smaller than its snapshot was created")
	}
	r, _, err := g.BlockStorage.Create(ctx, &govultr.BlockStorageCreate{Region: c.Region(), SizeGB: 10, SnapshotID: s.ID})
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := c.ReadBlock(r.ID, 5); string(data) != "hello" {
		t.Fatalf("restored block holds %q", data)
	}
	if err := g.BlockStorage.DeleteSnapshot(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.BlockStorage.GetSnapshot(ctx, s.ID); err == nil {
		t.Fatal("a deleted snapshot is found")
	}

	for range 3 {
		if _, _, err := g.BlockStorage.Create(ctx, &govultr.BlockStorageCreate{Region: c.Region(), SizeGB: 1}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	opts := &govultr.ListOptions{PerPage: 2}
	for pages := 0; ; pages++ {
		page, meta, _, err := g.BlockStorage.List(ctx, opts)
		if err != nil || pages > 5 {
			t.Fatalf("List: %v after %d pages", err, pages)
		}
		for _, x := range page {
			seen[x.ID] = true
		}
		if meta.Links.Next == "" {
			break
		}
		opts.Cursor = meta.Links.Next
	}
	if len(seen) != 5 {
		t.Fatalf("the pages held %d blocks, want 5", len(seen))
	}
	if err := g.BlockStorage.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.BlockStorage.Get(ctx, b.ID); err == nil || !strings.Contains(err.Error(), "404") && !strings.Contains(err.Error(), "Invalid block") {
		t.Fatalf("a deleted block: %v, want not found", err)
	}
}
