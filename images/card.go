package images

// Card is the SD card of an image the "rpi" builder made: its artifact (format "rpi-sd", as DESIGN.md names it) holds the
// two slots, and the update bundle beside it holds the filesystems for writing either slot (each slot's boot, the root).
type Card struct {
	DiskID        string       `json:"disk_id"` // MBR disk identifier, 8 hex digits: PARTUUIDs are DISKID-0N
	Slots         []CardSlot   `json:"slots"`   // A then B
	DataPartition int          `json:"data_partition"`
	Bundle        string       `json:"bundle"` // directory within the image directory
	BundleParts   []BundlePart `json:"bundle_parts"`
}

// CardSlot is one slot of a card.
type CardSlot struct {
	Name          string `json:"name"` // "a" or "b"
	BootPartition int    `json:"boot_partition"`
	RootPartition int    `json:"root_partition"`
	RootPARTUUID  string `json:"root_partuuid"`
}

// BundlePart is one compressed filesystem image of an update bundle; its block hashes are in the
// bundle's own manifest.
type BundlePart struct {
	Role   string `json:"role"`           // "boot" or "root"
	Slot   string `json:"slot,omitempty"` // the slot of a boot image; "" for the root, which fits either
	File   string `json:"file"`           // within the bundle directory
	Size   int64  `json:"size"`           // uncompressed
	SHA256 string `json:"sha256"`
}

// CardFormat is the artifact format of an SD card image.
const CardFormat = "rpi-sd"
