#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (and CI, through .ci/run).
# Stops at the first failing stage and exits non-zero; prints how long each
# stage took.
#
#   scripts/test.sh                 every stage
#   scripts/test.sh lint units      only the named stages
#
# Stages: prepare (with the execution environment's build) lint sanity units
# molecule (with the AWX job in that environment) bench-smoke; and, only when
# named: nfs, the nfs_shared scenario (see not_in_suite), and faults, the
# sharded scenario's fault cases and the move loop (stage_faults). When
# prepare runs with lint and sanity, those two run beside it
# (background_start below).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
all_stages=(prepare lint sanity units molecule bench-smoke)
stages=("$@")
((${#stages[@]})) || stages=("${all_stages[@]}")

export PATH=$root/.venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1

timings=()
stage() {
  local name=$1 start=$SECONDS
  printf '\n=== %s ===\n' "$name"
  if [[ $background == *" $name "* ]]; then
    background_result "$name"
    return
  fi
  "stage_${name//-/_}"
  timings+=("$name $((SECONDS - start))s")
  printf '=== %s: ok (%ss) ===\n' "$name" "$((SECONDS - start))"
}

# Lint and sanity need only the virtual environment: when prepare runs with
# them, they start as soon as scripts/setup.sh made it, one after the other
# in one background job, beside the rest of prepare (the image builds and
# package installs, which wait on the network and the disk more than on
# the cores; the two stages took 320 s on a fresh machine). Each one's
# output goes to a file, printed with its result when its own stage comes.
background=" "
background_dir=""
background_pid=""
background_start() {
  background_dir=$(mktemp -d /tmp/mailstack-test-stages.XXXXXX)
  background=" $* "
  (
    for name in "$@"; do
      start=$SECONDS rc=0
      # Started and waited for, not tested with `if`: a command tested by
      # `if` or `||` runs without errexit, and a stage must stop at its
      # first failing command.
      ("stage_${name//-/_}") >"$background_dir/$name.log" 2>&1 &
      wait "$!" || rc=$?
      if ((rc == 0)); then
        echo "$((SECONDS - start))" >"$background_dir/$name.ok"
      else
        echo "$((SECONDS - start))" >"$background_dir/$name.failed"
        exit 1
      fi
    done
  ) &
  background_pid=$!
  # A stage that fails before lint's or sanity's turn ends the script: the
  # job is waited for, not left running after it.
  trap '[[ -z $background_pid ]] || wait "$background_pid" || true' EXIT
}

background_result() {
  local name=$1 seconds
  if [[ -n $background_pid ]]; then
    wait "$background_pid" || true
    background_pid=""
  fi
  cat "$background_dir/$name.log" 2>/dev/null || true
  if [[ -f $background_dir/$name.ok ]]; then
    seconds=$(<"$background_dir/$name.ok")
    timings+=("$name ${seconds}s (beside prepare)")
    printf '=== %s: ok (%ss, beside prepare) ===\n' "$name" "$seconds"
    return
  fi
  [[ -f $background_dir/$name.failed ]] || echo "$name did not run: an earlier background stage failed" >&2
  exit 1
}

# The NFS scenario's VM image is built by its own stage (stage_nfs), not
# here: the suite does not use it, and building it cost CI about two minutes.
stage_prepare() {
  local start=$SECONDS name later=()
  scripts/setup.sh
  for name in lint sanity; do
    [[ " ${stages[*]} " == *" $name "* ]] && later+=("$name")
  done
  ((${#later[@]} == 0)) || background_start "${later[@]}"
  scripts/lab.sh prepare
  scripts/lab.sh image
  scripts/test-host-packages.sh
  timings+=("lab+image $((SECONDS - start))s")
  start=$SECONDS
  scripts/ee.sh build
  timings+=("ee-build $((SECONDS - start))s")
}

stage_lint() {
  yamllint -s .
  ansible-lint --profile production
  antsibull-changelog lint
  # Into a folder of its own: the EE build (scripts/readme-path.sh install)
  # writes build/'s tarball, maybe at the same time (background_start).
  ansible-galaxy collection build --force --output-path build/lint/ >/dev/null
  echo "collection tarball: $(ls build/lint/mailops-mailstack-*.tar.gz)"
}

stage_sanity() {
  scripts/sanity.sh
}

# Two workers (pytest-xdist), one per core: the integration tests spend their
# time in ansible-playbook runs, each worker with its own throw-away MariaDB on
# a free port (tests/integration/conftest.py), so they do not share state.
# --dist loadgroup: the tests marked xdist_group('galera') run on one worker,
# which starts one three-node Galera cluster (mailstack_testlib.galera) for
# them all; the rest are spread as before.
stage_units() {
  pytest -q -p no:cacheprovider -n 2 --dist loadgroup tests/unit tests/integration
}

# Benchmarks that need a converged scenario: their smoke runs follow that
# scenario's test, on its hosts, before it is destroyed (two scenarios cannot
# be up at once: they share host names). The others run in bench-smoke.
# Benchmarks by name: `bench/run NAME` runs bench/NAME.py, `bench/run --list`
# names them all.
# move_loop: one move under load (--smoke; 20 runs measured: docs/lab.md).
declare -A scenario_benches=([single]="smtp_throughput" [sharded]="sharded move_loop" [nfs_shared]="nfs_shared")
benched=" "

# The scenario on whose converged hosts, after its test and before its
# benchmarks (molecule stage only), the README's run command runs as the
# README has it, in a venv with nothing of scripts/setup.sh
# (scripts/readme-path.sh run), and then an AWX job in the execution
# environment (scripts/ee.sh job). Both use the collections of the README's
# install commands: the prepare stage's EE build runs them
# (scripts/readme-path.sh install), with the tarball the lint stage also builds.
ee_job_scenario=single

# Molecule with the scenario's state in .cache/molecule/SCENARIO (a path the
# benchmarks know).
scenario_molecule() {
  local scenario=$1
  shift
  MOLECULE_EPHEMERAL_DIRECTORY=$root/.cache/molecule/$scenario molecule "$@" -s "$scenario"
}

# Scenarios not in the suite, with the reason. Run one alone with:
#   MOLECULE_EPHEMERAL_DIRECTORY=$PWD/.cache/molecule/NAME molecule test -s NAME
# nfs_shared: three QEMU VMs under software emulation (docs/lab.md); its run
# alone is about as long as the rest of the suite, which would pass the
# 60-minute budget. Its own stage: scripts/test.sh nfs (make test-nfs).
not_in_suite=" nfs_shared "

bench_smoke() {
  # Benchmarks are not timed tests: CI runs each with a small size to prove
  # it still works end to end and prints its JSON line; one whose ratios fall
  # below its floors (bench/smtp_throughput.py's SMOKE_FLOORS) fails.
  local b=$1 out start=$SECONDS
  shift
  out=$(bench/run "$b" --smoke "$@") || { echo "$out"; echo "bench $b failed" >&2; return 1; }
  echo "$out" | tail -n 1 | python3 -c 'import json,sys; print("bench", sys.argv[1], json.loads(sys.stdin.read()))' "$b"
  timings+=("bench:$b $((SECONDS - start))s")
  benched+="$b "
}

# The scenario's benchmarks on its converged hosts (its inventory), then destroy.
scenario_benches_smoke() {
  local scenario=$1 b
  for b in ${scenario_benches[$scenario]}; do
    bench_smoke "$b" --inventory "$root/.cache/molecule/$scenario/inventory"
  done
  scenario_molecule "$scenario" destroy
}

stage_molecule() {
  # One scenario at a time (2 cores); each starts with `destroy`, so leftovers
  # of an earlier run are removed first.
  local dir scenario start
  for dir in extensions/molecule/*/; do
    scenario=$(basename "$dir")
    [[ -f $dir/molecule.yml ]] || continue
    if [[ $not_in_suite == *" $scenario "* ]]; then
      echo "molecule: scenario $scenario is not in the suite (see scripts/test.sh)"
      continue
    fi
    start=$SECONDS
    if [[ -n ${scenario_benches[$scenario]:-} || $scenario == "$ee_job_scenario" ]]; then
      # --destroy never skips the first destroy of the sequence too.
      scenario_molecule "$scenario" destroy
      scenario_molecule "$scenario" test --destroy never
      timings+=("molecule:$scenario $((SECONDS - start))s")
      if [[ $scenario == "$ee_job_scenario" ]]; then
        start=$SECONDS
        scripts/readme-path.sh run "$scenario"
        timings+=("readme-run:$scenario $((SECONDS - start))s")
        start=$SECONDS
        scripts/ee.sh job "$scenario" site.yml
        timings+=("ee-job:$scenario $((SECONDS - start))s")
      fi
      scenario_benches_smoke "$scenario"
    else
      scenario_molecule "$scenario" test
      timings+=("molecule:$scenario $((SECONDS - start))s")
    fi
  done
}

# Not in the default stages (not_in_suite above).
stage_nfs() {
  local start=$SECONDS
  scripts/lab.sh vm-image
  timings+=("vm-image $((SECONDS - start))s")
  start=$SECONDS
  scenario_molecule nfs_shared destroy
  scenario_molecule nfs_shared test --destroy never
  timings+=("molecule:nfs_shared $((SECONDS - start))s")
  scenario_benches_smoke nfs_shared
}

# Not in the default stages either: the sharded scenario with its fault cases
# (MAILSTACK_FAULTS=1: test_sharded_faults.py and the hold's IDLE/APPEND case,
# about 10 minutes more than the suite's run), then the move-under-load loop
# (bench/move_loop.py, FAULT_LOOP_RUNS runs, 20 by default) on its hosts.
stage_faults() {
  local start=$SECONDS
  scenario_molecule sharded destroy
  MAILSTACK_FAULTS=1 scenario_molecule sharded test --destroy never
  timings+=("molecule:sharded+faults $((SECONDS - start))s")
  start=$SECONDS
  bench/run move_loop --runs "${FAULT_LOOP_RUNS:-20}" --inventory "$root/.cache/molecule/sharded/inventory" | tail -n 1
  timings+=("move_loop $((SECONDS - start))s")
  scenario_molecule sharded destroy
}

stage_bench_smoke() {
  local b scenario elsewhere=" "
  # The benchmarks of the scenarios not in the suite run in their own stage.
  for scenario in $not_in_suite; do
    elsewhere+="${scenario_benches[$scenario]:-} "
  done
  # Those whose scenario's stage did not run them (bench-smoke alone).
  for scenario in "${!scenario_benches[@]}"; do
    [[ $not_in_suite == *" $scenario "* ]] && continue
    for b in ${scenario_benches[$scenario]}; do
      [[ $benched == *" $b "* ]] && continue
      if ! grep -qs '^converged: true' "$root/.cache/molecule/$scenario/state.yml"; then
        scenario_molecule "$scenario" destroy
        scenario_molecule "$scenario" create
        scenario_molecule "$scenario" converge
      fi
      scenario_benches_smoke "$scenario"
      break
    done
  done
  for b in $(bench/run --list); do
    [[ $benched == *" $b "* || $elsewhere == *" $b "* ]] && continue
    bench_smoke "$b"
  done
}

for s in "${stages[@]}"; do
  declare -F "stage_${s//-/_}" >/dev/null || { echo "unknown stage '$s' (stages: ${all_stages[*]})" >&2; exit 2; }
  stage "$s"
done
printf '\nAll stages passed. Timings: %s\n' "$(IFS=,; echo "${timings[*]}")"
