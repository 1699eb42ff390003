#!/usr/bin/env bash
# make e2e-kind: the whole product on a real kind cluster, in Docker.
#
#   1. builds both images (hack/images.sh: BuildKit, cached; a Debian-made base where the
#      Dockerfile's default cannot be pulled);
#   2. builds kind's node image here, without a registry (hack/kind-node-image.sh: Debian's
#      packages and Go modules; see docs/kind.md) unless KIND_NODE_IMAGE names one;
#   3. creates a kind cluster (or reuses it) and loads the images into it, fake-gcs-server's
#      too (its binary comes with the dev dependencies: the venv's fake-gcs-server wrapper);
#   4. runs fake-gcs-server in the cluster and seeds a small SavedModel into it
#      (a Job running the converter image: TensorFlow is there);
#   5. installs the chart, watching one namespace, converters pointed at fake-gcs-server;
#   6. applies a TFLiteConversion and waits for Ready; prints status, events and logs.
#
# Tools: a Docker engine (hack/docker-engine.sh starts one), Go (kind, helm, Kubernetes and
# CoreDNS are built from their Go modules, cached in TFLITE_OPERATOR_CACHE/kind), mmdebstrap,
# gcc, and the project venv's Python (PYTHON, default the Makefile's venv).
# kubectl is the node image's own binary unless one is on PATH.
#
# Knobs: KIND_CLUSTER (default tflite-e2e), E2E_TAG (image tag, default e2e),
# E2E_KEEP=1 keeps the cluster afterwards (default: kept on failure, deleted on success;
# CI=true deletes it either way, after printing what the cluster says),
# KIND_VERSION (default v0.33.0), KIND_NODE_IMAGE (skip building one), E2E_TIMEOUT
# (kubectl wait, default 20m).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="${KIND_CLUSTER:-tflite-e2e}"
tag="${E2E_TAG:-e2e}"
kind_version="${KIND_VERSION:-v0.33.0}"
timeout="${E2E_TIMEOUT:-20m}"
cache="${TFLITE_OPERATOR_CACHE:-$HOME/.cache/tflite-operator}"
python="${PYTHON:-$cache/venv/bin/python}"
system_ns=tflite-operator-system
ns=tflite-e2e
gcs_ns=fake-gcs
gcs_url="http://fake-gcs.$gcs_ns.svc.cluster.local:4443"
gcs_image="tflite-operator.test/fake-gcs-server:v1"
export KIND_VERSION="$kind_version"

say() { printf '\n== %s (%ss)\n' "$*" "$SECONDS" >&2; }
die() {
  echo "e2e-kind: $*" >&2
  exit 1
}

# --- tools ----------------------------------------------------------------------------------
docker="$(bash "$root/hack/docker-engine.sh" | tail -1)"
# kind runs `docker` from PATH: make it the client that matches the engine (docker-engine.sh),
# through hack/kind-docker.sh (--privileged where the engine cannot grant it; see there).
shim="$cache/kind/shim"
mkdir -p "$shim"
ln -sfn "$root/hack/kind-docker.sh" "$shim/docker"
export KIND_REAL_DOCKER="$docker" PATH="$shim:$PATH"
kind="$(command -v kind || true)"
if [[ -z "$kind" ]]; then
  kind="$cache/kind/$kind_version/kind"
  if [[ ! -x "$kind" ]]; then
    command -v go > /dev/null || die "kind is not on PATH and Go is not installed to build it"
    say "building kind $kind_version from its Go module"
    GOBIN="$(dirname "$kind")" go install "sigs.k8s.io/kind@$kind_version"
  fi
fi
helm="$(bash "$root/tools/helm/build.sh" | tail -1)"

# --- images ---------------------------------------------------------------------------------
say "images tflite-operator:$tag and tflite-converter:$tag"
TFLITE_OPERATOR_IMAGE="tflite-operator:$tag" TFLITE_CONVERTER_IMAGE="tflite-converter:$tag" \
  bash "$root/hack/images.sh"
