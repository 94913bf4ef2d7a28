#!/usr/bin/env bash
# The execution environment (EE) AWX runs this collection's jobs in.
#
#   scripts/ee.sh build
#       Build the image localhost/mailstack-ee:latest from ee/execution-environment.yml
#       with ansible-builder, unless one built from the same inputs exists (the
#       inputs' hash is the image's label mailstack.ee). Prints the build time
#       and the image size.
#   scripts/ee.sh job SCENARIO [PLAYBOOK]
#       Run PLAYBOOK (default site.yml, the project's root playbook) in the EE
#       with ansible-runner and podman process isolation, as an AWX job does,
#       against the converged Molecule scenario SCENARIO (its state in
#       .cache/molecule/SCENARIO): over SSH on the scenario's network, with the
#       project, the inventory and the machine credential as AWX hands them
#       over. Checks the run's artifacts (status, host summary) and prints them:
#       the job must succeed on every host and, the scenario being converged,
#       change nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH=$root/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections

image=localhost/mailstack-ee:latest
work=$root/.cache/ee
# The base image, as the definition names it.
base=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["images"]["base_image"]["name"])' \
  ee/execution-environment.yml)

log() { printf 'ee: %s\n' "$*"; }
die() { printf 'ee: %s\n' "$*" >&2; exit 1; }

# The collections copied into the image: those the README's install commands
# give a plain controller (scripts/readme-path.sh install: the collection's
# tarball, installed into an empty collections path, and the collections its
# galaxy.yml depends on, where that install finds them), so a job in the EE
# runs what the README's run command runs.
stage_collections() {
  "$root/scripts/readme-path.sh" install
  "$root/scripts/readme-path.sh" collections "$work/collections"
}

# Everything the image is made of: the definition and its files, the base
# image, and the collections' file lists with checksums.
inputs_hash() {
  {
    cat ee/execution-environment.yml ee/pkgmgr "$work/requirements.txt" "$work/bindep.txt"
    podman image inspect --format '{{.Id}}' "$base"
    find "$work/collections" -name MANIFEST.json -o -name FILES.json | sort | xargs cat
    ansible-builder --version
  } | sha256sum | cut -c1-16
}

build() {
  podman image exists "$base" || die "the base image $base is missing: run scripts/lab.sh image"
  stage_collections
  # The collections' own Python and system dependencies (their
  # meta/execution-environment.yml, requirements.txt, bindep.txt), as
  # ansible-builder's Galaxy stage would find them: the definition installs these.
  ansible-builder introspect "$work/collections" \
    --write-pip "$work/requirements.txt" --write-bindep "$work/bindep.txt" >"$work/introspect.log" 2>&1 \
    || { cat "$work/introspect.log" >&2; die "ansible-builder cannot read the collections' dependencies"; }
  grep -q "from collection mailops.mailstack" "$work/requirements.txt" \
    || die "ansible-builder found no Python dependency in meta/execution-environment.yml"
  local want have start=$SECONDS
  want=$(inputs_hash)
  have=$(podman image inspect --format '{{index .Labels "mailstack.ee"}}' "$image" 2>/dev/null || true)
  if [[ $have == "$want" ]]; then
    log "$image is current (inputs $want)"
    return 0
  fi
  log "building $image (inputs $want)"
  rm -rf "$work/context"
  if ! ansible-builder build -f ee/execution-environment.yml -c "$work/context" \
    --container-runtime podman -t "$image" --extra-build-cli-args="--label mailstack.ee=$want" -v 2 >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    die "ansible-builder failed (whole log: $work/build.log)"
  fi
  podman image prune -f >/dev/null
  log "built $image in $((SECONDS - start)) s, $(podman image inspect --format '{{.Size}}' "$image" \
    | awk '{printf "%d MB", $1/1e6}')"
}

