// Package routes shows another cloud reusing Stratus' routes engine: it implements
// routes.Table for a made-up cloud whose route table is an in-memory list (a real one
// would call its own API), and hands the engine to the upstream route controller as
// cloudprovider.Routes. See Example for the whole flow; `go test ./examples/library/...`
// runs it.
package routes