node_image="${KIND_NODE_IMAGE:-}"
if [[ -z "$node_image" ]]; then
  say "kind node image"
  node_image="$(bash "$root/hack/kind-node-image.sh" | tail -1)"
fi
if ! command -v kubectl > /dev/null; then
  kubectl_dir="$cache/kind/kubectl"
  mkdir -p "$kubectl_dir"
  # The node image's own Kubernetes binary answers to the name it is called by.
  ln -sfn "$(bash "$root/hack/kind-node-image.sh" --binary)" "$kubectl_dir/kubectl"
  export PATH="$kubectl_dir:$PATH"
fi
gcs_binary="$("$python" -c 'import sys; sys.path.insert(0, sys.argv[1]); from gcs_server import find_binary; print(find_binary() or "")' "$root/tests")"
[[ -x "$gcs_binary" ]] || die "no fake-gcs-server binary: it comes with the dev dependencies (make venv)"
if ! "$docker" image inspect "$gcs_image" > /dev/null 2>&1; then
  tar -C "$(dirname "$gcs_binary")" --transform 's|.*|fake-gcs-server|' -c "$(basename "$gcs_binary")" |
    "$docker" import --change 'ENTRYPOINT ["/fake-gcs-server"]' - "$gcs_image" > /dev/null
fi

ok=0
report() {
  if [[ "$ok" != 1 ]]; then
    say "FAILED: what the cluster says"
    kubectl get nodes -o wide || true
    kubectl get pods -A -o wide || true
    kubectl get tflc,jobs,pods -n "$ns" -o wide || true
    kubectl describe tflc -n "$ns" || true
    kubectl get events -A --sort-by=.lastTimestamp | tail -40 || true
    kubectl logs -n "$ns" -l app.kubernetes.io/name=tflite-converter --tail=100 || true
    kubectl logs -n "$system_ns" deployment/tflite-operator --tail=100 || true
  fi
  if [[ "${CI:-}" == true || ("$ok" == 1 && "${E2E_KEEP:-0}" != 1) ]]; then
    "$kind" delete cluster --name "$cluster" || true
  else
    echo "the cluster is kept: $kind delete cluster --name $cluster" >&2
  fi
}
trap report EXIT

# --- cluster --------------------------------------------------------------------------------
kubeconfig="$cache/kind/kubeconfig-$cluster"
export KUBECONFIG="$kubeconfig"
if "$kind" get clusters | grep -qx "$cluster"; then
  say "reusing kind cluster $cluster"
  "$kind" export kubeconfig --name "$cluster" > /dev/null
else
  say "creating kind cluster $cluster from $node_image"
  # failCgroupV1: kubelets from 1.35 on refuse cgroup v1 hosts unless told (docs/kind.md).
  "$kind" create cluster --name "$cluster" --image "$node_image" --wait 300s --config - << 'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
EOF
fi
say "loading images into the node"
"$kind" load docker-image --name "$cluster" "tflite-operator:$tag" "tflite-converter:$tag" "$gcs_image"


# --- fake-gcs-server ------------------------------------------------------------------------
say "fake-gcs-server in namespace $gcs_ns"
kubectl create namespace "$gcs_ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n "$gcs_ns" -f - << EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: fake-gcs}
spec:
  replicas: 1
  selector: {matchLabels: {app: fake-gcs}}
  template:
    metadata: {labels: {app: fake-gcs}}
    spec:
      # Service links would set FAKE_GCS_PORT=tcp://..., which fake-gcs-server reads as its
      # own -port setting and refuses ("invalid value for environment variable").
      enableServiceLinks: false
      containers:
        - name: fake-gcs
          image: $gcs_image
          imagePullPolicy: Never
          args: [-scheme, http, -host, 0.0.0.0, -port, "4443", -backend, memory, -external-url, "$gcs_url",
                 -public-host, "fake-gcs.$gcs_ns.svc.cluster.local:4443"]
          ports: [{containerPort: 4443}]
          readinessProbe: {httpGet: {path: /storage/v1/b, port: 4443}}
