// Package instancelookup finds CVM instances by id or by private IP for the node
// controllers, with as few DescribeInstances calls as it can, and never one over the
// API's per-request limits (MaxIDsPerCall ids, MaxPageSize a page, MaxFilterValues values
// a filter, InstanceIds never with Filters):
//
//   - A VPC listing: every instance of the VPC, walked page by page (vpc-id filter, Limit
//     MaxPageSize), at most once per TTL and shared by every concurrent caller, so that a
//     serial caller (the upstream cloud-node controller has one worker by default) costs
//     one request per page rather than one per node. Lookups say what they need: the
//     state of an instance comes from a listing younger than TTL, or one begun after the
//     lookup was asked; its metadata (zone, type, addresses) may come from one up to
//     MetadataMaxAge old, so that initializing thousands of nodes one by one, which
//     outlasts TTL, needs one walk.
//   - An id batcher: the lookups by id that the listing cannot answer (new instances,
//     other VPCs, confirmations) arriving within a short window go out as one request of
//     up to MaxIDsPerCall InstanceIds.
//   - A private-IP miss confirmer. A private-ip-address filter takes only MaxFilterValues
//     addresses, so confirming m misses by filter costs ceil(m/5) requests, while a fresh
//     walk of a VPC of n instances costs ceil(n/100) and renews the listing for everyone.
//     The confirmer collects the misses of a window and takes the walk when it costs no
//     more requests than the filters (always in a VPC of up to 100 instances; for 2,000
//     instances from 96 misses on), else the filters: a node registering before its
//     instance shows in the listing is then one request, not twenty. A miss in a walk
//     that the lookup itself waited for and that began after it was asked needs no
//     confirmation at all (the first lookups of a fresh Lookup).
//
// A listing only ever answers "found". "Not found" is always the answer of a query made
// after the question was asked: a direct query, or a walk begun after it that is
// complete (every page reported the same TotalCount and the walk met that many
// instances; instances created or deleted between two pages shift the offsets, so an
// incomplete walk proves no absence and its misses are asked by filter). So a stale
// listing can never report a running instance as gone.
//
// After a failed walk, a lookup that needs a newer listing returns that failure (for
// RetryAfter, without a new walk), never an answer from a listing older than it asked
// for: the controllers retry. Metadata lookups keep answering from a listing younger
// than MetadataMaxAge.
//
// Every goroutine (walks, batches) runs under the context its owner gave New and ends
// when that context does; Wait waits for them.
//
// The package talks to the cloud only through the API interface; it knows nothing about
// Kubernetes objects and never decides what an instance state means.
package instancelookup
