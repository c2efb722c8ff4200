// Package csi is the Container Storage Interface driver for block disks: the identity,
// controller and node services of CSI spec v1.13 over gRPC, behind three interfaces
// that hold everything cloud- or machine-specific:
//
//   - Disks: the cloud's block storage (create, attach, resize, snapshot disks);
//     cloudprovider/cbsdisks binds it to CBS.
//   - Mounter: formatting, mounting and resizing filesystems on this machine;
//     NewMounter binds it to k8s.io/mount-utils and the kernel.
//   - DeviceResolver: from a disk id to the block device that really is that disk
//     (ByIDResolver checks a virtio serial or a loop device's backing file).
//
// The package owns the CSI semantics: capabilities (declared once, in capabilities.go),
// argument checks and error codes, idempotency, the per-volume operation lock, and the
// one-writer / many-readers rule, which both the controller (attachments) and the node
// (read-only block devices and mounts) enforce. It never imports a cloud API client or
// anything of the cloud-controller-manager, and it never deletes or detaches a disk the
// Disks implementation does not report as owned by this cluster.
package csi
