#!/usr/bin/env bash
# End-to-end test of the container deployment, as a new user would run it, on a machine that
# reaches Debian's mirror and PyPI but no image registry:
#   install docker.io / docker-compose / debootstrap (when missing), start dockerd, build a
#   bookworm base image with debootstrap (cached), build the featurestore and moto images,
#   validate the compose files and the k8s manifests, bring the stack up (moto S3 instead of
#   MinIO), run the seed and daily jobs through the Dask scheduler in containers, check the
#   served features and the tables in the bucket against a local run of the same drops, tear
#   everything down and stop the dockerd it started.
# Prints each stage's wall time; exits non-zero on any failed check; cleans up on failure.
# Usage: bash deploy/test-stack.sh   (as root; measured 772 s with the base image cached, docs/deploy.md)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${FEATURESTORE_STACK_CACHE:-/var/cache/featurestore-stack}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BASE_IMAGE=featurestore-base:bookworm
export FEATURESTORE_IMAGE=featurestore:0.1.0 FEATURESTORE_MOTO_IMAGE=featurestore-moto:0.1.0 \
    FEATURESTORE_REDIS_IMAGE=featurestore-redis:0.1.0
export COMPOSE_PROJECT_NAME=featurestore-stack-test
# The packages the debootstrap base holds; a change here rebuilds the cached rootfs.
BASE_PACKAGES=python3.11,python3-venv,tini,ca-certificates
WORKERS=2
# Debian's docker client (its BuildKit supports build secrets; a newer client without the
# buildx plugin does not).
DOCKER=/usr/bin/docker
COMPOSE=(docker-compose -f docker-compose.yml -f deploy/compose.moto.yml)

DOCKERD_PID=""
STAGE="" STAGE_START=$SECONDS TOTAL_START=$SECONDS
stage() {  # stage NAME: close the previous stage (print its time), open the next
    [[ -n $STAGE ]] && printf '[stack] %-28s %4ds\n' "$STAGE" $((SECONDS - STAGE_START))
    STAGE=$1 STAGE_START=$SECONDS
    [[ -n $STAGE ]] && echo "[stack] -> $STAGE"
    return 0
}

