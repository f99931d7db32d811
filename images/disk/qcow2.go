package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Qcow2Option changes how ToQcow2 converts.
type Qcow2Option func(*qcow2Options)

type qcow2Options struct{ compress bool }

// Compressed zlib-compresses the qcow2 clusters: a smaller file to store
// and upload, read a little slower. qemu still writes new data
// uncompressed.
func Compressed() Qcow2Option { return func(o *qcow2Options) { o.compress = true } }

// ToQcow2 converts the raw disk at raw to a qcow2 image at out with
// qemu-img. The output appears only when complete.
func ToQcow2(ctx context.Context, raw, out string, opts ...Qcow2Option) error {
	var o qcow2Options
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkTools([]Tool{{"qemu-img", "qemu-utils"}}); err != nil {
		return err
	}
	tmp, err := tempName(out)
	if err != nil {
		return err
	}
	args := []string{"qemu-img", "convert", "-f", "raw", "-O", "qcow2"}
	if o.compress {
		args = append(args, "-c")
	}
	if _, err := run(ctx, command{step: "qcow2", args: append(args, raw, tmp)}); err != nil {
		os.Remove(tmp)
		return err
	}
	// CreateTemp made it 0600; an image is not a secret.
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("disk: qcow2: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("disk: qcow2: %w", err)
	}
	return nil
}

// tempName reserves a hidden name next to out, on the same filesystem so
// the final rename is atomic.
func tempName(out string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("disk: %w", err)
	}
	name := f.Name()
	f.Close()
	return name, nil
}
