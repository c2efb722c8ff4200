// Package routes is the cloud-neutral Routes engine of the cloud-controller-manager: it
// implements k8s.io/cloud-provider's Routes (one route per node podCIDR, next hop the
// node's private IPv4 address) on top of any cloud route table that satisfies the small
// Table interface.
//
// It owns three things:
//
//   - Ownership. Every route it creates carries the description Marker(clusterID), that is
//     "stratus.io/cluster=<clusterID>", exactly. ListRoutes reports only routes whose
//     description is exactly that string, so routes of other clusters and routes made by
//     hand in the same table are never reported, and so never deleted or changed, even
//     when their destination sits inside the cluster CIDR.
//   - Health. A route whose next hop is not a live gateway (the table says so through
//     Table.LiveGateways; for a VPC, not a running instance) is reported Blackhole, and a
//     route is attributed to the node that holds its next hop as an InternalIP, so the
//     upstream route controller deletes routes of nodes that are gone or moved. A new
//     route for a destination that one of our routes already sends elsewhere replaces
//     that route (delete, then create) instead of being refused as a duplicate, unless
//     the other next hop is a node that still claims the destination.
//   - Batching. The upstream route controller calls CreateRoute and DeleteRoute from up to
//     200 goroutines at once; the engine coalesces the calls arriving within a short
//     window into Table.Create / Table.Delete calls of up to the table's per-call limit,
//     and gives every caller its own route's result. When the cloud refuses a whole call
//     (it is all or none), the engine splits the batch and retries the halves, so one bad
//     route fails alone and the good ones still land.
//
// The engine never talks to a cloud API itself and imports no cloud client: everything
// cloud-specific (request shapes, limits, error codes, what a live gateway is) belongs to
// the Table implementation. It never touches a route it did not create.
package routes
