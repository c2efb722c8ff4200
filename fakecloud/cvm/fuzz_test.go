package cvm

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
	"github.com/stratus-cloud/stratus/fakecloud/vpc"
)

// fuzzWorld is a small seeded world: one VPC, two subnets, two instances.
func fuzzWorld(tb testing.TB, now time.Time) (*api.World, *Module) {
	tb.Helper()
	w := &api.World{Store: store.New(), Region: "ap-guangzhou",
		Zones:  []api.Zone{{Name: "ap-guangzhou-1", ID: "100001", State: "AVAILABLE"}, {Name: "ap-guangzhou-2", ID: "100002", State: "AVAILABLE"}},
		Clock:  func() time.Time { return now },
		Limits: map[string]int{"instances-per-region": 50},
	}
	vm, err := vpc.New(w)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := NewWithOptions(w, Options{Delays: Delays{InstanceBoot: time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	seed := &api.Seed{}
	vpc.SetSeed(seed, []vpc.SeedVPC{{VpcID: "vpc-fuzz0001", CidrBlock: "10.0.0.0/16", Subnets: []vpc.SeedSubnet{
		{SubnetID: "subnet-fuzz0001", CidrBlock: "10.0.1.0/28", Zone: "ap-guangzhou-1"},
		{SubnetID: "subnet-fuzz0002", CidrBlock: "10.0.2.0/24", Zone: "ap-guangzhou-2"},
	}}})
	SetSeed(seed, []SeedInstance{
		{InstanceID: "ins-fuzz0001", Zone: "ap-guangzhou-1", SubnetID: "subnet-fuzz0001", PrivateIP: "10.0.1.5"},
		{InstanceID: "ins-fuzz0002", Zone: "ap-guangzhou-2", SubnetID: "subnet-fuzz0002", State: "STOPPED", PublicIP: "203.0.113.9"},
	})
	err = w.Store.Update(func(tx *store.Tx) error {
		if err := vm.Seed(tx, seed); err != nil {
			return err
		}
		return m.Seed(tx, seed)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return w, m
}

func snapshot(tb testing.TB, s *store.Store) string {
	b, err := json.Marshal(s.Dump())
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// FuzzActions feeds arbitrary bodies to every CVM action: no input may panic, every
// refusal is an *api.Error with a code, and a refused call leaves the state untouched.
func FuzzActions(f *testing.F) {
	for _, c := range []struct {
		action string
		body   string
	}{
		{"RunInstances", `{"Placement":{"Zone":"ap-guangzhou-1"},"ImageId":"img-abcd1234","InstanceCount":3,"VirtualPrivateCloud":{"VpcId":"vpc-fuzz0001","SubnetId":"subnet-fuzz0001"}}`},
		{"RunInstances", `{"Placement":{"Zone":"ap-guangzhou-1"},"ImageId":"img-abcd1234","InstanceCount":20,"VirtualPrivateCloud":{"VpcId":"vpc-fuzz0001","SubnetId":"subnet-fuzz0001","PrivateIpAddresses":["10.0.1.5"]}}`},
		{"RunInstances", `{"Placement":{"Zone":"ap-guangzhou-2"},"ImageId":"img-abcd1234","InternetAccessible":{"PublicIpAssigned":true},"ClientToken":"t","VirtualPrivateCloud":{"VpcId":"vpc-fuzz0001","SubnetId":"subnet-fuzz0002"},"TagSpecification":[{"ResourceType":"instance","Tags":[{"Key":"a","Value":"b"}]}]}`},
		{"DescribeInstances", `{"Filters":[{"Name":"private-ip-address","Values":["10.0.1.5"]},{"Name":"tag:a","Values":["b"]}],"Offset":0,"Limit":100}`},
		{"DescribeInstances", `{"InstanceIds":["ins-fuzz0001","ins-fuzz0001"],"Limit":-1}`},
		{"StopInstances", `{"InstanceIds":["ins-fuzz0001"],"StopType":"HARD"}`},
		{"StartInstances", `{"InstanceIds":["ins-fuzz0002","ins-fuzz0001"]}`},
		{"TerminateInstances", `{"InstanceIds":["ins-fuzz0002"]}`},
		{"DescribeZones", `{}`},
		{"DescribeInstanceTypeConfigs", `{"Filters":[{"Name":"zone","Values":[]}]}`},
		{"RunInstances", `{"InstanceCount":1e99}`},
		{"StopInstances", `{"InstanceIds":null}`},
	} {
		f.Add(c.action, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, action string, body []byte) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		w, m := fuzzWorld(t, now)
		h, ok := m.API().Actions[action]
		if !ok {
			return
		}
		before := snapshot(t, w.Store)
		_, err := h(&api.Request{Action: action, Body: body, Now: now, RequestID: "fuzz"})
		if err == nil {
			return
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Code == "" {
			t.Fatalf("%s answered a non-API error: %v", action, err)
		}
		if after := snapshot(t, w.Store); after != before {
			t.Fatalf("%s failed with %s but changed the state", action, e.Code)
		}
	})
}
