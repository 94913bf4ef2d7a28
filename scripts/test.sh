#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (and CI, through .ci/run).
# Stops at the first failing stage and exits non-zero; prints how long each
# stage took.
#
#   scripts/test.sh                 every stage
#   scripts/test.sh lint units      only the named stages
#
# Stages: prepare lint sanity units molecule bench-smoke
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
  "stage_${name//-/_}"
  timings+=("$name $((SECONDS - start))s")
  printf '=== %s: ok (%ss) ===\n' "$name" "$((SECONDS - start))"
}

stage_prepare() {
  scripts/setup.sh
  scripts/lab.sh all
  scripts/test-host-packages.sh
}

stage_lint() {
  yamllint -s .
  ansible-lint --profile production
  antsibull-changelog lint
  ansible-galaxy collection build --force --output-path build/ >/dev/null
  echo "collection tarball: $(ls build/mailops-mailstack-*.tar.gz)"
}

stage_sanity() {
  scripts/sanity.sh
}

stage_units() {
  pytest -q -p no:cacheprovider tests/unit tests/integration
}

# The benchmarks' smoke runs reuse the hosts of this scenario, converged by
# the molecule stage (kept for them) or by the bench-smoke stage itself.
bench_scenario=single
declare -A bench_args=([bench/smtp_throughput]="--inventory $root/.cache/molecule/$bench_scenario/inventory")

# Molecule with the scenario's state in .cache/molecule/SCENARIO (a path the
# bench-smoke stage knows).
scenario_molecule() {
  local scenario=$1
  shift
  MOLECULE_EPHEMERAL_DIRECTORY=$root/.cache/molecule/$scenario molecule "$@" -s "$scenario"
}

# Scenarios not yet in the suite, with the reason. sharded: its first whole
# run passed create, check, converge, idempotence and the check-mode step, and
# failed checks that were fixed afterwards but not yet rerun whole (see the
# issue's note). Run it alone with:
#   MOLECULE_EPHEMERAL_DIRECTORY=$PWD/.cache/molecule/sharded molecule test -s sharded
not_in_suite=" sharded "

stage_molecule() {
  # One scenario at a time (2 cores); each starts with `destroy`, so leftovers
  # of an earlier run are removed first.
  local dir scenario start
  for dir in extensions/molecule/*/; do
    scenario=$(basename "$dir")
    [[ -f $dir/molecule.yml ]] || continue
    if [[ $not_in_suite == *" $scenario "* ]]; then
      echo "molecule: scenario $scenario is not in the suite yet (see scripts/test.sh)"
      continue
    fi
    start=$SECONDS
    if [[ $scenario == "$bench_scenario" ]]; then
      # --destroy never skips the first destroy of the sequence too.
      scenario_molecule "$scenario" destroy
      scenario_molecule "$scenario" test --destroy never
    else
      scenario_molecule "$scenario" test
    fi
    timings+=("molecule:$scenario $((SECONDS - start))s")
  done
}

stage_bench_smoke() {
  # Benchmarks are not timed tests: CI runs each with a small size only to
  # prove it still works end to end and prints its JSON line.
  local b out
  if ! grep -qs '^converged: true' "$root/.cache/molecule/$bench_scenario/state.yml"; then
    scenario_molecule "$bench_scenario" converge
  fi
  for b in bench/*; do
    [[ -x $b && -f $b && $b != *.* ]] || continue
    # shellcheck disable=SC2086 # the arguments are words
    out=$("$b" --smoke ${bench_args[$b]:-})
    echo "$out" | tail -n 1 | python3 -c 'import json,sys; print("bench", sys.argv[1], json.loads(sys.stdin.read()))' "$b"
  done
  scenario_molecule "$bench_scenario" destroy
}

for s in "${stages[@]}"; do
  declare -F "stage_${s//-/_}" >/dev/null || { echo "unknown stage '$s' (stages: ${all_stages[*]})" >&2; exit 2; }
  stage "$s"
done
printf '\nAll stages passed. Timings: %s\n' "$(IFS=,; echo "${timings[*]}")"
