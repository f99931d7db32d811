package vultr

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/internal/vultrapi"
)

var (
	_ compute.VolumeLabeler  = (*Provider)(nil)
	_ compute.UserDataEditor = (*Provider)(nil)
)

// SetVolumeLabels implements compute.VolumeLabeler: the block's label is written again with the
// same name and token and the new labels (one PATCH: all or nothing).
func (p *Provider) SetVolumeLabels(ctx context.Context, id string, labels map[string]string) (compute.Volume, error) {
	for k := range labels {
		if k == "" {
			return compute.Volume{}, fmt.Errorf("vultr: labels of block storage %s: empty label name", id)
		}
	}
	unlock, err := p.volumes.Lock(ctx, id)
	if err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: %w", err)
	}
	defer unlock()
	b, err := p.block(ctx, id)
	if err != nil {
		return compute.Volume{}, err
	}
	l := parseBlockLabel(b.Label)
	if !l.ours {
		return compute.Volume{}, fmt.Errorf("vultr: block storage %s was not made by drover (its label %q has no drover part): %w", id, b.Label, compute.ErrNotFound)
	}
	if maps.Equal(l.labels, labels) {
		return volumeOf(*b), nil
	}
	if err := p.c.BlockStorage.Update(ctx, id, &govultr.BlockStorageUpdate{Label: blockLabel(l.name, l.token, labels)}); err != nil {
		return compute.Volume{}, fmt.Errorf("vultr: relabelling block storage %s: %w", id, vultrapi.CtxErr(ctx, err))
	}
	if b, err = p.block(ctx, id); err != nil {
		return compute.Volume{}, err
	}
	return volumeOf(*b), nil
}

// EditUserData implements compute.UserDataEditor with GET .../user-data and an instance update,
// refused unless Vultr reports the instance's power stopped (ErrInstanceRunning): a running one
// would read the old user-data until its next boot. The update carries the instance's tags as
// they are, so that they are never cleared.
func (p *Provider) EditUserData(ctx context.Context, instance string, edit func([]byte) ([]byte, error)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vultr: %w", err)
	}
	v, _, err := p.c.Instance.Get(ctx, instance)
	if vultrapi.Status(err) == 404 {
		return fmt.Errorf("vultr: instance %q: %w", instance, compute.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("vultr: reading instance %s: %w", instance, vultrapi.CtxErr(ctx, err))
	}
	if v.PowerStatus != "stopped" {
		return fmt.Errorf("vultr: user-data of %s: its power is %s: %w (stop it first)", instance, v.PowerStatus, compute.ErrInstanceRunning)
	}
	ud, _, err := p.c.Instance.GetUserData(ctx, instance)
	if err != nil {
		return fmt.Errorf("vultr: reading the user-data of %s: %w", instance, vultrapi.CtxErr(ctx, err))
	}
	var old []byte
	if ud != nil && ud.Data != "" {
		if old, err = base64.StdEncoding.DecodeString(ud.Data); err != nil {
			return fmt.Errorf("vultr: the user-data of %s is not base64: %w", instance, err)
		}
	}
	b, err := edit(old)
	if err != nil {
		return fmt.Errorf("vultr: user-data of %s: %w", instance, err)
	}
	if _, _, err := p.c.Instance.Update(ctx, instance, &govultr.InstanceUpdateReq{Tags: v.Tags, UserData: base64.StdEncoding.EncodeToString(b)}); err != nil {
		return fmt.Errorf("vultr: writing the user-data of %s: %w", instance, vultrapi.CtxErr(ctx, err))
	}
	return nil
}