---
apiVersion: v1
kind: Service
metadata: {name: fake-gcs}
spec:
  selector: {app: fake-gcs}
  ports: [{port: 4443, targetPort: 4443}]
EOF
kubectl rollout status -n "$gcs_ns" deployment/fake-gcs --timeout=180s

# --- the chart --------------------------------------------------------------------------------
say "installing the chart (watching namespace $ns)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$ns" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
"$helm" upgrade --install tflite-operator "$root/charts/tflite-operator" \
  --namespace "$system_ns" --create-namespace \
  --set image.repository=tflite-operator --set "image.tag=$tag" \
  --set converter.image.repository=tflite-converter --set "converter.image.tag=$tag" \
  --set "operator.watchNamespaces={$ns}" \
  --set-json "converter.extraEnv={\"STORAGE_EMULATOR_HOST\": \"$gcs_url\"}" \
  --set converter.resources.requests.cpu=500m --set converter.resources.requests.memory=1Gi \
  --wait --timeout 5m

# --- a model in the bucket ------------------------------------------------------------------
say "seeding a small SavedModel into gs://e2e-models/dense/saved_model"
kubectl delete job -n "$ns" seed-model --ignore-not-found
kubectl apply -n "$ns" -f - << EOF
apiVersion: batch/v1
kind: Job
metadata: {name: seed-model}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: seed
          image: tflite-converter:$tag
          imagePullPolicy: IfNotPresent
          env:
            - {name: STORAGE_EMULATOR_HOST, value: "$gcs_url"}
            - {name: HOME, value: /tmp}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts: [{name: tmp, mountPath: /tmp}]
          command:
            - python
            - -c
            - |
              import os, tempfile
              import numpy as np, tensorflow as tf
              from google.auth.credentials import AnonymousCredentials
              from google.cloud import storage

              class Dense(tf.Module):
                  def __init__(self):
                      super().__init__()
                      rng = np.random.default_rng(0)
                      self.w = tf.Variable(rng.normal(size=(8, 4)).astype(np.float32))

                  @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
                  def serve(self, x):
                      return {"probs": tf.nn.softmax(x @ self.w)}

              m = Dense()
              path = tempfile.mkdtemp()
              tf.saved_model.save(m, path, signatures={"serving_default": m.serve})
              client = storage.Client(project="e2e", credentials=AnonymousCredentials())
              bucket = client.bucket("e2e-models")
              if not bucket.exists():
                  bucket = client.create_bucket("e2e-models")
              for d, _, files in os.walk(path):
                  for f in files:
                      rel = os.path.relpath(os.path.join(d, f), path)
                      bucket.blob(f"dense/saved_model/{rel}").upload_from_filename(os.path.join(d, f))
                      print("uploaded", rel)
      volumes: [{name: tmp, emptyDir: {}}]
EOF
kubectl wait -n "$ns" job/seed-model --for=condition=Complete --timeout=10m

# --- a conversion -----------------------------------------------------------------------------
say "applying a TFLiteConversion and waiting for Ready (up to $timeout)"
kubectl apply -n "$ns" -f - << 'EOF'
apiVersion: tflite.dev/v1alpha1
kind: TFLiteConversion
metadata: {name: e2e-dense}
spec:
  source: {uri: gs://e2e-models/dense/saved_model}
  output: {uri: gs://e2e-models/out/dense/, overwrite: true}
  variants:
    - {name: fp32}
    - {name: fp16, quantization: float16}
    - {name: dynamic, quantization: dynamic-range}
  benchmark: {runs: 20, warmupRuns: 2, threads: 1}
EOF
kubectl wait -n "$ns" tflc/e2e-dense --for=condition=Ready --timeout="$timeout"
kubectl get -n "$ns" tflc e2e-dense
kubectl get -n "$ns" tflc e2e-dense -o jsonpath='{.status.variants}' | head -c 2000
echo
ok=1
say "e2e-kind passed"
