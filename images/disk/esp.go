package disk

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"
)

// minESPSize keeps the ESP FAT32, which the UEFI specification asks for
// and some firmware insists on: FAT32 needs at least 65525 clusters, and
// 64 MiB leaves a margin above that with 512-byte clusters.
const minESPSize = 64 * mib

// espSize fits the files with an eighth spare and 8 MiB for FAT tables
// and directories, rounded up to a whole MiB.
func espSize(content int64) int64 {
	return max(minESPSize, roundUp(content+content/8+8*mib, mib))
}

// espFile is a file to copy onto the ESP.
type espFile struct {
	src string // on the host
	dst string // on the ESP, without a leading slash
}

// espSpec is what makeESP needs.
type espSpec struct {
	image    string
	size     int64
	serial   string // FAT volume ID, 8 hex digits
	startLBA int64  // where the ESP starts on the disk
	epoch    time.Time
	files    []espFile
	syslinux bool // install syslinux for BIOS boot
}

// makeESP builds the FAT32 ESP as a plain file: mkfs.vfat, then syslinux
// if wanted (it must come first, while ldlinux.sys can still go anywhere),
// then the files through mtools. --invariant plus a fixed volume ID and
// SOURCE_DATE_EPOCH make it the same on every run.
func makeESP(ctx context.Context, s espSpec) error {
	if err := createSized(s.image, s.size); err != nil {
		return err
	}
	_, err := run(ctx, command{
		step: "esp filesystem",
		args: []string{"mkfs.vfat", "--invariant", "-F", "32", "-n", "ESP",
			"-i", s.serial, "-h", fmt.Sprint(s.startLBA), s.image},
	})
	if err != nil {
		return err
	}
	env := mtoolsEnv(s.epoch)
	if s.syslinux {
		if err := installSyslinux(ctx, s.image, env); err != nil {
			return err
		}
	}
	return copyToESP(ctx, s, env)
}

// copyToESP creates the directories the files need, in order, then copies
// the files in the order given, so FAT directory entries and clusters are
// laid out the same every time.
func copyToESP(ctx context.Context, s espSpec, env []string) error {
	image := s.image
	made := map[string]bool{".": true, syslinuxDir: s.syslinux} // installSyslinux made it
	for _, f := range s.files {
		for _, dir := range parentDirs(path.Dir(f.dst)) {
			if made[dir] {
				continue
			}
			if err := mtools(ctx, "esp files", env, "mmd", "-i", image, "::/"+dir); err != nil {
				return err
			}
			made[dir] = true
		}
		if err := mtools(ctx, "esp files", env, "mcopy", "-i", image, f.src, "::/"+f.dst); err != nil {
			return err
		}
	}
	return nil
}

// parentDirs lists dir and its parents, outermost first: a/b/c gives a,
// a/b, a/b/c.
func parentDirs(dir string) []string {
	if dir == "." || dir == "/" || dir == "" {
		return nil
	}
	return append(parentDirs(path.Dir(dir)), dir)
}

// mtoolsEnv makes mtools accept an image that is not a floppy
// (MTOOLS_SKIP_CHECK), stamp files and directories with the epoch
// (SOURCE_DATE_EPOCH) and write FAT's local times as UTC (TZ).
func mtoolsEnv(epoch time.Time) []string {
	return []string{"MTOOLS_SKIP_CHECK=1", "SOURCE_DATE_EPOCH=" + unixString(epoch), "TZ=UTC"}
}

func mtools(ctx context.Context, step string, env []string, args ...string) error {
	_, err := run(ctx, command{step: step, args: args, env: env})
	return err
}

// writeTextFile writes content into workDir under name and returns its path,
// for config files that go onto the ESP.
func writeTextFile(workDir, name, content string) (string, error) {
	p := filepath.Join(workDir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("disk: %w", err)
	}
	return p, nil
}
