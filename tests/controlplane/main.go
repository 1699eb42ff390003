// Command controlplane is a multi-call binary holding the real kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet, kubectl and etcd, built from
// the upstream Go modules so the test suite can run against a real control plane
// (and, with a container runtime, a real node) without Docker or kind.
//
// One binary instead of six because they share most of their dependency graph:
// on a 2-core machine that divides the cold build and the disk footprint.
// It dispatches on the name it was invoked as (build.sh makes symlinks), or on
// its first argument: `controlplane kubectl get pods`.
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
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

const usage = "usage: controlplane {kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kubectl|etcd} [args...]"

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
	}
}

func known(name string) bool {
	switch name {
	case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl", "etcd":
		return true
	}
	return false
}
