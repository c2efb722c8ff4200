package fakecloud

import (
	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/cbs"
	"github.com/stratus-cloud/stratus/fakecloud/clb"
	"github.com/stratus-cloud/stratus/fakecloud/cvm"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// modules are the services fakecloud serves, in dependency order (a module may read the
// tables of the ones before it, and its seed is imported after theirs).
var modules = []func(w *api.World) api.Module{
	vpc.New,
	cvm.New,
	clb.New,
	cbs.New,
}
