// Package instancelookup finds CVM instances by id or by private IP for the node
// controllers, with as few DescribeInstances calls as it can:
//
//   - a VPC-wide listing cache, refreshed at most once per TTL (about 100 instances per
//     page), so that a serial caller (the upstream cloud-node controller has one worker by
//     default) asks the cloud once per page rather than once per node. Lookups say what
//     they need: the state of an instance must come from a listing younger than TTL, its
//     metadata (zone, type, addresses) may come from one up to MetadataMaxAge old, so that
//     initializing thousands of nodes one by one, which outlasts TTL, needs one listing;
//   - a batcher that coalesces the lookups arriving within a short window into one
//     DescribeInstances with up to 100 filter values, for cache misses and confirmations.
//
// A cache only ever answers "found". "Not found" is always the answer of a direct
// (batched) DescribeInstances made after the question was asked, so a stale cache can
// never report a running instance as gone.
//
// The package talks to the cloud only through the API interface; it knows nothing about
// Kubernetes objects and never decides what an instance state means.
package instancelookup
