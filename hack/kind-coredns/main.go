// Command coredns is CoreDNS with only the plugins kubeadm's Corefile uses, for the kind node
// image (hack/kind-node-image.sh). The upstream main links every plugin, cloud DNS backends
// and tracing exporters included: 17 minutes to build on this 2-core machine, against a few
// for this subset. The plugin versions are CoreDNS's own (go.mod pins the release kubeadm
// names); the directive order stays upstream's (core/dnsserver), so the Corefile means the same.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() {
	coremain.Run()
}
