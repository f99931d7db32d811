package compute

import (
	"context"
	"fmt"
	"time"
)

// Publisher is implemented by providers that boot their own copy of an image
// rather than a local disk file: a cloud registers an AMI from an EBS
// snapshot, or imports a custom image from a URL. A provider that boots the
// catalog's file directly (the lab's qemu) does not implement it; its
// launches use Image.Path.
//
// A copy is known by the image's identity: the provider tags (or names, or
// describes) what it publishes with it, and finds it again by it, so
// nothing but the platform has to remember what was published. One provider
// value publishes in one region (its block's), and keeps at most one
// complete copy of an identity there.
//
// Implementations are safe for concurrent use, also across processes:
// concurrent Publish calls of one identity make one copy, and all of them
// return it. Every method honours ctx: a context done before the call has
// any effect makes it fail with an error wrapping ctx.Err() and change
// nothing.
type Publisher interface {
	// Publish makes a copy of src on the platform, and returns it once
	// instances can launch from it. It is idempotent by src.Identity: when a
	// complete copy is already there, Publish returns it and uploads
	// nothing (progress is then not called with any bytes).
	//
	// progress, when not nil, is called as the work advances, from one
	// goroutine at a time; it must not block for long.
	//
	// A Publish that fails or is killed part way may leave an incomplete
	// copy behind (a partial upload, a snapshot not completed, an object
	// not imported), carrying the identity. Published never reports it, and
	// it is the provider's to finish: the next Publish of the identity
	// resumes it, or deletes it and starts over (each provider's doc says
	// which), and Unpublish deletes it. A failed Publish therefore never
	// leaves two copies, nor one that Launch could use half made.
	Publish(ctx context.Context, src PublishSource, progress func(PublishProgress)) (PublishedImage, error)

	// Published looks up the complete copy of identity in the provider's
	// region: ok is false, with a nil error, when there is none. It asks
	// the platform, not a cache, so a copy deleted outside drover is not
	// reported.
	Published(ctx context.Context, identity string) (img PublishedImage, ok bool, err error)

	// Unpublish deletes the copy ref names and whatever an interrupted
	// Publish of ref.Identity left behind, with what the copy is made of
	// (an AMI and its snapshot; an image and its uploaded object). It
	// returns nil when they are already gone, so it is safe to retry. A ref
	// of another region than the provider's is refused with an error
	// naming both, unless the provider can reach that region. When it
	// fails part way, what is left still carries the identity, and a retry
	// deletes it. The caller makes sure no instance needs the copy any
	// more: deleting one that instances still boot from is the platform's
	// business (most keep running instances).
	Unpublish(ctx context.Context, ref PublishedImage) error
}

// PublishSource is a catalog image to publish: its raw disk file and what
// the platform needs to know about it.
type PublishSource struct {
	// Identity is the image's identity in the catalog ("sha256:HEX"), what a
	// copy is found by.
	Identity string
	// Role is the role the image was built for, for names and tags people
	// read; it plays no part in finding the copy.
	Role string
	// Arch is the image's architecture, "amd64" or "arm64".
	Arch string
	// Path is the raw disk file (not qcow2): what the platform boots,
	// block for block.
	Path string
	// Size is the raw disk's length in bytes; a file of another length is
	// refused, so a truncated disk is never published.
	Size int64
	// SHA256 is the hex sha256 of the raw disk, when known; a provider
	// that checksums what it uploads (EBS direct APIs) compares with it.
	SHA256 string
}

// Validate checks what every provider requires of a PublishSource.
func (s PublishSource) Validate() error {
	switch {
	case s.Identity == "":
		return fmt.Errorf("compute: publish: empty image identity")
	case s.Arch != "amd64" && s.Arch != "arm64":
		return fmt.Errorf("compute: publish %s: architecture %q is not amd64 or arm64", s.Identity, s.Arch)
	case s.Path == "":
		return fmt.Errorf("compute: publish %s: no raw disk file", s.Identity)
	case s.Size <= 0:
		return fmt.Errorf("compute: publish %s: size %d: want the raw disk's length in bytes", s.Identity, s.Size)
	}
	return nil
}

// PublishProgress is how far a Publish is.
type PublishProgress struct {
	// Phase names what is happening: PhaseUpload while bytes are sent,
	// then what the platform does with them (PhaseImport, PhaseRegister);
	// providers may name others.
	Phase string
	// Done and Total are the phase's bytes, as the provider counts them:
	// sent so far and to send in all, which may be less than the disk's
	// size when zero blocks are skipped, or the raw bytes read when the
	// disk is compressed on its way. Total is 0 in a phase that moves no
	// bytes, or when it is not known in advance. In PhaseUpload Done only
	// grows, and with a known Total the phase's last event has
	// Done == Total.
	Done, Total int64
}

// Phases of a Publish that every provider can use.
const (
	PhaseUpload   = "upload"   // bytes go to the platform
	PhaseImport   = "import"   // the platform turns them into a snapshot or an image
	PhaseRegister = "register" // the bootable image is made from the snapshot
)

// PublishedImage is a provider's copy of a catalog image, what Launch
// boots on platforms that need one (Image.Published).
type PublishedImage struct {
	// Identity is the catalog image it is a copy of.
	Identity string `json:"identity"`
	// ID is the platform's: an AMI ID, a snapshot or image ID.
	ID string `json:"id"`
	// Region is where the copy lives ("us-east-1", "ams3"); "" on a
	// platform without regions.
	Region string `json:"region,omitempty"`
	// Created is when the copy was made, as the platform says.
	Created time.Time `json:"created"`
}

// IsZero reports whether p names no copy.
func (p PublishedImage) IsZero() bool { return p.ID == "" }
