package awslab

// EC2's CreateSnapshot of a volume, and the data files behind volumes: a volume's data is a
// sparse raw file; a snapshot of it copies the volume's written 512 KiB blocks into a snapshot
// block file (the format the EBS direct APIs write), and a volume restored from a snapshot gets
// those blocks back. Holes stay holes, so a mostly empty volume costs little disk and time.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"
)

func (c *Cloud) createSnapshot(f url.Values) (any, *ec2Error) {
	id := f.Get("VolumeId")
	if id == "" {
		return nil, missing("VolumeId")
	}
	specs, e := tagSpecs(f, "snapshot")
	if e != nil {
		return nil, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.volumes[id]
	if v == nil || v.gone {
		return nil, volumeNotFound(id)
	}
	if v.State != "available" && v.State != "in-use" {
		return nil, &ec2Error{http.StatusBadRequest, "IncorrectState", "The volume '" + id + "' is '" + v.State + "'"}
	}
	s := &snapshot{id: newID("snap"), description: f.Get("Description"), volumeID: id, state: "pending",
		volumeSize: v.SizeGiB, tags: specs["snapshot"], started: time.Now().UTC(), sealed: true,
		pendingPolls: c.opts.SnapshotPendingPolls, sums: map[int32][sha256.Size]byte{}}
	if s.tags == nil {
		s.tags = map[string]string{}
	}
	if s.pendingPolls <= 0 {
		s.state = "completed"
	}
	file, err := os.Create(c.opts.Dir + "/" + s.id + ".blocks")
	if err != nil {
		return nil, &ec2Error{http.StatusInternalServerError, "InternalError", err.Error()}
	}
	s.file = file
	if err := copyBlocks(file, v.Path, v.SizeGiB*gib, func(i int32, b []byte) { s.sums[i] = sha256.Sum256(b) }); err != nil {
		file.Close()
		_ = removeFile(file.Name())
		return nil, &ec2Error{http.StatusInternalServerError, "InternalError", "copying " + id + ": " + err.Error()}
	}
	c.snapshots[s.id] = s
	return c.snapshotXML(s, "0%"), nil
}

// snapshotXML is s as DescribeSnapshots and CreateSnapshot answer it.
func (c *Cloud) snapshotXML(s *snapshot, progress string) snapshotXML {
	vol := s.volumeID
	if vol == "" {
		vol = "vol-ffffffff" // what EC2 shows for a snapshot not taken of a volume
	}
	return snapshotXML{SnapshotID: s.id, VolumeID: vol, Status: s.state, StartTime: ec2Time(s.started),
		Progress: progress, OwnerID: c.opts.Account, VolumeSize: s.volumeSize, Description: s.description,
		StorageTier: "standard", TagSet: tagItems(s.tags)}
}

// volumeData makes v's data file: blank, or holding src's blocks; c.mu is held.
func (c *Cloud) volumeData(v *volume, src *snapshot) error {
	if src == nil {
		f, err := os.OpenFile(v.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if err := f.Truncate(v.SizeGiB * gib); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	f, err := os.Open(src.file.Name())
	if err != nil {
		return err
	}
	return assembleDisk(v.Path, f, sortedKeys(src.sums), v.SizeGiB*gib)
}

// seekData and seekHole are lseek's SEEK_DATA and SEEK_HOLE (Linux).
const (
	seekData = 3
	seekHole = 4
)

// copyBlocks copies the 512 KiB blocks of path that hold data and are not all zeros into dst at
// their offsets, calling each with the block index and data. It skips the file's holes.
func copyBlocks(dst *os.File, path string, size int64, each func(int32, []byte)) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := dst.Truncate(size); err != nil {
		return err
	}
	buf := make([]byte, BlockSize)
	zero := make([]byte, BlockSize)
	for off := int64(0); off < size; {
		data, err := src.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return nil // no data after off
		}
		if err != nil {
			return err
		}
		hole, err := src.Seek(data, seekHole)
		if err != nil {
			return err
		}
		for b := data / BlockSize * BlockSize; b < hole && b < size; b += BlockSize {
			n, err := src.ReadAt(buf, b)
			if err != nil && err != io.EOF {
				return err
			}
			clear(buf[n:])
			if bytes.Equal(buf, zero) {
				continue
			}
			if _, err := dst.WriteAt(buf, b); err != nil {
				return err
			}
			each(int32(b/BlockSize), buf)
		}
		off = (hole + BlockSize - 1) / BlockSize * BlockSize
	}
	return nil
}
