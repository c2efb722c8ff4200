package vpc

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stratus-cloud/stratus/fakecloud/api"
	"github.com/stratus-cloud/stratus/fakecloud/store"
)

func fuzzWorld(tb testing.TB, now time.Time) (*api.World, *Module) {
	tb.Helper()
	w := &api.World{Store: store.New(), Region: "ap-guangzhou",
		Zones:  []api.Zone{{Name: "ap-guangzhou-1", ID: "100001", State: "AVAILABLE"}},
		Clock:  func() time.Time { return now },
		Limits: map[string]int{"routes-per-table": 4, "vpcs-per-region": 3},
	}
	mod, err := New(w)
	if err != nil {
		tb.Fatal(err)
	}
	m := mod.(*Module)
	seed := &api.Seed{}
	SetSeed(seed, []SeedVPC{{VpcID: "vpc-fuzz0001", CidrBlock: "10.0.0.0/16",
		Subnets:     []SeedSubnet{{SubnetID: "subnet-fuzz0001", CidrBlock: "10.0.1.0/24", Zone: "ap-guangzhou-1"}},
		RouteTables: []SeedRouteTable{{RouteTableID: "rtb-fuzz0001", Default: true}, {RouteTableID: "rtb-fuzz0002"}},
	}})
	// Two addresses held as instances would hold them, for NORMAL_CVM next hops.
	if err := w.Store.Update(func(tx *store.Tx) error {
		if err := m.Seed(tx, seed); err != nil {
			return err
		}
		for _, ip := range []string{"10.0.1.5", "10.0.1.6"} {
			if _, err := AllocateIP(tx, "subnet-fuzz0001", ip); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	_, err = m.createRoutes(&api.Request{Body: []byte(`{"RouteTableId":"rtb-fuzz0001","Routes":[{"DestinationCidrBlock":"10.244.0.0/24","GatewayType":"NORMAL_CVM","GatewayId":"10.0.1.5"}]}`), Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	return w, m
}

// FuzzActions feeds arbitrary bodies to every VPC action: no input may panic, every
// refusal is an *api.Error with a code, and a refused call leaves the state untouched.
func FuzzActions(f *testing.F) {
	for _, c := range []struct{ action, body string }{
		{"CreateVpc", `{"VpcName":"x","CidrBlock":"172.16.0.0/16","DnsServers":["1.1.1.1"],"Tags":[{"Key":"a","Value":"b"}]}`},
		{"DescribeVpcs", `{"Filters":[{"Name":"tag:a","Values":["b"]}],"Offset":"0","Limit":"100"}`},
		{"CreateSubnet", `{"VpcId":"vpc-fuzz0001","SubnetName":"s","CidrBlock":"10.0.2.0/24","Zone":"ap-guangzhou-1"}`},
		{"DescribeSubnets", `{"SubnetIds":["subnet-fuzz0001"],"Limit":"x"}`},
		{"CreateRouteTable", `{"VpcId":"vpc-fuzz0001","RouteTableName":"r"}`},
		{"DescribeRouteTables", `{"Filters":[{"Name":"association.main","Values":["true"]}]}`},
		{"CreateRoutes", `{"RouteTableId":"rtb-fuzz0001","Routes":[{"DestinationCidrBlock":"10.245.0.0/24","GatewayType":"NORMAL_CVM","GatewayId":"10.0.1.6"},{"DestinationCidrBlock":"10.0.0.0/8","GatewayType":"NORMAL_CVM","GatewayId":"10.0.1.6"}]}`},
		{"DeleteRoutes", `{"RouteTableId":"rtb-fuzz0001","Routes":[{"RouteId":1},{"RouteId":7}]}`},
		{"DeleteRoutes", `{"RouteTableId":"rtb-fuzz0001","Routes":[{"DestinationCidrBlock":"10.244.0.0/24"}]}`},
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
		before, _ := json.Marshal(w.Store.Dump())
		_, err := h(&api.Request{Action: action, Body: body, Now: now})
		if err == nil {
			return
		}
		var e *api.Error
		if !errors.As(err, &e) || e.Code == "" {
			t.Fatalf("%s answered a non-API error: %v", action, err)
		}
		if after, _ := json.Marshal(w.Store.Dump()); string(after) != string(before) {
			t.Fatalf("%s failed with %s but changed the state", action, e.Code)
		}
	})
}
