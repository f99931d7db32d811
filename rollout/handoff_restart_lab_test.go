package rollout_test

import (
	"context"
	"fmt"
	"os"
)

// Start boots a stopped lab instance again the way qemu does: its console starts over (qemu
// truncates the serial log), and drover-boot runs again with the user-data the instance has now.
func (c *labCompute) Start(ctx context.Context, id string) error {
	if err := c.Provider.Start(ctx, id); err != nil {
		return err
	}
	c.lab.mu.Lock()
	b := c.lab.backends[id]
	c.lab.mu.Unlock()
	if b == nil {
		return nil
	}
	if err := os.WriteFile(b.console, fmt.Appendf(nil, "[    0.000000] Linux version 6.1.0-drover (started again: %s)\n", id), 0o644); err != nil {
		return err
	}
	return c.lab.waitForVolumes(id, c.Provider.UserData(id))
}
