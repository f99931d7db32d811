// Package cloudlab is the cloud lab of DESIGN.md §7: fakes of the SaaS clouds' APIs that speak the
// documented protocols to the real client libraries and boot what was published to them under qemu.
// The fakes live in sub-packages (awslab); vm boots a raw disk the way a cloud would.
package cloudlab
