package disk

import "github.com/drover-dev/drover/internal/abslot"

// The update bundle's format belongs to internal/abslot, which the device's side of an update
// (drover-boot) and the device compute provider read too; these names keep the builder's own.

// BundleBlockSize is the unit of a bundle's per-block hashes: an update compares a slot's blocks
// with these and sends only those that differ.
const BundleBlockSize = abslot.BlockSize

// BundleManifestName is the bundle's manifest file.
const BundleManifestName = abslot.ManifestName

// Bundle is an update bundle (abslot.Bundle): each slot's boot filesystem and the shared root,
// compressed, with checksums and per-block hashes.
type Bundle = abslot.Bundle

// BundlePart is one filesystem image of a bundle.
type BundlePart = abslot.BundlePart