cleanup() {
    local rc=$?
    if ((rc != 0)); then
        echo "[stack] FAILED in stage '$STAGE' (exit $rc); service logs:" >&2
        "${COMPOSE[@]}" logs --no-color --tail=40 >&2 2>/dev/null || true
    fi
    "${COMPOSE[@]}" --profile jobs down -v --remove-orphans >/dev/null 2>&1 || true
    if [[ -n $DOCKERD_PID ]]; then
        kill "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    fi
    printf '[stack] total %ds, %s\n' $((SECONDS - TOTAL_START)) \
        "$( ((rc == 0)) && echo passed || echo FAILED)"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_healthy() {  # wait_healthy SERVICE TIMEOUT: every container of SERVICE reports healthy
    local service=$1 deadline=$((SECONDS + $2)) ids status
    while :; do
        ids=$("${COMPOSE[@]}" ps -q "$service")
        status=$(for id in $ids; do
            $DOCKER inspect -f '{{.State.Health.Status}}' "$id"; done | sort -u | tr '\n' ' ')
        [[ -n $ids && $status == "healthy " ]] && { echo "[stack] $service healthy"; return 0; }
        ((SECONDS < deadline)) || { echo "[stack] $service not healthy: $status" >&2; return 1; }
        sleep 2
    done
}

stage "install packages"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

# The cache (rootfs tarball, logs, the daily report) is needed whether or not this script
# starts dockerd: a user with Docker already running is the common case (#31).
mkdir -p "$CACHE"

stage "start dockerd"
if ! $DOCKER info >/dev/null 2>&1; then
    dockerd >"$CACHE/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
    $DOCKER info >/dev/null || { echo "dockerd did not start: see $CACHE/dockerd.log" >&2; exit 1; }
fi

stage "base image (debootstrap)"
key=$(echo "bookworm $BASE_PACKAGES" | md5sum | cut -c1-12)
rootfs_tar=$CACHE/bookworm-$key.tar.gz
if ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
        || [[ $($DOCKER image inspect -f '{{index .Config.Labels "rootfs"}}' "$BASE_IMAGE") != "$key" ]]; then
    if [[ ! -s $rootfs_tar ]]; then
        rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
        debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$MIRROR" \
            >"$CACHE/debootstrap.log" 2>&1 || { tail -5 "$CACHE/debootstrap.log" >&2; exit 1; }
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -c . | gzip -1 >"$rootfs_tar.tmp" && mv "$rootfs_tar.tmp" "$rootfs_tar"
        rm -rf "$rootfs"
    fi
    $DOCKER import --change 'ENV LANG=C.UTF-8' --change "LABEL rootfs=$key" \
        --change 'CMD ["/bin/bash"]' "$rootfs_tar" "$BASE_IMAGE" >/dev/null
fi

stage "build images"
for target in runtime moto redis; do
    image=$FEATURESTORE_IMAGE; [[ $target == moto ]] && image=$FEATURESTORE_MOTO_IMAGE
    [[ $target == redis ]] && image=$FEATURESTORE_REDIS_IMAGE
    DOCKER_BUILDKIT=1 $DOCKER build -q -f deploy/Dockerfile --target "$target" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --secret id=ca_bundle,src="$CA_BUNDLE" \
        -t "$image" . >/dev/null
done
# The CA bundle was a build secret: it must not be in any layer of the runtime image.
seen=$($DOCKER run --rm --entrypoint sh "$FEATURESTORE_IMAGE" -c 'id -u; ls -A /run/secrets /src 2>/dev/null' || true)
[[ $seen == 10001 ]] || { echo "runtime image runs as root or holds build files: $seen" >&2; exit 1; }

stage "validate configs"
docker-compose -f docker-compose.yml config -q
"${COMPOSE[@]}" config -q
bash deploy/k8s/validate.sh "$CACHE/tools-venv"

stage "stack up"
"${COMPOSE[@]}" up -d --no-build --scale worker=$WORKERS minio create-bucket redis scheduler worker \
    api api-2
wait_healthy scheduler 120
wait_healthy worker 120
n=$($DOCKER run --rm --network "${COMPOSE_PROJECT_NAME}_default" --entrypoint python3 \
    "$FEATURESTORE_IMAGE" -c "from distributed import Client
with Client('tcp://scheduler:8786', timeout='20s') as c: print(len(c.scheduler_info()['workers']))")
[[ $n == "$WORKERS" ]] || { echo "scheduler sees $n workers, expected $WORKERS" >&2; exit 1; }
echo "[stack] scheduler sees $n workers"

stage "seed + daily jobs"
"${COMPOSE[@]}" run --rm daily | tee "$CACHE/daily-report.json"
python3 - "$CACHE/daily-report.json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
report = json.loads(text[text.index("{"):])
ingest = report["ingest"]
assert report["ok"], f"daily report not ok: {report}"
assert ingest["files_ingested"] > 0, f"daily ingested no file: {ingest}"
print(f"[stack] daily ingested {ingest['files_ingested']} files, ok")
EOF

stage "served features"
wait_healthy api 90
wait_healthy api-2 90
curl -fsS http://127.0.0.1:8000/ready && echo
curl -fsS http://127.0.0.1:8001/ready && echo
$DOCKER run --rm --network "${COMPOSE_PROJECT_NAME}_default" \
    -e AWS_ENDPOINT_URL=http://minio:9000 -e AWS_ACCESS_KEY_ID=featurestore \
    -e AWS_SECRET_ACCESS_KEY=featurestore-secret -e AWS_DEFAULT_REGION=us-east-1 \
    -v "$PWD/deploy/check_stack.py:/tmp/check_stack.py:ro" --entrypoint python3 \
    "$FEATURESTORE_IMAGE" /tmp/check_stack.py

stage "stop on SIGTERM"
# tini as PID 1: a worker stops on SIGTERM well within the grace period (no SIGKILL).
t0=$SECONDS
"${COMPOSE[@]}" stop -t 20 worker >/dev/null
((SECONDS - t0 < 20)) || { echo "workers ignored SIGTERM ($((SECONDS - t0)) s)" >&2; exit 1; }
for id in $("${COMPOSE[@]}" ps -q worker); do
    code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$id")
    [[ $code != 137 ]] || { echo "worker $id was SIGKILLed" >&2; exit 1; }
done
echo "[stack] workers stopped in $((SECONDS - t0)) s"

stage "teardown"
"${COMPOSE[@]}" --profile jobs down -v --remove-orphans >/dev/null
stage ""