job() {
  local scenario=${1:?usage: scripts/ee.sh job SCENARIO [PLAYBOOK]} playbook=${2:-site.yml}
  local state=$root/.cache/molecule/$scenario pdd=$work/job-$scenario network start=$SECONDS
  [[ -f $state/inventory/ansible_inventory.yml ]] \
    || die "scenario $scenario is not converged (no $state/inventory): run its Molecule converge first"
  podman image exists "$image" || die "$image is missing: run scripts/ee.sh build"
  local hosts host
  mapfile -t hosts < <(python3 -c 'import sys, yaml; print("\n".join(sorted(yaml.safe_load(open(sys.argv[1]))["all"]["hosts"])))' \
    "$state/inventory/ansible_inventory.yml")
  # The scenario's network, from its first host: the job's container joins it
  # and reaches the hosts by name, as AWX reaches an inventory's hosts.
  network=$(podman inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "${hosts[0]}" \
    | awk '{print $1}') || die "host ${hosts[0]} of scenario $scenario is not running"
  # Hosts AWX manages run sshd; the scenarios' hosts are reached through
  # `podman exec ... sshd -i` instead, so their sshd is started here.
  for host in "${hosts[@]}"; do
    podman exec "$host" systemctl start ssh.service || die "cannot start sshd on $host"
  done
  rm -rf "$pdd"
  mkdir -p "$pdd/project" "$pdd/inventory" "$pdd/env"
  # The project, as AWX checks it out (with the scenario's ACME CA
  # certificates, when it has an ACME server: the inventory reads them).
  rsync -a --exclude=/.git --exclude=/.venv --exclude=/.cache --exclude=/build --exclude=__pycache__ \
    "$root/" "$pdd/project/"
  if [[ -d $state/acme ]]; then
    mkdir -p "$pdd/project/.cache/molecule/$scenario" && cp -a "$state/acme" "$pdd/project/.cache/molecule/$scenario/"
  fi
  # The inventory, with the controller's paths moved to the project's and
  # the connection AWX makes: SSH over the network, the key from the machine
  # credential (env/ssh_key, loaded into ssh-agent by ansible-runner).
  python3 "$root/scripts/ee_inventory.py" "$state/inventory" "$pdd/inventory" "$root" /runner/project
  install -m 0600 "$state/lab_ssh_key" "$pdd/env/ssh_key"
  printf -- '---\nANSIBLE_NOCOLOR: "1"\nANSIBLE_HOST_KEY_CHECKING: "False"\n' >"$pdd/env/envvars"
  log "running $playbook in $image against scenario $scenario (network ${network:-?})"
  local rc=0
  ansible-runner run "$pdd" -p "$playbook" --ident job \
    --process-isolation --process-isolation-executable podman --container-image "$image" \
    --container-option="--user=0" ${network:+--container-option="--network=$network"} \
    >"$work/job-$scenario.log" 2>&1 || rc=$?
  python3 - "$pdd/artifacts/job" "$((SECONDS - start))" <<'EOF' || rc=1
import json, pathlib, sys
art = pathlib.Path(sys.argv[1])
status = (art / "status").read_text().strip() if (art / "status").exists() else "missing"
rc = (art / "rc").read_text().strip() if (art / "rc").exists() else "missing"
stats = {}
for ev in sorted((art / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-")[0])):
    data = json.loads(ev.read_text())
    if data.get("event") == "playbook_on_stats":
        d = data["event_data"]
        hosts = set(d.get("ok", {})) | set(d.get("failures", {})) | set(d.get("dark", {}))
        stats = {h: {k: d.get(k, {}).get(h, 0) for k in ("ok", "changed", "failures", "dark", "skipped")}
                 for h in sorted(hosts)}
print(f"ee: job status {status}, rc {rc}, {sys.argv[2]} s")
for host, s in stats.items():
    print(f"ee:   {host}: " + " ".join(f"{k}={v}" for k, v in s.items()))
# The scenario is converged: a job on it must succeed on every host and change nothing.
bad = status != "successful" or rc != "0" or not stats or any(
    s["failures"] or s["dark"] or s["changed"] for s in stats.values())
sys.exit(1 if bad else 0)
EOF
  if ((rc != 0)); then
    tail -n 40 "$work/job-$scenario.log" >&2
    die "the job failed (whole output: $work/job-$scenario.log)"
  fi
}

case ${1:-} in
  build) build ;;
  job) shift; job "$@" ;;
  *) echo "usage: $0 build | job SCENARIO [PLAYBOOK]" >&2; exit 2 ;;
esac
