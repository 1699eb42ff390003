// Command kindnode is the test control plane's multi-call binary (tests/controlplane/main.go)
// plus kubeadm and kube-proxy: everything a kind node image needs from k8s.io/kubernetes, in
// one binary built from the same pinned module versions (hack/kind-node-image.sh copies
// tests/controlplane/go.mod beside this file, so there is one place to bump Kubernetes).
// The node's /usr/bin/{kubeadm,kubelet,kubectl} and the control-plane images' entrypoints are
// symlinks to it; it dispatches on the name it was invoked as.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as upstream's mains do

	"go.etcd.io/etcd/server/v3/etcdmain"

	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeadm "k8s.io/kubernetes/cmd/kubeadm/app"
	kubeadmerrors "k8s.io/kubernetes/cmd/kubeadm/app/util/errors"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

const usage = "usage: kindnode {kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubeadm|kubelet|kubectl|etcd} [args...]"

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if !known(name) {
		if len(args) < 2 || !known(args[1]) {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		name = args[1]
		args = args[1:]
	}
	// cobra reads os.Args[1:], so the dispatched command must see itself as argv[0].
	os.Args = args

	switch name {
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kubectl":
		// Mirrors cmd/kubectl/kubectl.go: verbosity must be set before the command is built.
		_, _ = logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args))
		if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "etcd":
		etcdmain.Main(args)
	case "kubeadm":
		kubeadmerrors.HandleError(kubeadm.Run())
	case "kube-proxy":
		os.Exit(cli.Run(proxy.NewProxyCommand()))
	}
}

func known(name string) bool {
	switch name {
	case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubeadm", "kubelet", "kubectl", "etcd":
		return true
	}
	return false
}
