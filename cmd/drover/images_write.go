package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/images"
)

// writeChunk is the unit of writing and of progress.
const writeChunk = 4 << 20

func imagesWriteCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "write",
		Usage:     "write an image's SD card (or raw disk) to a card, USB stick or file, then read it back and verify it",
		ArgsUsage: "IMAGE DEVICE_OR_FILE",
		Description: `Writes the image's card (the "rpi" builder's SD card; a raw disk otherwise) to a block device
such as /dev/sdb or /dev/mmcblk0, or to a file, shows progress on stderr, then reads back what it
wrote and checks its sha256 against the manifest's.

A device is refused when it is a partition, is smaller than the image, holds the running system,
has a mounted, swapped-on or held partition, or is not removable media; --force writes a device
that is not removable (a card reader the kernel calls fixed), and nothing else.`,
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "force", Usage: "write a block device the kernel does not call removable"}},
		Action: func(c *cli.Context) error { return a.imagesWrite(c) },
	}
}

// writeReport is what images write tells, as prose or --output json.
type writeReport struct {
	Image    string  `json:"image"`
	Format   string  `json:"format"`
	Target   string  `json:"target"`
	Device   string  `json:"device,omitempty"` // the sysfs name, for a block device
	Bytes    int64   `json:"bytes"`
	SHA256   string  `json:"sha256"`
	Verified bool    `json:"verified"`
	Seconds  float64 `json:"seconds"`
}

func (a *app) imagesWrite(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageError("images write takes an image and a device or file", "drover images write pi /dev/sdb")
	}
	cat, m, err := a.resolveImage(c, c.Args().Get(0))
	if err != nil {
		return err
	}
	name := m.Role + "@" + m.ShortID()
	art := m.Artifact(images.CardFormat)
	if art == nil {
		art = m.Artifact("raw")
	}
	if art == nil {
		return failed(fmt.Errorf("image %s has no SD card or raw disk to write", name), "rebuild it with its raw format: drover build --force "+m.Role)
	}
	src := filepath.Join(cat.ImageDir(m.Identity), art.File)
	if !fileExists(src) {
		return failed(fmt.Errorf("image %s: its %s file %s is missing", name, art.Format, src), "rebuild it: drover build --force "+m.Role)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	target := c.Args().Get(1)
	rep := writeReport{Image: name, Format: art.Format, Target: target, Bytes: art.Length, SHA256: art.SHA256}
	start := time.Now()
	dev, err := writeImage(ctx, realHostBlock(), src, target, art.Length, art.SHA256, c.Bool("force"), a.stderr)
	rep.Device = dev
	if errors.Is(err, errNotRemovable) {
		return failed(err, "check that "+target+" is the card (lsblk shows the disks), then add --force")
	}
	if err != nil {
		return failed(err, "lsblk shows the disks and where they are mounted; a file path writes an image file instead")
	}
	rep.Verified, rep.Seconds = true, time.Since(start).Seconds()
	if a.json() {
		writeJSON(a.stdout, rep)
		return nil
	}
	fmt.Fprintf(a.stdout, "wrote %s (%s, %s) to %s in %s and read it back: sha256 %s matches\n",
		name, art.Format, images.HumanBytes(art.Length), target, time.Duration(rep.Seconds*float64(time.Second)).Round(time.Second), art.SHA256)
	return nil
}

// writeImage copies src (length bytes, sha256 want) to target, a block device or a file (created
// or truncated), and reads it back to check the sha256. A device passes host's checks first and is
// opened exclusively (the kernel refuses that while anything mounts it). It returns the device's
// sysfs name, "" for a file. A failure or cancellation part way leaves target partly written; a
// card so left does not boot and is written again.
func writeImage(ctx context.Context, host hostBlock, src, target string, length int64, want string, force bool, progress io.Writer) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	var devName string
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		d, err := host.checkTarget(target, fi.Sys().(*syscall.Stat_t).Rdev, length, force)
		if err != nil {
			return d.name, err
		}
		devName, flags = d.name, os.O_WRONLY|syscall.O_EXCL
	case err == nil && !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s is neither a block device nor a regular file", target)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", err
	case err != nil && strings.HasPrefix(filepath.Clean(target)+"/", "/dev/"):
		// A file is never made in /dev: the card named is not there (unplugged, or another name).
		return "", fmt.Errorf("%s does not exist: no such device (lsblk lists the disks there are)", target)
	}
	out, err := os.OpenFile(target, flags, 0o644)
	if err != nil {
		return devName, fmt.Errorf("opening %s: %w", target, err)
	}
	defer out.Close()
	if err := copyWithProgress(ctx, out, in, length, devName == "", progress); err != nil {
		return devName, fmt.Errorf("writing %s: %w", target, err)
	}
	if err := out.Sync(); err != nil {
		return devName, fmt.Errorf("writing %s: %w", target, err)
	}
	if devName != "" {
		if err := dropCache(out); err != nil {
			return devName, err
		}
	}
	if err := out.Close(); err != nil {
		return devName, fmt.Errorf("writing %s: %w", target, err)
	}
	fmt.Fprintf(progress, "drover: reading %s back\n", target)
	got, err := readBackSHA256(ctx, target, length)
	if err != nil {
		return devName, err
	}
	if got != want {
		return devName, fmt.Errorf("%s reads back with sha256 %s, the image has %s: the write did not stick (a failing card?)", target, got, want)
	}
	return devName, nil
}

// copyWithProgress copies length bytes, printing progress about once a second. Into a fresh file
// (sparse) all-zero chunks are skipped; a device gets every byte, so nothing old survives.
func copyWithProgress(ctx context.Context, out *os.File, in io.Reader, length int64, sparse bool, progress io.Writer) error {
	buf, zero := make([]byte, writeChunk), make([]byte, writeChunk)
	start, last := time.Now(), time.Now()
	var done int64
	for done < length {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(in, buf[:min(int64(len(buf)), length-done)])
		if n > 0 {
			if !sparse || !bytes.Equal(buf[:n], zero[:n]) {
				if _, err := out.WriteAt(buf[:n], done); err != nil {
					return err
				}
			}
			done += int64(n)
		}
		if err != nil {
			return fmt.Errorf("the image ends at %d bytes of %d: %w", done, length, err)
		}
		if time.Since(last) >= time.Second || done == length {
			last = time.Now()
			rate := float64(done) / max(time.Since(start).Seconds(), 0.001)
			fmt.Fprintf(progress, "drover: wrote %s of %s (%d%%, %s/s)\n", images.HumanBytes(done), images.HumanBytes(length), done*100/max(length, 1), images.HumanBytes(int64(rate)))
		}
	}
	if sparse {
		return out.Truncate(length)
	}
	return nil
}

// readBackSHA256 is the sha256 of target's first length bytes.
func readBackSHA256(ctx context.Context, target string, length int64) (string, error) {
	f, err := os.Open(target)
	if err != nil {
		return "", fmt.Errorf("reading %s back: %w", target, err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, writeChunk)
	for done := int64(0); done < length; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), length-done)])
		h.Write(buf[:n])
		done += int64(n)
		if err != nil {
			return "", fmt.Errorf("reading %s back: %d bytes of %d: %w", target, done, length, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
