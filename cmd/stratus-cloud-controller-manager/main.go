// Command stratus-cloud-controller-manager is the Kubernetes cloud-controller-manager of
// Stratus: k8s.io/cloud-provider's app with the "qcloud" provider compiled in. Flags,
// leader election, /healthz, /metrics (including stratus_cloudapi_* for every cloud API
// call) and logging are the standard ones of the upstream app.
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/util/wait"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	"k8s.io/cloud-provider/names"
	"k8s.io/cloud-provider/options"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics on /metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // build info metric
	"k8s.io/klog/v2"

	"github.com/stratus-cloud/stratus/cloudprovider/qcloud" // registers provider "qcloud"
	"github.com/stratus-cloud/stratus/internal/version"
)

func main() {
	if version.Requested(os.Args[1:]) {
		fmt.Println(versionString())
		os.Exit(0)
	}
	opts, err := options.NewCloudControllerManagerOptions()
	if err != nil {
		klog.ErrorS(err, "Cannot initialize the command options")
		os.Exit(1)
	}
	cmd := app.NewCloudControllerManagerCommand(opts, cloudInitializer, app.DefaultInitFuncConstructors,
		names.CCMControllerAliases(), cliflag.NamedFlagSets{}, wait.NeverStop)
	cmd.Use = "stratus-cloud-controller-manager"
	os.Exit(cli.Run(cmd))
}

// cloudInitializer builds the provider named by --cloud-provider from --cloud-config. An
// invalid config ends the process with the error, which names the bad key.
func cloudInitializer(c *config.CompletedConfig) cloudprovider.Interface {
	shared := c.ComponentConfig.KubeCloudShared.CloudProvider
	if shared.Name != qcloud.ProviderName {
		klog.ErrorS(nil, "Unsupported --cloud-provider; this binary serves only one provider", "cloudProvider", shared.Name, "supported", qcloud.ProviderName)
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	cloud, err := cloudprovider.InitCloudProvider(shared.Name, shared.CloudConfigFile)
	if err != nil {
		klog.ErrorS(err, "Cloud provider could not be initialized", "cloudConfig", shared.CloudConfigFile)
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	if cloud == nil {
		klog.ErrorS(nil, "Cloud provider is nil", "cloudProvider", shared.Name)
		klog.FlushAndExit(klog.ExitFlushTimeout, 1)
	}
	return cloud
}

// versionString adds the provider and the cloud-provider library to the common line.
func versionString() string {
	cp := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "k8s.io/cloud-provider" {
				cp = d.Version
			}
		}
	}
	return fmt.Sprintf("%s (provider %s, k8s.io/cloud-provider %s)", version.String("stratus-cloud-controller-manager"), qcloud.ProviderName, cp)
}
